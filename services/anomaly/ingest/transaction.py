"""One ingest transaction: the detectors and series it locked, their live state, the write.

``IngestTransaction`` locks the detectors of a call and the series it expects
(``lock``), gives every point its series under its detector's ``group_by`` and
creates the new series within ``max_series`` (``assign_series``), brings each
scored series' model up to date (from the in-process cache plus the journal
bytes it has not seen, or rebuilt from checkpoint + journal: ``load_detectors``),
scores and stages the points of a call (``score``; the arrays are
``staging.py``'s). ``finish`` hands the models of a committed transaction back
to the cache.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np

from services.anomaly.ingest import sql, statecodec
from services.anomaly.ingest.cache import DetectorCache, Entry
from services.anomaly.ingest.live import (
    CHECKPOINT_CHUNKS,
    CHECKPOINT_POINTS,
    Call,
    LockedSeries,
    Refused,
    SeriesId,
    Stamps,
)
from services.anomaly.ingest.outcome import PointLike
from services.anomaly.ingest.scoring import build_detector, score_points
from services.anomaly.ingest.staging import Staged
from services.anomaly.series import EMPTY, describe, labels_of, series_key
from services.anomaly.thresholds import Thresholds, parse_thresholds
from services.common.errors import Conflict
from services.common.metrics import MODEL_CACHE, SERIES_REFUSED

__all__ = ["CHECKPOINT_CHUNKS", "CHECKPOINT_POINTS", "Call", "IngestTransaction"]

log = logging.getLogger("nsentry.anomaly.ingest")


class MaxSeries(Conflict):
    """409 ``max_series``: a point of a new series past its detector's ``max_series``."""

    code = "max_series"


def max_series_error(detector_id: str, key: str, limit: int, index: int | None) -> MaxSeries:
    where = f"points.{index}: " if index is not None else ""
    return MaxSeries(
        f"{where}detector {detector_id!r} has its max_series ({limit}) series: "
        f"new series {describe(key)} refused",
        details={
            "detector_id": detector_id,
            "labels": labels_of(key),
            "max_series": limit,
            **({"index": index} if index is not None else {}),
        },
    )


KeyMemo = dict[tuple[tuple[str, ...] | None, tuple[tuple[str, str], ...]], str]


def series_keys(
    points: Sequence[PointLike],
    group_by_of: Callable[[str], list[str] | None],
    memo: KeyMemo,
) -> list[str]:
    """Each point's series key under its detector's group_by (``group_by_of``). A label
    set met again under the same group_by (remote write repeats a series' labels with
    each sample) is keyed once: ``memo`` remembers."""
    keys: list[str] = []
    group_bys: dict[str, tuple[str, ...] | None] = {}
    for p in points:
        labels = getattr(p, "labels", None)
        if labels is None:
            keys.append(EMPTY)
            continue
        detector_id = p.detector_id
        if detector_id in group_bys:
            group_by = group_bys[detector_id]
        else:
            names = group_by_of(detector_id)
            group_by = group_bys[detector_id] = None if names is None else tuple(names)
        seen = (group_by, tuple(labels.items()))
        key = memo.get(seen)
        if key is None:
            key = memo[seen] = series_key(labels, group_by)
        keys.append(key)
    return keys


class IngestTransaction(Staged):
    """Detectors and series locked by one transaction, their live models, the write."""

    def __init__(self, account: str, cache: DetectorCache, now: datetime) -> None:
        self.account = account
        self.cache = cache
        self.scored_at = now  # when the points are scored: the page age limit, pages due
        self.now = now.timestamp()
        self.detectors: dict[str, asyncpg.Record] = {}
        self.live: dict[SeriesId, LockedSeries] = {}
        self.new_series: dict[str, int] = {}  # per detector: series this transaction creates
        self._asked: set[SeriesId] = set()  # looked up already (found or not)
        self._taken: dict[SeriesId, Entry] = {}
        self._policies: dict[str, Thresholds] = {}  # per detector: its series share it
        self._keys: KeyMemo = {}  # series keys of the label sets met
        super().__init__()

    # -- lock, series and detectors
    def expected_series(self, calls: Sequence[Call]) -> list[SeriesId]:
        """The series the calls' points are likely to belong to (the group_by this process
        saw last; points without labels: the empty series whatever it is)."""
        wanted: set[SeriesId] = set()
        for call in calls:
            if not call.is_labelled():
                wanted.update((d, EMPTY) for d in set(call.detector_ids))
                continue
            if call.series is not None:
                wanted.update(zip((p.detector_id for p in call.points), call.series, strict=True))
                continue
            keys = series_keys(call.points, self._guessed_group_by, self._keys)
            wanted.update(zip(call.detector_ids, keys, strict=True))
        return sorted(wanted)

    def _guessed_group_by(self, detector_id: str) -> list[str] | None:
        return self.cache.group_by.get((self.account, detector_id))

    async def lock(
        self,
        conn: asyncpg.Connection,
        detector_ids: list[str],
        wanted: list[SeriesId],
        replica: bool,
    ) -> None:
        checkpoints: list[int | None] = []
        positions: list[int | None] = []
        for sid in wanted:
            entry = self.cache.take(self.account, sid)
            if entry is not None:
                self._taken[sid] = entry
            checkpoints.append(entry.checkpoint_id if entry is not None else None)
            positions.append(entry.position if entry is not None else None)
        rows = await conn.fetch(
            sql.LOCK_REPLICA_SQL if replica else sql.LOCK_SQL,
            self.account,
            detector_ids,
            [sid[0] for sid in wanted],
            [sid[1] for sid in wanted],
            checkpoints,
            positions,
        )
        for row in rows:
            detector_id = row["id"]
            if detector_id not in self.detectors:
                self.detectors[detector_id] = row
                self.cache.remember_group_by(self.account, detector_id, row["group_by"])
            if row["series_key"] is not None:
                self._add(self.detectors[detector_id], row)
        self._asked.update(wanted)
        for sid in list(self._taken):  # out of date, or the series is gone
            live = self.live.get(sid)
            if live is None or live.entry is None:
                del self._taken[sid]

    def _add(self, detector_row: asyncpg.Record, r: asyncpg.Record) -> None:
        sid = (detector_row["id"], r["series_key"])
        self.live[sid] = LockedSeries(
            detector_row=detector_row,
            series_key=r["series_key"],
            entry=self._taken.get(sid) if r["cached"] else None,
            last_ts=r["last_ts"],
            policy_state=r["policy_state"] or {},
            n_seen=r["n_seen"],
            state=r["state"],
            stored_journal=r["journal"],
        )

    async def assign_series(self, conn: asyncpg.Connection, calls: Sequence[Call]) -> None:
        """Give each point its series; create new series while their detector has room
        (``max_series``), refuse the points of the others (``call.refused``)."""
        distinct: list[set[SeriesId]] = []
        for call in calls:
            if not call.is_labelled():
                call.series = [EMPTY] * len(call.points)
                distinct.append({(d, EMPTY) for d in set(call.detector_ids)})
                continue
            if call.series is None:
                call.series = series_keys(
                    call.points, lambda d: self.detectors[d]["group_by"], self._keys
                )
            distinct.append(set(zip(call.detector_ids, call.series, strict=True)))
        every: set[SeriesId] = set().union(*distinct)
        unseen = sorted(every - self.live.keys() - self._asked)
        if unseen:
            rows = await conn.fetch(
                sql.SERIES_SQL, self.account, [s[0] for s in unseen], [s[1] for s in unseen]
            )
            for r in rows:
                self._add(self.detectors[r["detector_id"]], r)
            self._asked.update(unseen)
        for call, found in zip(calls, distinct, strict=True):
            if found <= self.live.keys():
                continue  # the usual case: every series exists (no per-point loop)
            assert call.series is not None
            for i, sid in enumerate(zip(call.detector_ids, call.series, strict=True)):
                if sid not in self.live:
                    self._new_series(call, i, sid)

    def _new_series(self, call: Call, index: int, sid: SeriesId) -> None:
        row = self.detectors[sid[0]]
        created = self.new_series.get(sid[0], 0)
        if row["series_count"] + created < row["max_series"]:
            self.new_series[sid[0]] = created + 1
            self.live[sid] = LockedSeries(
                detector_row=row,
                series_key=sid[1],
                entry=None,
                last_ts=None,
                policy_state={},
                new=True,
            )
            return
        SERIES_REFUSED.inc()
        call.refused.append(Refused(index, sid[0], sid[1]))

    def refusal(self, call: Call, *, batch: bool) -> MaxSeries | None:
        """A single point refused is its request's error (409); in a batch, the refused
        points are reported one by one and the others stored."""
        if not call.refused or batch:
            return None
        r = call.refused[0]
        return max_series_error(
            r.detector_id, r.series_key, self.detectors[r.detector_id]["max_series"], None
        )

    async def load_detectors(self, conn: asyncpg.Connection) -> None:
        """Each scored series' model, live: cached (plus the unseen journal) or rebuilt."""
        refetch: list[SeriesId] = []
        hits, misses = self.cache.hits, self.cache.misses
        for sid, live in self.live.items():
            if not live.scored:
                continue
            row = live.detector_row
            entry = live.entry
            if entry is not None and (
                entry.algorithm != row["algorithm"] or entry.params != row["params"]
            ):
                refetch.append(sid)  # configuration changed behind our back
                continue
            if entry is not None:
                self._taken.pop(sid, None)  # consumed: it changes from here on
                self.cache.hits += 1
                if live.stored_journal:
                    self.cache.caught_up += 1
                live.detector, live.chunks, live.points = entry.detector, entry.chunks, entry.points
                self._replay(live, live.stored_journal)
            else:
                self.cache.misses += 1
                self._rebuild(live, live.state, live.stored_journal)
        if refetch:
            rows = await conn.fetch(
                sql.FULL_STATE_SQL, self.account, [s[0] for s in refetch], [s[1] for s in refetch]
            )
            for r in rows:
                sid = (r["detector_id"], r["series_key"])
                live = self.live[sid]
                self._taken.pop(sid, None)
                live.entry = None
                self.cache.misses += 1
                self._rebuild(live, r["state"], r["journal"])
        if self.cache.hits > hits:
            MODEL_CACHE.labels("hit").inc(self.cache.hits - hits)
        if self.cache.misses > misses:
            MODEL_CACHE.labels("miss").inc(self.cache.misses - misses)
        for sid, live in self.live.items():
            if live.detector is not None and live.detector.n_seen != live.n_seen:
                log.error(
                    "series %s/%s %s: rebuilt detector has n_seen %d, the row says %d",
                    self.account,
                    sid[0],
                    sid[1],
                    live.detector.n_seen,
                    live.n_seen,
                )

    def _rebuild(self, live: LockedSeries, state: dict[str, Any] | None, journal: bytes) -> None:
        row = live.detector_row
        live.detector = build_detector(row["algorithm"], row["params"])
        if state and state.get("model") is not None:
            live.detector.set_state(statecodec.unpack(state["model"]))
        live.chunks = live.points = 0
        self._replay(live, journal)

    @staticmethod
    def _replay(live: LockedSeries, journal: bytes) -> None:
        assert live.detector is not None
        for epoch, values in statecodec.journal_chunks(journal):
            live.detector.score(epoch, values, learn=True)
            live.chunks += 1
            live.points += int(epoch.shape[0])

    def finish(self, returned: dict[SeriesId, tuple[int, int]] | None) -> None:
        """After the transaction: the models of a committed one (``returned``: series ->
        checkpoint id, journal bytes) go to the cache; untouched entries go back."""
        for sid, entry in self._taken.items():
            self.cache.put(self.account, sid, entry)
        self._taken.clear()
        if returned is None:
            return
        for sid, live in self.live.items():
            if live.detector is None or sid not in returned:
                continue
            checkpoint_id, position = returned[sid]
            self.cache.put(
                self.account,
                sid,
                Entry(
                    detector=live.detector,
                    algorithm=live.detector_row["algorithm"],
                    params=live.detector_row["params"],
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
        sid: SeriesId,
        order: list[int],
        epoch: np.ndarray,
        late: np.ndarray,
    ) -> None:
        """Score a call's kept points of one series (sorted by time) and stage them."""
        live = self.live[sid]
        assert live.detector is not None
        if live.policy is None:
            policy = self._policies.get(sid[0])
            if policy is None:
                policy = parse_thresholds(live.detector_row["thresholds"])
                self._policies[sid[0]] = policy
            live.policy = policy
        points = call.points
        n = len(order)
        values_list = [points[i].value for i in order]
        ts_list = Stamps(points, order)
        values = np.asarray(values_list, dtype=np.float64)
        s = score_points(
            live.detector,
            live.policy,
            live.policy_state,
            epoch,
            values,
            late,
            now=self.now,
            quiet_until=call.quiet_until,
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
        keys = [sid[0]] * n if call.keys is None else [call.keys[i] for i in order]
        if sid not in self.staged_ids:
            self.staged_ids.add(sid)
            self.staged.append(sid)
        self.stage_points(call, live, keys, ts_list, values_list, epoch, late, s, anomalous)
        ended = np.flatnonzero(~np.isnan(s.resolve))
        for i in ended.tolist():
            self.stage_resolve(live, ts_list[i], values_list[i], float(s.resolve[i]))

    def touched(self) -> list[SeriesId]:
        """Series to write (sorted): the ones with points submitted by a call that went
        through (stored, or duplicates to count)."""
        return [
            sid
            for sid in sorted(self.live)
            if self.live[sid].submitted or self.live[sid].duplicates or self.live[sid].scored
        ]
