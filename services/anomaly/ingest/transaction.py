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
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np

from services.anomaly.ingest import sql, statecodec
from services.anomaly.ingest.cache import KEY_MEMO_LIMIT, DetectorCache, Entry, KeyMemo
from services.anomaly.ingest.live import (
    CHECKPOINT_CHUNKS,
    CHECKPOINT_POINTS,
    Call,
    LockedSeries,
    Refused,
    SeriesId,
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


GroupBys = dict[str, tuple[str, ...] | None]


def series_keys(
    points: Sequence[PointLike],
    group_by_of: Callable[[str], list[str] | None],
    memo: KeyMemo,
    group_bys: GroupBys | None = None,
) -> list[str]:
    """Each point's series key under its detector's group_by (``group_by_of``; the ones
    used are left in ``group_bys``). A label set met again under the same group_by is
    keyed once: ``memo`` remembers (the process' series keys, ``DetectorCache.keys``),
    and the points of a series sharing one labels object (remote write's samples) are
    looked up once."""
    keys: list[str] = []
    if group_bys is None:
        group_bys = {}
    same: dict[int, tuple[str, Mapping[str, str], str]] = {}  # id(labels): the last key
    for p in points:
        labels = getattr(p, "labels", None)
        if labels is None:
            keys.append(EMPTY)
            continue
        detector_id = p.detector_id
        known = same.get(id(labels))
        if known is not None and known[1] is labels and known[0] == detector_id:
            keys.append(known[2])
            continue
        if detector_id in group_bys:
            group_by = group_bys[detector_id]
        else:
            names = group_by_of(detector_id)
            group_by = group_bys[detector_id] = None if names is None else tuple(names)
        seen = (group_by, tuple(labels.items()))
        key = memo.get(seen)
        if key is None:
            if len(memo) >= KEY_MEMO_LIMIT:
                memo.clear()
            key = memo[seen] = series_key(labels, group_by)
        same[id(labels)] = (detector_id, labels, key)
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
        # per call: the series keys guessed before the lock, and the group_bys they used
        self._guessed: dict[int, tuple[GroupBys, list[str]]] = {}
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
            group_bys: GroupBys = {}
            keys = series_keys(call.points, self._guessed_group_by, self.cache.keys, group_bys)
            self._guessed[id(call)] = (group_bys, keys)
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
            checkpointed=r["checkpointed"],
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
                call.series = self._guessed_keys(call) or series_keys(
                    call.points, lambda d: self.detectors[d]["group_by"], self.cache.keys
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

    def _guessed_keys(self, call: Call) -> list[str] | None:
        """The keys guessed before the lock, if every group_by they used was right."""
        guessed = self._guessed.get(id(call))
        if guessed is None:
            return None
        group_bys, keys = guessed
        for detector_id, group_by in group_bys.items():
            row = self.detectors.get(detector_id)
            if row is None:
                return None
            names = row["group_by"]
            if (None if names is None else tuple(names)) != group_by:
                return None
        return keys

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
            entry = live.entry
            if entry is None:
                entry = Entry(
                    detector=live.detector,
                    algorithm=live.detector_row["algorithm"],
                    params=live.detector_row["params"],
                    checkpoint_id=checkpoint_id,
                    position=position,
                    chunks=live.chunks,
                    points=live.points,
                )
            else:  # the one taken (this transaction's own): brought up to date
                entry.checkpoint_id, entry.position = checkpoint_id, position
                entry.chunks, entry.points = live.chunks, live.points
            self.cache.put(self.account, sid, entry)

    # -- scoring
    def score(
        self,
        call: Call,
        sid: SeriesId,
        order: np.ndarray,
        epoch: np.ndarray,
        late: np.ndarray,
    ) -> None:
        """Score a call's kept points of one series (``order``: their indices, sorted by
        time) and stage them."""
        live = self.live[sid]
        assert live.detector is not None
        if live.policy is None:
            policy = self._policies.get(sid[0])
            if policy is None:
                policy = parse_thresholds(live.detector_row["thresholds"])
                self._policies[sid[0]] = policy
            live.policy = policy
        points = call.points
        values = call.values[order]
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
        n = epoch.shape[0]
        if not late.any():
            live.learned(epoch, values)
            last = n - 1
        else:
            learned = np.flatnonzero(~late)
            last = int(learned[-1]) if learned.size else -1
            if learned.size:
                live.learned(epoch[learned], values[learned])
        if last >= 0:
            point = points[int(order[last])]
            live.last_ts = point.timestamp
            live.last_point = (point.timestamp, point.value, float(s.score[last]))
        anomalous = np.flatnonzero(s.is_anomaly).tolist() if s.is_anomaly.any() else []
        if anomalous:
            newest = max(points[int(order[i])].timestamp for i in anomalous)
            if live.last_anomaly_at is None or newest > live.last_anomaly_at:
                live.last_anomaly_at = newest
        if sid not in self.staged_ids:
            self.staged_ids.add(sid)
            self.staged.append(sid)
        self.stage_points(call, live, order, epoch, values, late, s, anomalous)
        resolve = s.resolve.tolist()
        for i, start in enumerate(resolve):
            if start == start:  # not NaN: an episode ended here
                point = points[int(order[i])]
                self.stage_resolve(live, point.timestamp, point.value, start)

    def touched(self) -> list[SeriesId]:
        """Series to write (sorted): the ones with points submitted by a call that went
        through (stored, or duplicates to count)."""
        return [
            sid
            for sid in sorted(self.live)
            if self.live[sid].submitted or self.live[sid].duplicates or self.live[sid].scored
        ]
