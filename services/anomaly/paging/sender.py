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

Outcomes, for both kinds, by the rules nself-oncall's notification delivery
follows too (``services.common.outbox``):

* 2xx: sent (on-call answers 200 for an already open dedup key, 201 for new).
* connection errors, timeouts, 5xx, 408, 429: retried with exponential
  backoff and equal jitter (2 s doubling, capped at 5 min), never sooner
  than a ``Retry-After`` asks (delta-seconds or an HTTP-date; at most 5 min).
  A down on-call service delays a page but does not lose it: a page gets
  ``PAGE_RETRY.max_attempts`` (600) attempts, at least 24 hours of retries
  whatever the jitter.
* any other status (a 4xx: unknown policy, bad request; a 3xx): the page can
  never succeed.

A page that can never succeed, or is out of attempts, is ``failed_permanent``:
logged as an error and counted in ``/metrics``
(``nsentry_pages_total{status="failed_permanent"}``), never dropped silently.
A claim is a lease (60 s, each send bounded to 20 s inside it): a row whose
sender died is claimed again once the lease ran out, with the same
``Idempotency-Key``, and ends ``failed_permanent`` instead if that was its
last attempt.

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
from prometheus_client import Counter

from services.anomaly.paging.episodes import close_quiet_episodes
from services.common.background import repeat, running, until_due, worker_pool
from services.common.outbox import Lease, RetryPolicy, classify_status, parse_retry_after
from services.common.settings import Settings

log = logging.getLogger("nsentry.anomaly.paging")

SOURCE = "nself-anomaly"
# a page must not be lost to an on-call outage: 600 attempts are at least 24 h of
# retries (about 37 h on average) at the 5-minute cap; then failed_permanent
PAGE_RETRY = RetryPolicy(base=timedelta(seconds=2), cap=timedelta(minutes=5), max_attempts=600)
PAGE_LEASE = Lease(timedelta(seconds=60))
SEND_SECONDS = 20.0
PAGES = Counter(
    "nsentry_pages_total",
    "nself-anomaly page deliveries to on-call (opens and resolves) by result",
    ["kind", "status"],
)


class Delivery(NamedTuple):
    """One attempt: the HTTP status (None: no answer), the error, the alert id, whether
    it can never succeed whatever the status (a resolve with no alert), and the
    wait a ``Retry-After`` asked for."""

    status: int | None
    error: str | None = None
    alert_id: str | None = None
    hopeless: bool = False
    retry_after: float | None = None


@dataclass
class PassReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0  # failed_permanent: refused for good, or out of attempts


# A resolve waits for its open row: claimable once that row is no longer pending. A
# row out of attempts (its last attempt's sender died) is claimed without a new
# attempt, to be failed for good.
_CLAIM_SQL = """
WITH due AS (
    SELECT q.id, q.attempts FROM np_anomaly_page_outbox q
     WHERE q.status = 'pending' AND q.next_attempt_at <= $1
       AND (q.claimed_until IS NULL OR q.claimed_until <= $1)
       AND (q.kind = 'open' OR NOT EXISTS (
            SELECT 1 FROM np_anomaly_page_outbox p
             WHERE p.source_account_id = q.source_account_id
               AND p.dedup_key = q.dedup_key AND p.kind = 'open'
               AND p.status = 'pending'))
     ORDER BY q.next_attempt_at, q.id
     LIMIT $2
       FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE np_anomaly_page_outbox o
       SET claimed_until = $3,
           attempts = due.attempts + CASE WHEN due.attempts < $4 THEN 1 ELSE 0 END
      FROM due
     WHERE o.id = due.id
    RETURNING o.id, o.kind, o.source_account_id, o.detector_id, o.policy_id, o.dedup_key,
              o.severity, o.summary, o.details, o.attempts, due.attempts >= $4 AS spent
)
SELECT c.*, p.alert_id AS open_alert_id, p.status AS open_status
  FROM claimed c
  LEFT JOIN np_anomaly_page_outbox p
    ON c.kind = 'resolve' AND p.source_account_id = c.source_account_id
   AND p.dedup_key = c.dedup_key AND p.kind = 'open'
 ORDER BY c.id
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
        retry: RetryPolicy = PAGE_RETRY,
        batch: int = 50,
        lease: Lease = PAGE_LEASE,
        send_seconds: float | None = SEND_SECONDS,
        rng: random.Random | None = None,
    ) -> None:
        self.pool = pool
        self.url = oncall_url.rstrip("/") + "/api/v1/alerts"
        self.secret = secret
        self.client = client
        self.retry = retry
        self.batch = batch
        self.lease = lease
        self.send_seconds = lease.send_deadline(send_seconds, SEND_SECONDS)
        self.rng = rng or random.Random()

    async def run_once(self, now: datetime) -> PassReport:
        """Claim the due pages, send them, record each result. Returns the counts."""
        rows = await self.pool.fetch(
            _CLAIM_SQL, now, self.batch, self.lease.until(now), self.retry.max_attempts
        )
        report = PassReport(claimed=len(rows))
        if not rows:
            return report
        spent = Delivery(None, f"attempt limit ({self.retry.max_attempts}) reached")
        results = await asyncio.gather(
            *(self._send(r, now) if not r["spent"] else _ready(spent) for r in rows)
        )
        for row, delivery in zip(rows, results, strict=True):
            outcome = "permanent" if delivery.hopeless else classify_status(delivery.status)
            if row["spent"]:
                outcome = "permanent"  # not attempted again: out of attempts
            decision = self.retry.decide(
                outcome, row["attempts"], now=now, rng=self.rng, retry_after=delivery.retry_after
            )
            what = "page" if row["kind"] == "open" else "resolve of"
            PAGES.labels(row["kind"], decision.verdict).inc()
            if decision.verdict == "sent":
                report.sent += 1
                await self.pool.execute(
                    "UPDATE np_anomaly_page_outbox SET status = 'sent', sent_at = $2, "
                    "response_status = $3, alert_id = $4, last_error = NULL, "
                    "claimed_until = NULL WHERE id = $1",
                    row["id"],
                    now,
                    delivery.status,
                    delivery.alert_id,
                )
            elif decision.verdict == "failed_permanent":
                report.failed += 1
                log.error(
                    "%s %s (%s) failed for good after %s attempt(s): %s %s",
                    what,
                    row["dedup_key"],
                    row["source_account_id"],
                    row["attempts"],
                    delivery.status if delivery.status is not None else "no answer",
                    delivery.error,
                )
                await self.pool.execute(
                    "UPDATE np_anomaly_page_outbox SET status = 'failed_permanent', "
                    "response_status = coalesce($2, response_status), last_error = $3, "
                    "claimed_until = NULL WHERE id = $1",
                    row["id"],
                    delivery.status,
                    delivery.error,
                )
            else:
                report.retried += 1
                assert decision.retry_at is not None
                log.warning(
                    "%s %s not delivered (attempt %s, %s); retrying at %s",
                    what,
                    row["dedup_key"],
                    row["attempts"],
                    delivery.error,
                    decision.retry_at.isoformat(),
                )
                await self.pool.execute(
                    "UPDATE np_anomaly_page_outbox SET next_attempt_at = $2, "
                    "response_status = $3, last_error = $4, claimed_until = NULL WHERE id = $1",
                    row["id"],
                    decision.retry_at,
                    delivery.status,
                    delivery.error,
                )
        return report

    async def next_due(self) -> datetime | None:
        """When the earliest pending page is due (None: nothing pending); a resolve
        waiting for its open page counts once that page is done."""
        value = await self.pool.fetchval(_NEXT_DUE_SQL)
        return value  # type: ignore[no-any-return]

    async def _send(self, row: asyncpg.Record, now: datetime) -> Delivery:
        """One attempt, bounded by the send deadline (well inside the lease)."""
        try:
            async with asyncio.timeout(self.send_seconds):
                if row["kind"] == "resolve":
                    return await self._resolve(row, now)
                return await self._open(row, now)
        except TimeoutError:
            return Delivery(None, f"timed out after {self.send_seconds:g} s")
        except httpx.HTTPError as exc:
            return Delivery(None, f"{exc.__class__.__name__}: {exc}"[:500])

    def _answer(self, response: httpx.Response, now: datetime) -> Delivery:
        """A non-2xx answer: its status, body and the ``Retry-After`` it asked for."""
        wait = parse_retry_after(
            response.headers.get("retry-after"), now=now, date=response.headers.get("date")
        )
        return Delivery(response.status_code, response.text[:500], retry_after=wait)

    async def _open(self, row: asyncpg.Record, now: datetime) -> Delivery:
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
        response = await self.client.post(self.url, json=body, headers=headers)
        if not 200 <= response.status_code < 300:
            return self._answer(response, now)
        try:
            answer: Any = response.json()
        except ValueError:
            answer = None
        alert_id = None
        if isinstance(answer, dict) and answer.get("id") is not None:
            alert_id = str(answer["id"])
        return Delivery(response.status_code, None, alert_id)

    async def _resolve(self, row: asyncpg.Record, now: datetime) -> Delivery:
        """Resolve the alert the episode's open page received."""
        alert_id = row["open_alert_id"]
        if row["open_status"] != "sent" or not alert_id:
            failed = row["open_status"] == "failed_permanent"
            why = "its page failed" if failed else "no alert id known"
            return Delivery(None, f"nothing to resolve: {why}", hopeless=True)
        headers = {
            "Authorization": f"Bearer {self.secret}",
            "X-Hasura-Source-Account-Id": row["source_account_id"],
            "Idempotency-Key": "resolve:" + row["dedup_key"],
        }
        url = f"{self.url}/{quote(str(alert_id), safe='')}/resolve"
        response = await self.client.post(url, headers=headers)
        if 200 <= response.status_code < 300:
            return Delivery(response.status_code, None, str(alert_id))
        return self._answer(response, now)


async def _ready(delivery: Delivery) -> Delivery:
    return delivery


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
                return until_due(await sender.next_due(), clock(), interval)

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
