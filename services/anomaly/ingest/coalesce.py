"""Group commit of single-point ingests: many requests, one transaction, one fsync.

Concurrent single-point requests of one account are queued; a drainer takes
the queue as it stands (up to ``max_group`` requests) and ingests it in one
transaction (``Ingestor.ingest_singles``): each request is its own call,
processed in arrival order exactly as if it had come alone, with its own
outcome or error, and every request is answered only after the commit that
stored its point. Nobody waits for a timer: the first request of an idle
account starts a transaction at once, and whoever arrives meanwhile forms the
next group.

Up to ``max_inflight`` groups of an account run at the same time (one can
score while another waits on Postgres). A group never takes a request whose
detector belongs to a group still running: such requests wait their turn in
order, so one detector's requests are stored in arrival order and its live detector
stays with one transaction at a time (``cache.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field

from services.anomaly.ingest.outcome import IngestOutcome, PointLike
from services.anomaly.ingest.pipeline import Ingestor

log = logging.getLogger("nsentry.anomaly.coalesce")


@dataclass
class _Waiting:
    point: PointLike
    future: asyncio.Future[IngestOutcome]


@dataclass
class _Account:
    pending: deque[_Waiting] = field(default_factory=deque)
    busy: set[str] = field(default_factory=set)  # detectors of the running groups
    running: int = 0


class SingleIngest:
    """The group-commit queue of one app (one ``Ingestor``)."""

    def __init__(self, ingestor: Ingestor, *, max_group: int = 128, max_inflight: int = 2) -> None:
        self.ingestor = ingestor
        self.max_group = max_group
        self.max_inflight = max_inflight
        self._accounts: dict[str, _Account] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.groups = 0  # transactions run (for tests and metrics)
        self.requests = 0

    async def submit(self, account: str, point: PointLike) -> IngestOutcome:
        """Ingest one point with group commit; raises the request's own error."""
        future: asyncio.Future[IngestOutcome] = asyncio.get_running_loop().create_future()
        state = self._accounts.get(account)
        if state is None:
            state = self._accounts[account] = _Account()
        state.pending.append(_Waiting(point, future))
        self._start(account, state)
        return await future

    def _start(self, account: str, state: _Account) -> None:
        while state.pending and state.running < self.max_inflight:
            group = self._take(state)
            if not group:
                return  # every waiting request's detector is busy: a running group ends first
            state.running += 1
            task = asyncio.create_task(self._run(account, state, group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self, state: _Account) -> list[_Waiting]:
        group: list[_Waiting] = []
        kept: deque[_Waiting] = deque()
        blocked = state.busy
        taken: set[str] = set()
        while state.pending and len(group) < self.max_group:
            waiting = state.pending.popleft()
            detector_id = waiting.point.detector_id
            if detector_id in blocked:
                kept.append(waiting)  # its detector is in a running group: keep the order
                continue
            group.append(waiting)
            taken.add(detector_id)
        kept.extend(state.pending)
        state.pending = kept
        state.busy |= taken
        return group

    async def _run(self, account: str, state: _Account, group: list[_Waiting]) -> None:
        results: list[IngestOutcome | Exception]
        try:
            results = await self.ingestor.ingest_singles(account, [w.point for w in group])
        except asyncio.CancelledError:  # shutting down: nobody is left to answer
            self._answer(group, [RuntimeError("ingest cancelled")] * len(group))
            raise
        except Exception as exc:  # not expected: ingest_singles answers per request
            log.exception("group ingest failed")
            results = [exc] * len(group)
        finally:
            state.running -= 1
            state.busy -= {w.point.detector_id for w in group}
        self.groups += 1
        self.requests += len(group)
        self._answer(group, results)
        if state.pending:
            self._start(account, state)
        elif not state.running and self._accounts.get(account) is state:
            del self._accounts[account]

    @staticmethod
    def _answer(group: list[_Waiting], results: list[IngestOutcome | Exception]) -> None:
        for waiting, result in zip(group, results, strict=True):
            if waiting.future.done():  # the request went away
                continue
            if isinstance(result, Exception):
                waiting.future.set_exception(result)
            else:
                waiting.future.set_result(result)

    async def drain(self) -> None:
        """Wait for every queued request to be answered (at shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
