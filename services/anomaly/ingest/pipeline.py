"""The ingest pipeline shared by REST ingest, the Hasura action and the event trigger.

One short tenant transaction per call (or per group of coalesced single-point
requests, see ``coalesce.py``), four round trips:

1. ``BEGIN`` and the tenant scope, in one message (``common.db.tenant_transaction``);
2. lock the detectors concerned (``SELECT ... ORDER BY id FOR UPDATE``: several
   replicas and connections serialise per detector, never deadlock) and, in the
   same statement, the series their points are expected in (each series has its
   own model, ``np_anomaly_series``). It returns what this process needs to have
   each series' model live: nothing when the one it keeps in memory
   (``cache.py``) is current, the journal bytes it has not seen when another
   replica ingested meanwhile, or the checkpoint and the whole journal otherwise;
   (only if the detector's group_by put a labelled point in a series the lock did
   not guess: one statement reads those series; only if some points are not
   newer than their series' latest: one statement finds those already stored,
   the duplicates;)
3. score each series' points vectorised, in timestamp order: points newer
   than its latest are learned, older ones are *late* (scored against the
   current state with ``learn=False``); then write everything with ONE
   statement (``sql.py``): the points (multi-row ``INSERT ... SELECT FROM
   unnest(...)``, or an ``UPDATE`` of the not-yet-scored rows for the event
   trigger), new series, the series' counters, threshold state and learned
   state (the learned points appended to the journal, or now and then a new
   checkpoint), and the outbox rows of new anomaly episodes to page. A large
   call is written in parts (by series), each sent before the next is scored;
4. ``COMMIT``; only then do the live models go back to the cache.

The learned state is never lost: checkpoint + journal in the series row
always rebuild it exactly (each journal chunk replays one scoring call, the
same arithmetic on the same inputs), and both are written in the transaction
that stores the points. The pure part is ``scoring.py``; one transaction's
bookkeeping is ``transaction.py`` (with ``calls.py``, ``live.py``,
``staging.py``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import numpy as np

from services.anomaly.ingest import sql
from services.anomaly.ingest.cache import DEFAULT_CAPACITY, DetectorCache
from services.anomaly.ingest.calls import (
    Selected,
    check_detectors,
    find_duplicates,
    refused_errors,
    select_points,
)
from services.anomaly.ingest.live import Call, SeriesId
from services.anomaly.ingest.outcome import IngestOutcome, PointLike
from services.anomaly.ingest.transaction import IngestTransaction
from services.common.db import tenant_transaction
from services.common.errors import ApiError, NotFound

log = logging.getLogger("nsentry.anomaly.ingest")

# A large write goes out in parts of about this many points (by series): Postgres
# stores one part while the next one is scored. Smaller parts overlap more but each
# is a statement of its own: 1,000 suits a remote-write batch (20,000 samples of
# 1,000 series: 20 parts) and bulk ingest (10,000 points of 100 detectors: 10) alike.
PART_POINTS = 1000


class _Raced(Exception):
    """The insert met rows the duplicate check did not look for; the call is redone."""


def _parts(txn: IngestTransaction) -> list[list[SeriesId]]:
    """The touched series in parts of about ``PART_POINTS`` points (sorted)."""
    parts: list[list[SeriesId]] = [[]]
    size = 0
    for sid in txn.touched():
        if size >= PART_POINTS:
            parts.append([])
            size = 0
        parts[-1].append(sid)
        size += txn.live[sid].submitted
    return parts


async def _score_and_write(
    conn: asyncpg.Connection,
    txn: IngestTransaction,
    plans: list[tuple[Call, Selected]],
    sql: str,
) -> tuple[int, dict[SeriesId, tuple[int, int]]]:
    """Score the calls and write them, a part at a time: while Postgres stores one
    part, the next is scored (a detector's calls stay in order within its part)."""
    written = 0
    returned: dict[SeriesId, tuple[int, int]] = {}
    inflight: asyncio.Future[list[asyncpg.Record]] | None = None
    try:
        # each call's series in order (sorted, as the parts): a cursor per call
        queues = [(call, list(selected.items())) for call, selected in plans]
        cursors = [0] * len(queues)
        for part in _parts(txn):
            txn.new_part()
            if part:
                for q, (call, items) in enumerate(queues):
                    k = cursors[q]
                    while k < len(items) and items[k][0] <= part[-1]:
                        sid, (order, epoch, late) = items[k]
                        txn.score(call, sid, order, epoch, late)
                        k += 1
                    cursors[q] = k
            txn.staged = part  # every series of the part, scored or only counted
            args = txn.write_args()
            if inflight is not None:
                written += txn.absorb(await inflight, returned)
            inflight = asyncio.ensure_future(conn.fetch(sql, *args))
            await asyncio.sleep(0)  # let the statement go out before scoring the next part
        assert inflight is not None
        written += txn.absorb(await inflight, returned)
        inflight = None
    finally:
        if inflight is not None and not inflight.done():
            # a part failed to score: let the running statement end before the rollback
            await asyncio.wait([inflight])
            if not inflight.cancelled():
                inflight.exception()
    return written, returned


Clock = Callable[[], datetime]
# run in an ingest's transaction after its write (``Ingestor.ingest``)
BeforeCommit = Callable[[asyncpg.Connection], Awaitable[None]]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Ingestor:
    """The ingest pipeline of one app: its pool, its live-detector cache, whom to tell
    when pages are queued (``on_pages``, the paging sender's wake-up), and its clock
    (``clock``: when points are scored, for the page age limit; tests inject one)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        on_pages: Callable[[], None] | None = None,
        clock: Clock = utcnow,
        cache_capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self.pool = pool
        self.cache = DetectorCache(cache_capacity)
        self.on_pages = on_pages
        self.clock = clock
        self._replica: bool | None = None

    async def ingest(
        self,
        account: str,
        points: Sequence[PointLike],
        *,
        batch: bool,
        unknown_is_404: bool = False,
        quiet_until: datetime | None = None,
        before_commit: BeforeCommit | None = None,
    ) -> IngestOutcome:
        """Store and score points of any of the account's detectors (all or nothing).

        An unknown detector is a 404 for one point, a 422 naming the index in a
        batch (or a 404 naming it with `unknown_is_404`, for the Hasura action).
        Points at or before `quiet_until` (a backfill) page nobody. `before_commit`
        runs in the transaction once the points are written (a caller's own row kept
        in step with them: the Prometheus poller's position); if it raises, nothing
        is written.
        """
        quiet = None if quiet_until is None else quiet_until.timestamp()
        for check_all in (False, True, True):
            call = Call(points=points, quiet_until=quiet)
            try:
                pages = await self._run(
                    account,
                    [call],
                    batch=batch,
                    unknown_is_404=unknown_is_404,
                    check_all=check_all,
                    isolate_errors=False,
                    before_commit=before_commit,
                )
            except _Raced:
                # a point collided with a row stored without the detector lock (a Hasura
                # insert), or a new series with one another transaction created meanwhile:
                # everything was rolled back; redo with every point looked up first
                continue
            call.outcome.pages = pages
            self._paged(pages)
            return call.outcome
        raise AssertionError("unreachable: a checked run races only with a new series")

    async def ingest_singles(
        self, account: str, points: Sequence[PointLike]
    ) -> list[IngestOutcome | Exception]:
        """Single-point requests of one account in one transaction (group commit).

        Each point is its own call, processed in order exactly as if the requests had
        come one by one; each gets its own outcome or error (an unknown or disabled
        detector fails only its request). If the transaction fails as a whole, every
        request is run again on its own, so one cannot take the others down.
        """
        calls = [Call(points=[p]) for p in points]
        try:
            pages = await self._run(
                account,
                calls,
                batch=False,
                unknown_is_404=False,
                check_all=False,
                isolate_errors=True,
            )
        except Exception as exc:  # including _Raced: each request alone, with its own error
            if not isinstance(exc, _Raced | ApiError):
                log.warning("grouped ingest failed, retrying one by one: %r", exc)
            results: list[IngestOutcome | Exception] = []
            for p in points:
                try:
                    results.append(await self.ingest(account, [p], batch=False))
                except Exception as error:
                    results.append(error)
            return results
        self._paged(pages)
        return [call.error if call.error is not None else call.outcome for call in calls]

    async def score_pending(self, account: str, detector_id: str) -> IngestOutcome | None:
        """Score every not-yet-scored point of one detector, in timestamp order.

        For the event trigger: repeated and out-of-order deliveries find nothing
        left to do. Returns None when the detector is disabled (its points wait).
        """
        replica = await self._replica_allowed()
        txn = IngestTransaction(account, self.cache, self.clock())
        txn.text_keys = False  # the rows exist: they are updated by id
        returned = None
        late_points = 0
        try:
            async with tenant_transaction(self.pool, account) as conn:
                await txn.lock(conn, [detector_id], [], replica)
                row = txn.detectors.get(detector_id)
                if row is None:
                    raise NotFound(
                        f"no detector {detector_id!r}", details={"detector_id": detector_id}
                    )
                if not row["enabled"]:
                    return None
                call = await _pending_call(conn, account, detector_id)
                if call is None:
                    return IngestOutcome()
                await txn.assign_series(conn, [call])  # past max_series: left unscored
                refused = {r.index for r in call.refused}
                series = call.series
                assert series is not None
                groups: dict[SeriesId, list[int]] = defaultdict(list)
                for i in range(len(call.points)):
                    if i not in refused:
                        groups[(detector_id, series[i])].append(i)
                plans = []
                for sid in sorted(groups):
                    live = txn.live[sid]
                    epoch = call.epoch[groups[sid]]
                    if live.last_ts is None:
                        late = np.zeros(epoch.shape[0], dtype=bool)
                    else:
                        late = epoch <= live.last_ts.timestamp()
                    late_points += int(late.sum())
                    live.scored = True
                    plans.append((sid, epoch, late))
                await txn.load_detectors(conn)
                for sid, epoch, late in plans:
                    txn.score(call, sid, np.asarray(groups[sid], dtype=np.int64), epoch, late)
                written, committed = await txn.write(conn, sql.UPDATE_SQL)
            returned = committed  # only once COMMIT went through
        finally:
            txn.finish(returned)
        outcome = call.outcome
        outcome.accepted = written
        outcome.late = late_points
        outcome.pages = txn.pages_written
        outcome.anomalies.sort(key=lambda a: (a["timestamp"], a["detector_id"]))
        outcome.count(duplicates=False)
        self._paged(txn.pages_written)
        return outcome

    async def _run(
        self,
        account: str,
        calls: Sequence[Call],
        *,
        batch: bool,
        unknown_is_404: bool,
        check_all: bool,
        isolate_errors: bool,
        before_commit: BeforeCommit | None = None,
    ) -> int:
        """Ingest the calls in order in one transaction; returns the pages queued.

        ``isolate_errors``: an unknown or disabled detector fails only its own call (the
        others go on); otherwise it is raised and nothing is written.
        """
        detector_ids = sorted(set().union(*(call.detector_ids for call in calls)))
        replica = await self._replica_allowed()
        txn = IngestTransaction(account, self.cache, self.clock())
        returned = None
        written = 0
        live_calls: list[Call] = []
        try:
            async with tenant_transaction(self.pool, account) as conn:
                await txn.lock(conn, detector_ids, txn.expected_series(calls), replica)
                for call in calls:
                    if check_detectors(txn, call, batch=batch, unknown_is_404=unknown_is_404):
                        live_calls.append(call)
                    elif not isolate_errors:
                        assert call.error is not None
                        raise call.error
                if not live_calls:
                    return 0
                await txn.assign_series(conn, live_calls)
                for call in list(live_calls):
                    error = txn.refusal(call, batch=batch)
                    if error is not None:
                        if not isolate_errors:
                            raise error
                        call.error = error
                        live_calls.remove(call)
                if not live_calls:
                    return 0
                await find_duplicates(conn, txn, live_calls, check_all)
                plans = [(call, select_points(txn, call)) for call in live_calls]
                await txn.load_detectors(conn)
                statement = sql.INSERT_CHECKED_SQL if check_all else sql.INSERT_SQL
                try:
                    written, committed = await _score_and_write(conn, txn, plans, statement)
                except asyncpg.UniqueViolationError as exc:
                    if check_all and exc.constraint_name != "np_anomaly_series_pkey":
                        raise
                    raise _Raced from None
                if written < sum(call.expected for call in live_calls) and not check_all:
                    raise _Raced
                if before_commit is not None:
                    await before_commit(conn)
            returned = committed  # only once COMMIT went through
        finally:
            txn.finish(returned)
        if len(live_calls) == 1 and written < live_calls[0].expected:
            # the checked run met a row inserted concurrently without the lock: not stored
            call = live_calls[0]
            call.outcome.duplicates = len(call.points) - written
            call.expected = written
        for call in live_calls:
            call.outcome.accepted = call.expected
            call.outcome.late = call.late
            call.outcome.refused = len(call.refused)
            call.outcome.errors = refused_errors(txn, call)
            call.outcome.anomalies.sort(key=lambda a: (a["timestamp"], a["detector_id"]))
            call.outcome.count()
        return txn.pages_written

    async def _replica_allowed(self) -> bool:
        """Whether the pool's role may set session_replication_role (probed once)."""
        if self._replica is None:
            try:
                self._replica = bool(await self.pool.fetchval(sql.REPLICA_PRIVILEGE_SQL))
            except asyncpg.PostgresError:  # before PostgreSQL 15: no such privilege
                self._replica = False
        return self._replica

    def _paged(self, pages: int) -> None:
        if pages and self.on_pages is not None:
            self.on_pages()


@dataclass(frozen=True)
class _Pending:
    """A stored, not-yet-scored point (event path)."""

    detector_id: str
    timestamp: datetime
    value: float
    labels: None = None  # its series is the row's (``Call.series``)


async def _pending_call(conn: asyncpg.Connection, account: str, detector_id: str) -> Call | None:
    """The detector's not-yet-scored points as a call (None when there are none); rows
    inserted directly with NaN/Infinity are scored 0 on the way, never learned."""
    rows = []
    skipped: list[int] = []
    for r in await conn.fetch(sql.PENDING_SQL, account, detector_id):
        (rows if math.isfinite(r["value"]) else skipped).append(r)
    if skipped:
        await conn.execute(sql.NOT_FINITE_SQL, account, [r["id"] for r in skipped])
    if not rows:
        return None
    return Call(
        points=[_Pending(detector_id, r["ts"], r["value"]) for r in rows],
        keys=[r["id"] for r in rows],
        series=[r["series_key"] for r in rows],
    )
