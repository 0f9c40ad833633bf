"""What an ingest transaction writes, staged as column arrays of the one write statement
(``sql.INSERT_SQL``): points, series (state, counters, episodes), pages and resolves;
and what the statement returns, taken back in (``absorb``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg
import numpy as np

from services.anomaly.ingest.live import (
    Call,
    LockedSeries,
    SeriesId,
    finite_or_none,
    nan_none,
)
from services.anomaly.ingest.scoring import ScoredSeries
from services.anomaly.paging.keys import dedup_key, from_epoch, iso, open_episode
from services.anomaly.series import EMPTY, describe, labels_of


def _named(name: str, series_key: str) -> str:
    """The detector's name, with the series for a labelled one: ``API latency {instance="b"}``."""
    return name if series_key == EMPTY else f"{name} {describe(series_key)}"


def _joined(arrays: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)


class Staged:
    """The column arrays of the part being staged (``new_part`` starts one)."""

    account: str
    scored_at: datetime
    live: dict[SeriesId, LockedSeries]

    def __init__(self) -> None:
        self.points: list[list[Any]] = []
        self.pages: list[list[Any]] = []
        self.resolves: list[list[Any]] = []
        self.staged: list[SeriesId] = []  # the series of the part being staged
        self.anomaly_rows: dict[tuple[str, str, datetime], tuple[Call, dict[str, Any]]] = {}
        self.pages_written = 0
        self.text_keys = True  # points keyed by detector id (else by row id: the event path)
        self.new_part()

    def new_part(self) -> None:
        # key, series key (lists), epoch, value, score, expected, lower, upper, late (an
        # array per series, joined once by ``write_args``), anomalies' position,
        # severity, context (lists)
        self.points = [[] for _ in range(12)]
        self.staged_points = 0
        self.pages = [[] for _ in range(9)]
        self.resolves = [[] for _ in range(3)]
        self.staged = []
        self.staged_ids: set[SeriesId] = set()  # the same, to look up

    def stage_points(
        self,
        call: Call,
        live: LockedSeries,
        order: np.ndarray,
        epoch: np.ndarray,
        values: np.ndarray,
        late: np.ndarray,
        s: ScoredSeries,
        anomalous: list[int],
    ) -> None:
        row = live.detector_row
        series_key = live.series_key
        p = self.points
        offset = self.staged_points  # positions are 1-based over the part
        n = epoch.shape[0]
        self.staged_points += n
        keys = call.keys
        p[0].extend([row["id"]] * n if keys is None else [keys[i] for i in order.tolist()])
        p[1].extend([series_key] * n)
        p[2].append(epoch)
        p[3].append(values)
        p[4].append(s.score)
        p[5].append(s.expected)
        p[6].append(s.lower)
        p[7].append(s.upper)
        p[8].append(late)
        points = call.points
        for i in anomalous:
            start = s.episode_start[i]
            context = {
                "explanation": s.explanation[i],
                "algorithm": row["algorithm"],
                "params": row["params"],
                "thresholds": row["thresholds"],
                # NaN (a detector warming up) is not JSON: Postgres would refuse the row
                "detail": finite_or_none(s.details[i]),
                "episode_start": iso(from_epoch(start)) if start is not None else None,
                "n_seen": s.n_seen,
            }
            p[9].append(offset + i + 1)
            p[10].append(s.severity[i])
            p[11].append(context)
            point = points[int(order[i])]
            ts = point.timestamp
            self.anomaly_rows[(row["id"], series_key, ts)] = (
                call,
                {
                    "detector_id": row["id"],
                    "labels": labels_of(series_key),
                    "timestamp": ts.astimezone(UTC),
                    "value": point.value,
                    "score": float(s.score[i]),
                    "severity": s.severity[i],
                    "expected": nan_none(float(s.expected[i])),
                    "lower": nan_none(float(s.lower[i])),
                    "upper": nan_none(float(s.upper[i])),
                    "late": bool(late[i]),
                    "explanation": s.explanation[i],
                    "episode_start": context["episode_start"],
                    "status": "open",
                    "note": None,
                    "reviewed_at": None,
                },
            )
            if s.page[i] and row["escalation_policy_id"] and start is not None:
                self._stage_page(live, ts, point.value, s, i, from_epoch(start))

    def _stage_page(
        self,
        live: LockedSeries,
        ts: datetime,
        value: float,
        s: ScoredSeries,
        i: int,
        start: datetime,
    ) -> None:
        row = live.detector_row
        series_key = live.series_key
        severity = s.severity[i] or "warning"
        g = self.pages
        g[0].append(row["id"])
        g[1].append(series_key)
        g[2].append(ts)
        g[3].append(row["escalation_policy_id"])
        g[4].append(dedup_key(self.account, row["id"], series_key, start))
        g[5].append(start)
        g[6].append(severity)
        g[7].append(
            f"Anomaly on {_named(row['name'], series_key)}: value {value:.6g} at {iso(ts)}"
            f" ({severity})"
        )
        g[8].append(
            {
                "detector_id": row["id"],
                "detector_name": row["name"],
                "labels": labels_of(series_key),
                "account": self.account,
                "timestamp": iso(ts),
                "value": value,
                "score": float(s.score[i]),
                "expected": nan_none(float(s.expected[i])),
                "lower": nan_none(float(s.lower[i])),
                "upper": nan_none(float(s.upper[i])),
                "explanation": s.explanation[i],
                "episode_start": iso(start),
            }
        )

    def stage_resolve(self, live: LockedSeries, ts: datetime, value: float, start: float) -> None:
        """The episode starting at ``start`` ended at this (normal or next-episode) point:
        its alert is to be resolved (the write keeps it only if the episode paged)."""
        row = live.detector_row
        series_key = live.series_key
        episode = from_epoch(start)
        r = self.resolves
        r[0].append(dedup_key(self.account, row["id"], series_key, episode))
        r[1].append(f"Recovered: {_named(row['name'], series_key)} back to normal at {iso(ts)}")
        r[2].append(
            {
                "detector_id": row["id"],
                "detector_name": row["name"],
                "labels": labels_of(series_key),
                "account": self.account,
                "episode_start": iso(episode),
                "ended_at": iso(ts),
                "ended_by": "point",
                "value": value,
            }
        )

    # -- the write
    def write_args(self) -> list[Any]:
        """The arguments of the write statement for what is staged."""
        keys, series, epoch, *columns = self.points
        return [
            self.account,
            "\n".join(keys) if self.text_keys else keys,
            "\n".join(series),
            np.rint(_joined(epoch, np.float64) * 1e6).astype(np.int64).tolist(),
            *(_joined(c, np.float64).tolist() for c in columns[:5]),
            _joined(columns[5], np.bool_).tolist(),
            *columns[6:],
            *self._series_columns(),
            *self.pages,
            *self.resolves,
            self.scored_at,
        ]

    def _series_columns(self) -> list[Any]:
        rows: list[tuple[Any, ...]] = []
        for sid in self.staged:
            live = self.live[sid]
            detector = live.detector if live.scored else None  # None: the stored state stays
            last = live.last_point or (None, None, None)
            if detector is None:
                rows.append(
                    (
                        *sid,
                        live.new,
                        live.checkpoint is not None,
                        live.checkpoint,
                        live.journal,
                        None,
                        None,
                        None,
                        live.submitted,
                        live.duplicates,
                        *last,
                        live.last_anomaly_at,
                        None,
                        None,
                        None,
                    )
                )
                continue
            assert live.policy is not None
            rows.append(
                (
                    *sid,
                    live.new,
                    live.checkpoint is not None,
                    live.checkpoint,
                    live.journal,
                    live.policy_state,
                    int(detector.n_seen),
                    int(detector.warmup),
                    live.submitted,
                    live.duplicates,
                    *last,
                    live.last_anomaly_at,
                    live.learning,
                    *open_episode(self.account, sid[0], sid[1], live.policy, live.policy_state),
                )
            )
        columns: list[Any] = (
            [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * 18
        )
        columns[6] = json.dumps(columns[6])  # the threshold states: one JSON array
        return columns

    async def write(
        self, conn: asyncpg.Connection, sql: str
    ) -> tuple[int, dict[SeriesId, tuple[int, int]]]:
        """Write what is staged; returns (points written, series -> (checkpoint id, journal
        bytes))."""
        returned: dict[SeriesId, tuple[int, int]] = {}
        written = self.absorb(await conn.fetch(sql, *self.write_args()), returned)
        return written, returned

    def absorb(self, rows: list[asyncpg.Record], returned: dict[SeriesId, tuple[int, int]]) -> int:
        """Take in what a write returned; returns the points it wrote."""
        written = 0
        for r in rows:
            kind = r["kind"]
            if kind == 3:
                written = int(r["a"])
                self.pages_written += int(r["b"])
            elif kind == 2:
                returned[(r["detector_id"], r["series_key"])] = (int(r["a"]), int(r["b"]))
            else:
                found = self.anomaly_rows.get((r["detector_id"], r["series_key"], r["ts"]))
                if found is not None:
                    call, anomaly = found
                    call.outcome.anomalies.append(
                        {"id": r["id"], **anomaly, "ingested_at": r["ingested_at"]}
                    )
        return written
