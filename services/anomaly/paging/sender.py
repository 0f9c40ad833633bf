"""Paging through nself-oncall: the outbox sender.

The scoring transaction writes one ``np_anomaly_page_outbox`` row per anomaly
episode of a detector that has an escalation policy (unique per account and
dedup key). This sender claims due rows across accounts (``FOR UPDATE SKIP
LOCKED`` under a short lease, so any number of replicas share the work) and
POSTs each to ``{ONCALL_URL}/api/v1/alerts`` until nself-oncall answers 2xx.

* 2xx: sent (on-call answers 200 for an already open dedup key, 201 for new).
* connection errors, timeouts, 5xx, 408, 429: retried with exponential
  backoff and jitter, without limit: a down on-call service delays the page
  but never loses it.
* any other 4xx: the page can never succeed (unknown policy, bad request):
  marked ``failed`` and logged.

Time is injected: ``run_once(now)`` does one pass; the lifetime hook calls it
in a loop, woken early when an ingest has written a page.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI

from services.common.background import repeat, running, worker_pool
from services.common.settings import Settings

log = logging.getLogger("nsentry.anomaly.paging")

SOURCE = "nself-anomaly"
RETRYABLE_4XX = frozenset({408, 429})


@dataclass(frozen=True)
class Backoff:
    """Delay before retry n (1-based): ``base * factor**(n-1)`` capped, ± jitter."""

    base: float = 2.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: float = 0.2

    def delay(self, attempts: int, rand: Callable[[], float] = random.random) -> timedelta:
        raw = min(self.cap, self.base * self.factor ** max(attempts - 1, 0))
        spread = raw * self.jitter * (2.0 * rand() - 1.0)
        return timedelta(seconds=max(0.0, raw + spread))


@dataclass
class PassReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0


_CLAIM_SQL = """
UPDATE np_anomaly_page_outbox o
   SET claimed_until = $1::timestamptz + make_interval(secs => $3),
       attempts = o.attempts + 1
 WHERE o.id IN (
        SELECT id FROM np_anomaly_page_outbox
         WHERE status = 'pending' AND next_attempt_at <= $1
           AND (claimed_until IS NULL OR claimed_until <= $1)
         ORDER BY next_attempt_at, id
         LIMIT $2
           FOR UPDATE SKIP LOCKED)
RETURNING o.id, o.source_account_id, o.detector_id, o.policy_id, o.dedup_key, o.severity,
          o.summary, o.details, o.attempts
"""


class PageSender:
    """Delivers due outbox rows; one ``run_once(now)`` is one pass."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        oncall_url: str,
        secret: str,
        client: httpx.AsyncClient,
        backoff: Backoff | None = None,
        batch: int = 50,
        lease_seconds: float = 60.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.pool = pool
        self.url = oncall_url.rstrip("/") + "/api/v1/alerts"
        self.secret = secret
        self.client = client
        self.backoff = backoff or Backoff()
        self.batch = batch
        self.lease_seconds = lease_seconds
        self.rand = rand

    async def run_once(self, now: datetime) -> PassReport:
        """Claim the due pages, send them, record each result. Returns the counts."""
        rows = await self.pool.fetch(_CLAIM_SQL, now, self.batch, self.lease_seconds)
        report = PassReport(claimed=len(rows))
        if not rows:
            return report
        results = await asyncio.gather(*(self._send(r) for r in rows))
        for row, (status, error, alert_id) in zip(rows, results, strict=True):
            if status is not None and 200 <= status < 300:
                report.sent += 1
                await self.pool.execute(
                    "UPDATE np_anomaly_page_outbox SET status = 'sent', sent_at = $2, "
                    "response_status = $3, alert_id = $4, last_error = NULL, "
                    "claimed_until = NULL WHERE id = $1",
                    row["id"],
                    now,
                    status,
                    alert_id,
                )
            elif status is not None and 400 <= status < 500 and status not in RETRYABLE_4XX:
                report.failed += 1
                log.error(
                    "page %s (%s) refused by on-call with %s: %s",
                    row["dedup_key"],
                    row["source_account_id"],
                    status,
                    error,
                )
                await self.pool.execute(
                    "UPDATE np_anomaly_page_outbox SET status = 'failed', response_status = $2, "
                    "last_error = $3, claimed_until = NULL WHERE id = $1",
                    row["id"],
                    status,
                    error,
                )
            else:
                report.retried += 1
                delay = self.backoff.delay(row["attempts"], self.rand)
                log.warning(
                    "page %s not delivered (attempt %s, %s); retrying in %.0fs",
                    row["dedup_key"],
                    row["attempts"],
                    error,
                    delay.total_seconds(),
                )
                await self.pool.execute(
                    "UPDATE np_anomaly_page_outbox SET next_attempt_at = $2, "
                    "response_status = $3, last_error = $4, claimed_until = NULL WHERE id = $1",
                    row["id"],
                    now + delay,
                    status,
                    error,
                )
        return report

    async def next_due(self) -> datetime | None:
        """When the earliest pending page is due (None: nothing pending)."""
        value = await self.pool.fetchval(
            "SELECT min(GREATEST(next_attempt_at, COALESCE(claimed_until, next_attempt_at))) "
            "FROM np_anomaly_page_outbox WHERE status = 'pending'"
        )
        return value  # type: ignore[no-any-return]

    async def _send(self, row: asyncpg.Record) -> tuple[int | None, str | None, str | None]:
        body = {
            "policy_id": row["policy_id"],
            "summary": row["summary"],
            "details": row["details"],
            "severity": row["severity"],
            "dedup_key": row["dedup_key"],
            "source": SOURCE,
        }
        headers = {
            "Authorization": f"Bearer {self.secret}",
            "X-Hasura-Source-Account-Id": row["source_account_id"],
            "Idempotency-Key": row["dedup_key"],
        }
        try:
            response = await self.client.post(self.url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{exc.__class__.__name__}: {exc}"[:500], None
        alert_id = None
        error = None
        try:
            answer: Any = response.json()
        except ValueError:
            answer = None
        if 200 <= response.status_code < 300:
            if isinstance(answer, dict) and answer.get("id") is not None:
                alert_id = str(answer["id"])
        else:
            error = response.text[:500]
        return response.status_code, error, alert_id


def utcnow() -> datetime:
    return datetime.now(UTC)


def paging_hook(
    *, interval: float = 5.0, clock: Callable[[], datetime] = utcnow
) -> Callable[[FastAPI], Any]:
    """A lifetime hook running the sender: a pass when woken or every `interval` s."""

    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        settings: Settings = app.state.settings
        app.state.page_wakeup = asyncio.Event()
        if not settings.database_url or settings.plugin_secret is None:
            yield
            return
        async with (
            worker_pool(settings, max_size=2) as pool,
            httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0)) as client,
        ):
            sender = PageSender(
                pool,
                oncall_url=settings.oncall_url,
                secret=settings.plugin_secret.get_secret_value(),
                client=client,
            )
            app.state.page_sender = sender

            async def one_pass() -> float:
                report = await sender.run_once(clock())
                if report.claimed == sender.batch:
                    return 0  # more may be due
                due = await sender.next_due()
                if due is None:
                    return interval
                return min(interval, max(0.05, (due - clock()).total_seconds()))

            loop = repeat(
                app,
                one_pass,
                name="paging",
                interval=interval,
                log=log,
                wakeup=app.state.page_wakeup,
            )
            async with running(loop):
                yield

    return hook
