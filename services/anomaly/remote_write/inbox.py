"""Remote write acknowledged once durable: the inbox and its drain.

Prometheus sends a shard's requests one at a time and waits for each answer, and
each request holds a sample or two of every series (2,000 samples of 1,000
series): scored one request per transaction, every request pays the per-series
work (a model step, a series row written) for two samples. So
``POST /api/v1/write`` checks a request (``decode``: a 400 writes nothing), stores
its body as received in ``np_anomaly_write_inbox`` and answers 204 once that row
is committed; the samples are scored moments later by this module's drain, many
requests per transaction (``BATCH_SAMPLES``).

* **Order**: an account's bodies are drained oldest first, a batch at a time under
  a session advisory lock of the account (one replica at a time), so a series'
  samples are learned in the order Prometheus sent them.
* **Nothing lost, nothing twice**: a batch's rows are deleted in the transaction
  that stores its points (``before_commit``); a crash or an outage leaves them to
  be drained again (by this replica's sweep, every ``SWEEP_SECONDS``, or any other).
* **Backlog**: past ``anomaly_remote_write_backlog`` samples waiting for an account,
  a request is answered 503 with ``Retry-After`` (Prometheus retries with backoff),
  so a tenant that outruns the scoring queues in Prometheus, not here.
* **A body that cannot be stored** (never expected: each was checked when
  accepted) fails its batch; the batch is retried a body at a time, and a body
  that fails alone is dropped, counted (``nsentry_remote_write_samples_total
  {outcome="dropped"}``) and logged, so that it cannot hold up its account.
* **Tenants**: each account drains on its own task; at most ``DRAINS`` batches
  are scored at once, and a task gives its turn (and its lock) back after every
  batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI

from services.anomaly.ingest.pipeline import Ingestor
from services.anomaly.remote_write.decode import Decoded, LabelMemo, decode
from services.anomaly.remote_write.receive import receive_batch
from services.common.background import repeat, running, worker_pool
from services.common.db import tenant_transaction
from services.common.errors import Unavailable
from services.common.metrics import REMOTE_WRITE_SAMPLES
from services.common.outage import outage_kind

log = logging.getLogger("nsentry.anomaly.remote_write")

BATCH_SAMPLES = 50_000  # samples scored per transaction, at most (one body may be more)
BATCH_ROWS = 256  # bodies looked at per batch, at most
DRAINS = 2  # batches being scored at once, across accounts
# requests kept decoded from their acceptance to their drain in this process, at most
# (decoding is a fifth of the work; a body drained elsewhere or later is decoded again)
DECODED_KEPT = 256
SWEEP_SECONDS = 5.0  # how often bodies no task was told about are looked for
RETRY_AFTER_SECONDS = 1

# the backlog bound and the insert in one statement: no row (None) past the bound
ACCEPT_SQL = """
INSERT INTO np_anomaly_write_inbox (source_account_id, samples, body)
SELECT $1, $2, $3
 WHERE (SELECT COALESCE(sum(samples), 0) FROM np_anomaly_write_inbox
         WHERE source_account_id = $1) < $4
RETURNING id
"""
WAITING_SQL = """
SELECT id, samples FROM np_anomaly_write_inbox
 WHERE source_account_id = $1 ORDER BY id LIMIT $2
"""
BODIES_SQL = """
SELECT id, body FROM np_anomaly_write_inbox
 WHERE source_account_id = $1 AND id = ANY($2::bigint[]) ORDER BY id
"""
DELETE_SQL = """
DELETE FROM np_anomaly_write_inbox WHERE source_account_id = $1 AND id = ANY($2::bigint[])
"""
# across accounts (the worker role): accounts with bodies waiting
ACCOUNTS_SQL = "SELECT DISTINCT source_account_id FROM np_anomaly_write_inbox"
LOCK_SQL = "SELECT pg_try_advisory_lock(hashtextextended('nsentry.remote_write:' || $1, 0))"
UNLOCK_SQL = "SELECT pg_advisory_unlock(hashtextextended('nsentry.remote_write:' || $1, 0))"


class Backlogged(Unavailable):
    """503 with ``Retry-After``: the account has too many samples waiting."""

    code = "backlogged"


class _Failed(Exception):
    """A batch failed for a reason of its own (not an outage): its rows and samples."""

    def __init__(self, ids: list[int], samples: int, error: Exception) -> None:
        super().__init__(ids, samples, error)
        self.ids, self.samples, self.error = ids, samples, error


class _Taken(Exception):
    """A batch's rows were deleted meanwhile (drained elsewhere): its work is rolled back."""


def take(waiting: list[tuple[int, int]], limit: int = BATCH_SAMPLES) -> list[int]:
    """The oldest bodies (``(id, samples)``, oldest first) of one batch: as many as fit
    in ``limit`` samples, and at least one."""
    taken: list[int] = []
    total = 0
    for row_id, samples in waiting:
        if taken and total + samples > limit:
            break
        taken.append(row_id)
        total += samples
    return taken


class WriteInbox:
    """The inbox of one app: ``accept`` stores a request, drain tasks score them."""

    def __init__(self, pool: asyncpg.Pool, ingestor: Ingestor, *, backlog: int) -> None:
        self.pool = pool
        self.ingestor = ingestor
        self.backlog = backlog
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._pending: set[str] = set()  # told of bodies since their task's last look
        self._turns = asyncio.Semaphore(DRAINS)
        self._decoded: dict[int, Decoded] = {}  # by inbox row id, oldest first
        self._label_sets: LabelMemo = {}  # the label sets met, decoded

    async def accept(self, account: str, body: bytes) -> None:
        """Check a request (400 if it is not one) and store it; 503 past the backlog."""
        request = decode(body, self._label_sets)
        async with tenant_transaction(self.pool, account) as conn:
            stored = await conn.fetchval(ACCEPT_SQL, account, request.samples, body, self.backlog)
        if stored is None:
            raise Backlogged(
                f"over {self.backlog:,} remote-write samples of this account wait to be "
                "scored; retry later",
                details={"backlog": self.backlog},
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        if len(self._decoded) >= DECODED_KEPT:  # the oldest (drained elsewhere, say) go
            del self._decoded[next(iter(self._decoded))]
        self._decoded[stored] = request
        self.wake(account)

    def wake(self, account: str) -> None:
        """Bodies of ``account`` wait: drain them (a task per account)."""
        self._pending.add(account)
        if account not in self._tasks:
            self._tasks[account] = asyncio.create_task(self._drain(account))

    async def settled(self, account: str | None = None) -> None:
        """Until no drain task runs (of ``account``, or of any): what was accepted before
        is scored, or failed."""
        while True:
            tasks = [t for a, t in self._tasks.items() if account in (None, a)]
            if not tasks:
                return
            await asyncio.wait(tasks)

    async def close(self) -> None:
        """Stop the drains (a batch being scored is rolled back and stays waiting)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def sweep(self, worker: asyncpg.Pool) -> None:
        """Wake the drain of every account with bodies waiting (after a restart, or bodies
        another replica accepted and did not drain); ``worker``: a pool of the worker
        role, which reads across accounts."""
        for row in await worker.fetch(ACCOUNTS_SQL):
            self.wake(row[0])

    # -- the drain of one account
    async def _drain(self, account: str) -> None:
        try:
            delay = 0.05
            alone = False  # after a batch failed: its oldest body on its own
            while True:
                self._pending.discard(account)
                try:
                    outcome = await self._one_batch(account, alone=alone)
                except _Failed as failed:
                    alone = await self._failed(account, failed, alone)
                    continue
                alone = False
                if outcome == "busy":  # another replica drains it: look again later
                    await asyncio.sleep(delay)
                    delay = min(1.0, delay * 2)
                    continue
                delay = 0.05
                if outcome == "empty" and account not in self._pending:
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an outage: the sweep comes back for the bodies
            log.warning("remote write: draining account %s failed: %r", account, exc)
        finally:
            self._tasks.pop(account, None)

    async def _failed(self, account: str, failed: _Failed, alone: bool) -> bool:
        """A batch failed for a reason of its own (not an outage): retry its oldest body
        alone; a body that fails alone can never be stored, and would hold up the
        account's queue for good: it is dropped, counted and logged. Returns whether
        the next batch is one body alone."""
        if not alone:
            log.warning(
                "remote write: a batch of %d request(s) of account %s failed (%r); "
                "retrying them one by one",
                len(failed.ids),
                account,
                failed.error,
            )
            return True
        log.error(
            "remote write: request %s of account %s cannot be stored (%r): dropped",
            failed.ids,
            account,
            failed.error,
        )
        REMOTE_WRITE_SAMPLES.labels("dropped").inc(failed.samples)
        async with tenant_transaction(self.pool, account) as conn:
            await conn.execute(DELETE_SQL, account, failed.ids)
        return False

    async def _one_batch(self, account: str, *, alone: bool = False) -> str:
        """Score the account's oldest bodies (``alone``: the oldest) in one transaction,
        under the account's lock (taken per batch, so that a waiting account holds no
        connection): "done", or "empty" when none wait, or "busy" when another replica
        holds the lock. Raises ``_Failed`` when the batch failed for a reason of its
        own, an outage as itself."""
        async with self._turns, self.pool.acquire() as lock:
            if not await lock.fetchval(LOCK_SQL, account):
                return "busy"
            try:
                async with tenant_transaction(self.pool, account) as conn:
                    limit = 1 if alone else BATCH_ROWS
                    waiting = [
                        (r["id"], r["samples"])
                        for r in await conn.fetch(WAITING_SQL, account, limit)
                    ]
                    ids = take(waiting)
                    if not ids:
                        return "empty"
                    kept = {i: self._decoded.pop(i) for i in ids if i in self._decoded}
                    missing = [i for i in ids if i not in kept]
                    bodies = await conn.fetch(BODIES_SQL, account, missing) if missing else []
                try:
                    for r in bodies:
                        kept[r["id"]] = decode(bytes(r["body"]), self._label_sets)
                    requests = [kept[i] for i in ids if i in kept]
                    await receive_batch(
                        self.ingestor, account, requests, before_commit=_deleting(account, ids)
                    )
                except _Taken:
                    pass
                except Exception as exc:
                    if outage_kind(exc) is not None:
                        raise
                    samples = sum(n for i, n in waiting if i in ids)
                    raise _Failed(ids, samples, exc) from exc
            finally:
                await lock.fetchval(UNLOCK_SQL, account)
        return "done"


def _deleting(account: str, ids: list[int]) -> Callable[[asyncpg.Connection], Any]:
    async def delete(conn: asyncpg.Connection) -> None:
        status = await conn.execute(DELETE_SQL, account, ids)
        if int(status.split()[-1]) != len(ids):
            raise _Taken()

    return delete


def inbox_hook(*, interval: float = SWEEP_SECONDS) -> Callable[[FastAPI], Any]:
    """A lifetime hook: the app's ``WriteInbox`` (``app.state.write_inbox``), its drains,
    and a sweep for bodies no drain was told about (needs the worker role)."""

    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        settings = app.state.settings
        inbox = WriteInbox(
            app.state.pool, app.state.ingestor, backlog=settings.anomaly_remote_write_backlog
        )
        app.state.write_inbox = inbox
        try:
            if not settings.database_url:
                yield
                return
            async with worker_pool(settings, max_size=1) as worker:
                await inbox.sweep(worker)  # what a stopped replica left, at once

                async def one_pass() -> float:
                    await inbox.sweep(worker)
                    return interval

                loop = repeat(
                    app,
                    one_pass,
                    name="remote write sweep",
                    interval=interval,
                    log=log,
                    first_delay=interval,
                )
                async with running(loop):
                    yield
        finally:
            await inbox.close()

    return hook
