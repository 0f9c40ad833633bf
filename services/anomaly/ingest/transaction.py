"""One ingest transaction: the detectors it locked, their live state, and the one write.

``IngestTransaction`` locks the detectors of a call (``lock``), brings each
scored detector up to date (from the in-process cache plus the journal bytes
it has not seen, or rebuilt from checkpoint + journal: ``load``), scores and
stages the points of a call (``score``), and turns what is staged into the
arguments of the write statement (``write_args``, ``absorb``). ``finish``
hands the detectors of a committed transaction back to the cache.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import numpy as np

from services.anomaly.detectors.base import Detector
from services.anomaly.ingest import sql, statecodec
from services.anomaly.ingest.cache import DetectorCache, Entry
from services.anomaly.ingest.outcome import IngestOutcome, PointLike
from services.anomaly.ingest.scoring import ScoredSeries, build_detector, score_points
from services.anomaly.paging.keys import dedup_key, from_epoch, iso, open_episode
from services.anomaly.thresholds import Thresholds, parse_thresholds
from services.common.errors import ApiError

log = logging.getLogger("nsentry.anomaly.ingest")

# A new checkpoint is written once the journal holds this many scoring calls or points
# (whichever first): bounded rows and replays, and a full state written rarely.
CHECKPOINT_CHUNKS = 64
CHECKPOINT_POINTS = 1000


def _finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _nan_none(x: float) -> float | None:
    return None if math.isnan(x) else x


@dataclass
class LockedDetector:
    """A locked detector: its row, its live detector as the transaction goes, what to write."""

    row: asyncpg.Record
    entry: Entry | None
    last_ts: datetime | None
    policy_state: dict[str, Any]
    detector: Detector | None = None
    policy: Thresholds | None = None
    chunks: int = 0  # journaled since the checkpoint
    points: int = 0
    journal: bytearray = field(default_factory=bytearray)  # to append, or the whole one
    checkpoint: dict[str, Any] | None = None  # a new checkpoint to write
    existing: set[float] = field(default_factory=set)  # stored (epoch s), looked up
    scored: bool = False
    submitted: int = 0
    duplicates: int = 0
    last_point: tuple[datetime, float, float] | None = None
    last_anomaly_at: datetime | None = None
    learning: bool | None = None  # the detector's own verdict after its points

    def learned(self, epoch: np.ndarray, values: np.ndarray) -> None:
        """Journal a learned batch; checkpoint when the journal is long enough."""
        assert self.detector is not None
        self.chunks += 1
        self.points += int(epoch.shape[0])
        if self.chunks >= CHECKPOINT_CHUNKS or self.points >= CHECKPOINT_POINTS:
            self.checkpoint = {"model": statecodec.pack(self.detector.get_state())}
            self.journal = bytearray()
            self.chunks = self.points = 0
        else:
            self.journal += statecodec.journal_chunk(epoch, values)


@dataclass
class Call:
    """One request's points within a transaction, and what it came to."""

    points: Sequence[PointLike]
    keys: Sequence[Any] | None = None  # event path: ids of the rows to score
    error: ApiError | None = None
    expected: int = 0  # points to store
    late: int = 0
    outcome: IngestOutcome = field(default_factory=IngestOutcome)
    _epoch: np.ndarray | None = None

    @property
    def epoch(self) -> np.ndarray:
        """The points' timestamps in epoch seconds (what the detectors see)."""
        if self._epoch is None:
            self._epoch = np.fromiter(
                (p.timestamp.timestamp() for p in self.points),
                dtype=np.float64,
                count=len(self.points),
            )
        return self._epoch


class _Stamps:
    """The timestamps of the points at ``order`` (looked up only for the few needed)."""

    def __init__(self, points: Sequence[PointLike], order: list[int]) -> None:
        self.points = points
        self.order = order

    def __getitem__(self, i: int) -> datetime:
        return self.points[self.order[i]].timestamp


class IngestTransaction:
    """Detectors locked by one transaction, with their live detectors, and the one write."""

    def __init__(self, account: str, cache: DetectorCache, now: datetime) -> None:
        self.account = account
        self.cache = cache
        self.scored_at = now  # when the points are scored: the page age limit, pages due
        self.now = now.timestamp()
        self.live: dict[str, LockedDetector] = {}
        self.points: list[list[Any]] = []
        self.pages: list[list[Any]] = []
        self.resolves: list[list[Any]] = []
        self.staged: list[str] = []  # the detectors of the part being staged
        self.new_part()
        self.anomaly_rows: dict[tuple[str, datetime], tuple[Call, dict[str, Any]]] = {}
        self.pages_written = 0
        self._taken: dict[str, Entry] = {}

    # -- lock and detectors
    async def lock(self, conn: asyncpg.Connection, detector_ids: list[str], replica: bool) -> None:
        checkpoints: list[int | None] = []
        positions: list[int | None] = []
        for detector_id in detector_ids:
            entry = self.cache.take(self.account, detector_id)
            if entry is not None:
                self._taken[detector_id] = entry
            checkpoints.append(entry.checkpoint_id if entry is not None else None)
            positions.append(entry.position if entry is not None else None)
        rows = await conn.fetch(
            sql.LOCK_REPLICA_SQL if replica else sql.LOCK_SQL,
            self.account,
            detector_ids,
            checkpoints,
            positions,
        )
        for row in rows:
            self.live[row["id"]] = LockedDetector(
                row=row,
                entry=self._taken.get(row["id"]) if row["cached"] else None,
                last_ts=row["last_ts"],
                policy_state=row["policy_state"] or {},
            )
        for detector_id in list(self._taken):  # out of date, or the detector is gone
            live = self.live.get(detector_id)
            if live is None or live.entry is None:
                del self._taken[detector_id]

    async def load_detectors(self, conn: asyncpg.Connection) -> None:
        """Each scored detector, live: cached (plus the unseen journal) or rebuilt."""
        refetch: list[str] = []
        for detector_id, live in self.live.items():
            if not live.scored:
                continue
            row = live.row
            entry = live.entry
            if entry is not None and (
                entry.algorithm != row["algorithm"] or entry.params != row["params"]
            ):
                refetch.append(detector_id)  # configuration changed behind our back
                continue
            if entry is not None:
                self._taken.pop(detector_id, None)  # consumed: it changes from here on
                self.cache.hits += 1
                if row["journal"]:
                    self.cache.caught_up += 1
                live.detector, live.chunks, live.points = entry.detector, entry.chunks, entry.points
                self._replay(live, row["journal"])
            else:
                self.cache.misses += 1
                self._rebuild(live, row["state"], row["journal"])
        if refetch:
            for r in await conn.fetch(sql.FULL_STATE_SQL, self.account, refetch):
                live = self.live[r["id"]]
                self._taken.pop(r["id"], None)
                live.entry = None
                self.cache.misses += 1
                self._rebuild(live, r["state"], r["journal"])
        for live in self.live.values():
            if live.detector is not None and live.detector.n_seen != live.row["n_seen"]:
                log.error(
                    "detector %s/%s: rebuilt detector has n_seen %d, the row says %d",
                    self.account,
                    live.row["id"],
                    live.detector.n_seen,
                    live.row["n_seen"],
                )

    def _rebuild(self, live: LockedDetector, state: dict[str, Any] | None, journal: bytes) -> None:
        live.detector = build_detector(live.row["algorithm"], live.row["params"])
        if state and state.get("model") is not None:
            live.detector.set_state(statecodec.unpack(state["model"]))
        live.chunks = live.points = 0
        self._replay(live, journal)

    @staticmethod
    def _replay(live: LockedDetector, journal: bytes) -> None:
        assert live.detector is not None
        for epoch, values in statecodec.journal_chunks(journal):
            live.detector.score(epoch, values, learn=True)
            live.chunks += 1
            live.points += int(epoch.shape[0])

    def finish(self, returned: dict[str, tuple[int, int]] | None) -> None:
        """After the transaction: the detectors of a committed one (``returned``: id ->
        checkpoint id, journal bytes) go to the cache; untouched entries go back."""
        for detector_id, entry in self._taken.items():
            self.cache.put(self.account, detector_id, entry)
        self._taken.clear()
        if returned is None:
            return
        for detector_id, live in self.live.items():
            if live.detector is None or detector_id not in returned:
                continue
            checkpoint_id, position = returned[detector_id]
            self.cache.put(
                self.account,
                detector_id,
                Entry(
                    detector=live.detector,
                    algorithm=live.row["algorithm"],
                    params=live.row["params"],
                    checkpoint_id=checkpoint_id,
                    position=position,
                    chunks=live.chunks,
                    points=live.points,
                ),
            )

    # -- scoring
    def score(
        self,
        call: Call,
        detector_id: str,
        order: list[int],
        epoch: np.ndarray,
        late: np.ndarray,
    ) -> None:
        """Score a call's kept points of one detector (sorted by time) and stage them."""
        live = self.live[detector_id]
        assert live.detector is not None
        if live.policy is None:
            live.policy = parse_thresholds(live.row["thresholds"])
        points = call.points
        n = len(order)
        values_list = [points[i].value for i in order]
        ts_list = _Stamps(points, order)
        values = np.asarray(values_list, dtype=np.float64)
        s = score_points(
            live.detector, live.policy, live.policy_state, epoch, values, late, now=self.now
        )
        live.policy_state = s.policy_state
        live.learning = s.learning
        learned = np.flatnonzero(~late)
        if learned.size:
            if learned.size == n:
                live.learned(epoch, values)
            else:
                live.learned(epoch[learned], values[learned])
            last = int(learned[-1])
            live.last_ts = ts_list[last]
            live.last_point = (ts_list[last], values_list[last], float(s.score[last]))
        anomalous = np.flatnonzero(s.is_anomaly).tolist()
        if anomalous:
            newest = max(ts_list[i] for i in anomalous)
            if live.last_anomaly_at is None or newest > live.last_anomaly_at:
                live.last_anomaly_at = newest
        keys = [detector_id] * n if call.keys is None else [call.keys[i] for i in order]
        if not self.staged or self.staged[-1] != detector_id:
            if detector_id not in self.staged:
                self.staged.append(detector_id)
        self._stage_points(call, live, keys, ts_list, values_list, epoch, late, s, anomalous)
        ended = np.flatnonzero(~np.isnan(s.resolve))
        for i in ended.tolist():
            self._stage_resolve(live.row, ts_list[i], values_list[i], float(s.resolve[i]))

    def _stage_points(
        self,
        call: Call,
        live: LockedDetector,
        keys: list[Any],
        ts_list: _Stamps,
        values_list: list[float],
        epoch: np.ndarray,
        late: np.ndarray,
        s: ScoredSeries,
        anomalous: list[int],
    ) -> None:
        row = live.row
        p = self.points
        offset = len(p[0])  # positions are 1-based over the whole transaction
        p[0].extend(keys)
        p[1].extend(np.rint(epoch * 1e6).astype(np.int64).tolist())
        p[2].extend(values_list)
        p[3].extend(s.score.tolist())
        p[4].extend(s.expected.tolist())
        p[5].extend(s.lower.tolist())
        p[6].extend(s.upper.tolist())
        p[7].extend(late.tolist())
        for i in anomalous:
            start = s.episode_start[i]
            context = {
                "explanation": s.explanation[i],
                "algorithm": row["algorithm"],
                "params": row["params"],
                "thresholds": row["thresholds"],
                # NaN (a detector warming up) is not JSON: Postgres would refuse the row
                "detail": _finite_or_none(s.details[i]),
                "episode_start": iso(from_epoch(start)) if start is not None else None,
                "n_seen": s.n_seen,
            }
            p[8].append(offset + i + 1)
            p[9].append(s.severity[i])
            p[10].append(context)
            ts = ts_list[i]
            self.anomaly_rows[(row["id"], ts)] = (
                call,
                {
                    "detector_id": row["id"],
                    "timestamp": ts.astimezone(UTC),
                    "value": values_list[i],
                    "score": float(s.score[i]),
                    "severity": s.severity[i],
                    "expected": _nan_none(float(s.expected[i])),
                    "lower": _nan_none(float(s.lower[i])),
                    "upper": _nan_none(float(s.upper[i])),
                    "late": bool(late[i]),
                    "explanation": s.explanation[i],
                    "episode_start": context["episode_start"],
                    "status": "open",
                    "note": None,
                    "reviewed_at": None,
                },
            )
            if s.page[i] and row["escalation_policy_id"] and start is not None:
                self._stage_page(row, ts, values_list[i], s, i, from_epoch(start))

    def _stage_page(
        self,
        row: asyncpg.Record,
        ts: datetime,
        value: float,
        s: ScoredSeries,
        i: int,
        start: datetime,
    ) -> None:
        severity = s.severity[i] or "warning"
        g = self.pages
        g[0].append(row["id"])
        g[1].append(ts)
        g[2].append(row["escalation_policy_id"])
        g[3].append(dedup_key(self.account, row["id"], start))
        g[4].append(start)
        g[5].append(severity)
        g[6].append(f"Anomaly on {row['name']}: value {value:.6g} at {iso(ts)} ({severity})")
        g[7].append(
            {
                "detector_id": row["id"],
                "detector_name": row["name"],
                "account": self.account,
                "timestamp": iso(ts),
                "value": value,
                "score": float(s.score[i]),
                "expected": _nan_none(float(s.expected[i])),
                "lower": _nan_none(float(s.lower[i])),
                "upper": _nan_none(float(s.upper[i])),
                "explanation": s.explanation[i],
                "episode_start": iso(start),
            }
        )

    def _stage_resolve(self, row: asyncpg.Record, ts: datetime, value: float, start: float) -> None:
        """The episode starting at ``start`` ended at this (normal or next-episode) point:
        its alert is to be resolved (the write keeps it only if the episode paged)."""
        episode = from_epoch(start)
        r = self.resolves
        r[0].append(dedup_key(self.account, row["id"], episode))
        r[1].append(f"Recovered: {row['name']} back to normal at {iso(ts)}")
        r[2].append(
            {
                "detector_id": row["id"],
                "detector_name": row["name"],
                "account": self.account,
                "episode_start": iso(episode),
                "ended_at": iso(ts),
                "ended_by": "point",
                "value": value,
            }
        )

    # -- the write
    def new_part(self) -> None:
        self.points = [[] for _ in range(11)]
        self.pages = [[] for _ in range(8)]
        self.resolves = [[] for _ in range(3)]
        self.staged = []

    def touched(self) -> list[str]:
        """Detectors to write (sorted): the ones with points submitted by a call that
        went through (stored, or duplicates to count)."""
        return [
            d
            for d in sorted(self.live)
            if self.live[d].submitted or self.live[d].duplicates or self.live[d].scored
        ]

    def write_args(self) -> list[Any]:
        """The arguments of the write statement for what is staged."""
        return [
            self.account,
            *self.points,
            *self._detector_columns(),
            *self.pages,
            *self.resolves,
            self.scored_at,
        ]

    def _detector_columns(self) -> list[list[Any]]:
        d: list[list[Any]] = [[] for _ in range(16)]
        for detector_id in self.staged:
            live = self.live[detector_id]
            detector = live.detector if live.scored else None  # None: the stored state stays
            d[0].append(detector_id)
            d[1].append(live.checkpoint is not None)
            d[2].append(live.checkpoint)
            d[3].append(bytes(live.journal))
            d[4].append(live.policy_state if detector is not None else None)
            d[5].append(int(detector.n_seen) if detector is not None else None)
            d[6].append(int(detector.warmup) if detector is not None else None)
            d[7].append(live.submitted)
            d[8].append(live.duplicates)
            last = live.last_point
            d[9].append(last[0] if last else None)
            d[10].append(last[1] if last else None)
            d[11].append(last[2] if last else None)
            d[12].append(live.last_anomaly_at)
            d[13].append(live.learning if detector is not None else None)
            key, ends_at = None, None
            if detector is not None:
                assert live.policy is not None
                key, ends_at = open_episode(
                    self.account, detector_id, live.policy, live.policy_state
                )
            d[14].append(key)
            d[15].append(ends_at)
        return d

    async def write(
        self, conn: asyncpg.Connection, sql: str
    ) -> tuple[int, dict[str, tuple[int, int]]]:
        """Write what is staged; returns (points written, id -> (checkpoint id, journal
        bytes))."""
        returned: dict[str, tuple[int, int]] = {}
        written = self.absorb(await conn.fetch(sql, *self.write_args()), returned)
        return written, returned

    def absorb(self, rows: list[asyncpg.Record], returned: dict[str, tuple[int, int]]) -> int:
        """Take in what a write returned; returns the points it wrote."""
        written = 0
        for r in rows:
            kind = r["kind"]
            if kind == 3:
                written = int(r["a"])
                self.pages_written += int(r["b"])
            elif kind == 2:
                returned[r["detector_id"]] = (int(r["a"]), int(r["b"]))
            else:
                found = self.anomaly_rows.get((r["detector_id"], r["ts"]))
                if found is not None:
                    call, anomaly = found
                    call.outcome.anomalies.append(
                        {"id": r["id"], **anomaly, "ingested_at": r["ingested_at"]}
                    )
        return written
