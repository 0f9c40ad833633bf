"""Paging through nself-oncall: the outbox sender.

The scoring transaction writes one ``open`` row in ``np_anomaly_page_outbox``
per anomaly episode that pages (a detector with an escalation policy), and one
``resolve`` row when such an episode ends (unless ``auto_resolve`` is off);
the quiet-episode pass (``episodes.py``) writes resolves for episodes whose
series went quiet. Rows are unique per account, dedup key and kind. This
sender claims due rows across accounts (``FOR UPDATE SKIP LOCKED`` under a
short lease, so any number of replicas share the work) and delivers them:

* ``open``: ``POST {ONCALL_URL}/api/v1/alerts`` with the dedup key as
  ``Idempotency-Key``; the answer's alert id is kept on the row.
* ``resolve``: ``POST {ONCALL_URL}/api/v1/alerts/{id}/resolve`` for the alert
  its open row received, with ``Idempotency-Key: resolve:<dedup key>``. It is
  claimed only once its open row is done (sent, or failed for good: then there
  is no alert, and the resolve is marked ``failed``). Resolving an alert that
  is already resolved answers 200: a repeated resolve is harmless.

Outcomes, for both kinds:

* 2xx: sent (on-call answers 200 for an already open dedup key, 201 for new).
* connection errors, timeouts, 5xx, 408, 429: retried with exponential
  backoff and jitter, without limit: a down on-call service delays the page
  but never loses it.
* any other 4xx: the page can never succeed (unknown policy, bad request):
  marked ``failed`` and logged.

Time is injected: ``run_once(now)`` does one pass; the lifetime hook calls it
in a loop (after the quiet-episode pass), woken early when an ingest has
written a page or a resolve.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import quote

import asyncpg
import httpx
from fastapi import FastAPI

from services.anomaly.paging.episodes import close_quiet_episodes
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


class Delivery(NamedTuple):
    """One attempt: the HTTP status (None: no answer), the error, the alert id, and
    whether it can never succeed whatever the status (a resolve with no alert)."""

    status: int | None
    error: str | None = None
    alert_id: str | None = None
    hopeless: bool = False


@dataclass
class PassReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0


# A resolve waits for its open row: claimable once that row is no longer pending.
_CLAIM_SQL = """
WITH claimed AS (
    UPDATE np_anomaly_page_outbox o
       SET claimed_until = $1::timestamptz + make_interval(secs => $3),
           attempts = o.attempts + 1
     WHERE o.id IN (
            SELECT q.id FROM np_anomaly_page_outbox q
             WHERE q.status = 'pending' AND q.next_attempt_at <= $1
               AND (q.claimed_until IS NULL OR q.claimed_until <= $1)
               AND (q.kind = 'open' OR NOT EXISTS (
                    SELECT 1 FROM np_anomaly_page_outbox p
                     WHERE p.source_account_id = q.source_account_id
                       AND p.dedup_key = q.dedup_key AND p.kind = 'open'
                       AND p.status = 'pending'))
             ORDER BY q.next_attempt_at, q.id
             LIMIT $2
               FOR UPDATE SKIP LOCKED)
    RETURNING o.id, o.kind, o.source_account_id, o.detector_id, o.policy_id, o.dedup_key,
              o.severity, o.summary, o.details, o.attempts
)
SELECT c.*, p.alert_id AS open_alert_id, p.status AS open_status
  FROM claimed c
  LEFT JOIN np_anomaly_page_outbox p
    ON c.kind = 'resolve' AND p.source_account_id = c.source_account_id
   AND p.dedup_key = c.dedup_key AND p.kind = 'open'
"""
_NEXT_DUE_SQL = """
SELECT min(GREATEST(q.next_attempt_at, COALESCE(q.claimed_until, q.next_attempt_at)))
  FROM np_anomaly_page_outbox q
 WHERE q.status = 'pending'
   AND (q.kind = 'open' OR NOT EXISTS (
        SELECT 1 FROM np_anomaly_page_outbox p
         WHERE p.source_account_id = q.source_account_id
           AND p.dedup_key = q.dedup_key AND p.kind = 'open' AND p.status = 'pending'))
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
        for row, (status, error, alert_id, hopeless) in zip(rows, results, strict=True):
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
            elif hopeless or (
                status is not None and 400 <= status < 500 and status not in RETRYABLE_4XX
            ):
                report.failed += 1
                log.error(
                    "%s %s (%s) refused by on-call with %s: %s",
                    "page" if row["kind"] == "open" else "resolve of",
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
                    "%s %s not delivered (attempt %s, %s); retrying in %.0fs",
                    "page" if row["kind"] == "open" else "resolve of",
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
        """When the earliest pending page is due (None: nothing pending); a resolve
        waiting for its open page counts once that page is done."""
        value = await self.pool.fetchval(_NEXT_DUE_SQL)
        return value  # type: ignore[no-any-return]

    async def _send(self, row: asyncpg.Record) -> Delivery:
        if row["kind"] == "resolve":
            return await self._resolve(row)
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
            return Delivery(None, f"{exc.__class__.__name__}: {exc}"[:500])
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
        return Delivery(response.status_code, error, alert_id)

    async def _resolve(self, row: asyncpg.Record) -> Delivery:
        """Resolve the alert the episode's open page received."""
        alert_id = row["open_alert_id"]
        if row["open_status"] != "sent" or not alert_id:
            why = "its page failed" if row["open_status"] == "failed" else "no alert id known"
            return Delivery(None, f"nothing to resolve: {why}", hopeless=True)
        headers = {
            "Authorization": f"Bearer {self.secret}",
            "X-Hasura-Source-Account-Id": row["source_account_id"],
            "Idempotency-Key": "resolve:" + row["dedup_key"],
        }
        url = f"{self.url}/{quote(str(alert_id), safe='')}/resolve"
        try:
            response = await self.client.post(url, headers=headers)
        except httpx.HTTPError as exc:
            return Delivery(None, f"{exc.__class__.__name__}: {exc}"[:500])
        if 200 <= response.status_code < 300:
            return Delivery(response.status_code, None, str(alert_id))
        return Delivery(response.status_code, response.text[:500])


def utcnow() -> datetime:
    return datetime.now(UTC)


def paging_hook(
    *, interval: float = 5.0, clock: Callable[[], datetime] = utcnow
) -> Callable[[FastAPI], Any]:
    """A lifetime hook running the paging worker: quiet episodes ended, then the outbox
    sent; a pass when woken, when a retry is due, or every `interval` s."""

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
                await close_quiet_episodes(pool, clock())
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
