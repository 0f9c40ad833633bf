"""The Prometheus poller: due sources claimed, queried, their points ingested.

``Poller.run_once(now)`` is one pass (time is injected): it claims the due
sources across accounts (``FOR UPDATE SKIP LOCKED`` under a lease, so any number
of replicas share them and each source is polled by one at a time), asks each
for its next window (``plan.next_window``), and feeds the answer to the same
``Ingestor`` as ``POST /api/v1/ingest`` and remote write, as one batch in one
transaction that also moves the source's position on (``store.advance``): a
poller that dies mid-poll leaves the position where the stored points end, and
a poll whose lease ran out meanwhile writes nothing (its transaction rolls
back). The lifetime hook (``pull_hook``) runs passes while the app lives.

Failures are the source's, recorded on its row (``source_status``) and counted
in ``nsentry_prometheus_polls_total{outcome="error"}``; the poll is retried one
step later from the same position, so nothing is lost while Prometheus is down
(up to ``lookback_seconds`` back).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from fastapi import FastAPI
from prometheus_client import Counter

from services.anomaly.ingest.pipeline import Ingestor
from services.anomaly.prometheus_pull import store
from services.anomaly.prometheus_pull.client import PrometheusClient, SourceError
from services.anomaly.prometheus_pull.plan import (
    AnswerError,
    epoch,
    instant,
    next_due,
    next_window,
    points_of,
)
from services.anomaly.prometheus_pull.saving import source_policy
from services.anomaly.prometheus_pull.source import pull_source
from services.common.background import repeat, running, until_due, worker_pool
from services.common.db import tenant_transaction
from services.common.errors import ApiError, Conflict, NotFound
from services.common.settings import Settings

log = logging.getLogger("nsentry.anomaly.prometheus_pull")

POLLS = Counter(
    "nsentry_prometheus_polls_total",
    "Prometheus pull polls (one query_range each) by outcome: ok (points stored), error "
    "(the source failed: see the detector's source_status), lost (the source was taken "
    "over or changed meanwhile: nothing written)",
    ["outcome"],
)
PULLED = Counter(
    "nsentry_prometheus_samples_total",
    "Prometheus pull samples by outcome: stored (fed to the ingest), not_finite (NaN or "
    "infinite: skipped), malformed (no number: skipped), outside (not an instant of the "
    "window: skipped)",
    ["outcome"],
)
LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class Poll:
    """One poll of one source: the window asked for and what came of it."""

    account: str
    detector_id: str
    start: datetime | None
    last: datetime | None
    outcome: str  # ok, error, idle (nothing due), lost, gone (detector deleted/disabled)
    points: int = 0
    error: str | None = None
    began: float = 0.0  # monotonic, for tests that check polls never overlap
    ended: float = 0.0


@dataclass
class PassReport:
    polls: list[Poll] = field(default_factory=list)

    @property
    def claimed(self) -> int:
        return len(self.polls)


class Poller:
    """Polls due sources: ``pool`` is the worker pool (claims across accounts),
    ``ingestor`` the app's, ``client`` the HTTP side (with its destination policy)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        ingestor: Ingestor,
        client: PrometheusClient,
        *,
        batch: int = 20,
        lease: timedelta = LEASE,
    ) -> None:
        self.pool = pool
        self.ingestor = ingestor
        self.client = client
        self.batch = batch
        self.lease = lease

    async def run_once(self, now: datetime) -> PassReport:
        """Claim the due sources and poll each (concurrently); one report per poll. A
        database failure of a poll is raised once the others are done."""
        token = uuid.uuid4()
        rows = await store.claim(
            self.pool, now=now, limit=self.batch, token=token, until=now + self.lease
        )
        results = await asyncio.gather(
            *(self._poll(row, now, token) for row in rows), return_exceptions=True
        )
        report = PassReport()
        failure: BaseException | None = None
        for result in results:
            if isinstance(result, BaseException):
                failure = failure or result
            else:
                report.polls.append(result)
        if failure is not None:
            raise failure
        return report

    async def next_due(self) -> datetime | None:
        return await store.next_due(self.pool)

    async def _poll(self, row: asyncpg.Record, now: datetime, token: uuid.UUID) -> Poll:
        began = time.monotonic()
        account, detector_id = row["source_account_id"], row["detector_id"]
        keys = {"account": account, "detector_id": detector_id}
        try:
            source = pull_source(_json(row["metric_source"]), row["bearer"], _json(row["headers"]))
        except (KeyError, TypeError, ValueError):  # written around the API (Hasura, SQL)
            error = "metric_source is not a valid prometheus source: set it through the API"
            POLLS.labels("error").inc()
            retry_at = now + timedelta(minutes=1)
            await store.failed(self.pool, **keys, token=token, due=retry_at, error=error, now=now)
            return Poll(account, detector_id, None, None, "error", error=error, began=began)
        position = row["position"]
        backfill = row["backfill_until"]
        window = next_window(
            None if position is None else epoch(position),
            None if backfill is None else epoch(backfill),
            epoch(now),
            source.step,
            source.lookback,
        )
        if window is None:
            due = instant(next_due(epoch(position), epoch(now), source.step))
            await store.release(self.pool, **keys, token=token, due=due)
            return Poll(account, detector_id, None, None, "idle", began=began, ended=began)
        start, last = instant(window.start), instant(window.last)
        retry_at = now + timedelta(seconds=source.step)
        group_by = _json(row["group_by"])

        async def failed(error: str) -> Poll:
            """A failed poll: counted, recorded (retried a step on), answered."""
            POLLS.labels("error").inc()
            await store.failed(self.pool, **keys, token=token, due=retry_at, error=error, now=now)
            return Poll(
                account,
                detector_id,
                start,
                last,
                "error",
                error=error,
                began=began,
                ended=time.monotonic(),
            )

        try:
            body = await self.client.query_range(source, window)
            pulled = points_of(
                detector_id,
                body,
                window,
                keep_name=group_by is not None and "__name__" in group_by,
            )
        except (SourceError, AnswerError) as exc:
            error = str(exc)
            if _news(row, error):  # once per new error, not once per step while it lasts
                log.warning("prometheus poll of %s (%s) failed: %s", detector_id, account, error)
            return await failed(error)
        skipped = sum(pulled.skipped.values())
        due = instant(next_due(window.last, epoch(now), source.step, behind=window.behind))
        quiet = None if window.quiet_until is None else instant(window.quiet_until)
        backfill_until = quiet if position is None else None

        async def advance(conn: asyncpg.Connection) -> None:
            await store.advance(
                conn,
                **keys,
                token=token,
                position=last,
                backfill_until=backfill_until,
                due=due,
                now=now,
                skipped=skipped,
            )

        try:
            if pulled.points:
                await self.ingestor.ingest(
                    account, pulled.points, batch=True, quiet_until=quiet, before_commit=advance
                )
            else:
                async with tenant_transaction(self.ingestor.pool, account) as conn:
                    await advance(conn)
        except store.LeaseLost:
            POLLS.labels("lost").inc()
            return Poll(
                account, detector_id, start, last, "lost", began=began, ended=time.monotonic()
            )
        except (NotFound, Conflict):  # deleted or disabled since the claim
            return Poll(
                account, detector_id, start, last, "gone", began=began, ended=time.monotonic()
            )
        except ApiError as exc:  # the points were refused as a whole: the source's error
            error = f"points refused: {exc}"[:1000]
            return await failed(error)
        POLLS.labels("ok").inc()
        if _failing(row):
            log.info("prometheus poll of %s (%s) succeeds again", detector_id, account)
        if pulled.points:
            PULLED.labels("stored").inc(len(pulled.points))
        for reason, n in pulled.skipped.items():
            PULLED.labels(reason).inc(n)
        return Poll(
            account,
            detector_id,
            start,
            last,
            "ok",
            points=len(pulled.points),
            began=began,
            ended=time.monotonic(),
        )


def _failing(row: asyncpg.Record) -> bool:
    """Whether the source's last poll failed."""
    failed_at, ok_at = row["last_error_at"], row["last_success_at"]
    return failed_at is not None and (ok_at is None or failed_at > ok_at)


def _news(row: asyncpg.Record, error: str) -> bool:
    """Whether ``error`` is worth a log line: the last poll succeeded, or failed otherwise."""
    return not _failing(row) or row["last_error"] != error[:1000]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def pull_hook(*, interval: float = 5.0, clock: Callable[[], datetime]) -> Callable[[FastAPI], Any]:
    """A lifetime hook polling the Prometheus sources: a pass when one is due (at most
    every ``interval`` s when none is)."""

    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        settings: Settings = app.state.settings
        if not settings.database_url:
            yield
            return
        async with worker_pool(settings, max_size=2) as pool:
            poller = Poller(pool, app.state.ingestor, PrometheusClient(source_policy(settings)))
            app.state.prometheus_poller = poller

            async def one_pass() -> float:
                report = await poller.run_once(clock())
                if report.claimed == poller.batch:
                    return 0
                return until_due(await poller.next_due(), clock(), interval)

            loop = repeat(app, one_pass, name="prometheus pull", interval=interval, log=log)
            async with running(loop):
                yield

    return hook
