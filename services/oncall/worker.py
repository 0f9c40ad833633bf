"""The on-call worker: escalation ticks and notification delivery.

`Worker.tick(now)` advances every due escalation and `Worker.deliver(now)`
sends every due notification; both take the instant as an argument (tests
drive them with a fake clock). `run_worker(settings, stop)` is the production
loop (`nsentry worker`, `nsentry up`): real clock, woken early by
`pg_notify('np_oncall_wake')` when an alert queues notifications, otherwise
polling once a second. Any number of workers may run against one database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.common import db
from services.common.settings import Settings
from services.oncall.delivery import outbox
from services.oncall.delivery.channels import (
    Channel,
    EmailChannel,
    Result,
    SlackChannel,
    SmtpConfig,
    WebhookChannel,
)
from services.oncall.delivery.destinations import DestinationPolicy
from services.oncall.delivery.http import Connections
from services.oncall.escalation import runner

log = logging.getLogger("nsentry.oncall.worker")
DEFAULT_CONCURRENCY = 32


@dataclass
class DeliveryReport:
    claimed: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    def add(self, status: str | None) -> None:
        key = status or "lease_lost"
        self.by_status[key] = self.by_status.get(key, 0) + 1


def default_channels(settings: Settings, client: Connections) -> dict[str, Channel]:
    destinations = DestinationPolicy.from_settings(
        settings.allowed_destinations, local_mode=settings.nsentry_local_mode
    )
    secret = (
        settings.webhook_signing_secret.get_secret_value().encode()
        if settings.webhook_signing_secret
        else None
    )
    smtp = SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_from,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        starttls=settings.smtp_starttls,
    )
    return {
        "webhook": WebhookChannel(client, destinations=destinations, signing_secret=secret),
        "slack": SlackChannel(client, destinations=destinations, signing_secret=secret),
        "email": EmailChannel(smtp),
    }


class Worker:
    """Escalation and delivery against one database; safe to run several at once."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        channels: Mapping[str, Channel],
        rng: random.Random | None = None,
        retry: outbox.RetryPolicy | None = None,
        lease: timedelta = timedelta(minutes=2),
        batch: int = 100,
        concurrency: int = DEFAULT_CONCURRENCY,
        worker_id: str | None = None,
    ) -> None:
        self.pool = pool
        self.channels = dict(channels)
        self.rng = rng or random.Random()
        self.retry = retry or outbox.RetryPolicy()
        self.lease = lease
        self.batch = batch
        self.concurrency = concurrency
        self.worker_id = worker_id or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self._owned: list[Any] = []

    @classmethod
    async def open(cls, settings: Settings, **options: Any) -> Worker:
        """A worker with its own pool (worker role) and HTTP client; `close()` releases them."""
        if not settings.database_url:
            raise RuntimeError("DATABASE_URL is not set")
        # logs in as the worker role itself (never the owner): see docs/architecture.md
        pool = await db.create_pool(settings.worker_dsn, role=None, min_size=1, max_size=4)
        connections = Connections()
        channels = options.pop("channels", None) or default_channels(settings, connections)
        worker = cls(pool, channels=channels, **options)
        worker._owned = [connections, pool]
        if not settings.webhook_signing_secret:
            log.warning("WEBHOOK_SIGNING_SECRET is not set: webhooks go out without X-Signature")
        return worker

    async def close(self) -> None:
        for resource in self._owned:
            with contextlib.suppress(Exception):
                if isinstance(resource, Connections):
                    await resource.aclose()
                else:
                    await resource.close()
        self._owned = []

    async def tick(self, now: datetime) -> int:
        """Advance every escalation due at `now`; the number of alerts advanced."""
        return await runner.tick(self.pool, now)

    async def claim(self, now: datetime, limit: int | None = None) -> list[outbox.Claimed]:
        """Lease due notifications (without sending them)."""
        items, _ = await self._claim(now, limit or self.batch)
        return items

    async def _claim(self, now: datetime, limit: int) -> tuple[list[outbox.Claimed], int]:
        return await outbox.claim(
            self.pool, now=now, limit=limit, lease=self.lease, worker_id=self.worker_id
        )

    async def send(self, item: outbox.Claimed) -> Result:
        channel = self.channels.get(item.channel)
        if channel is None:
            return Result("permanent", None, f"no {item.channel} channel configured")
        try:
            # a send must end well inside its lease, or another worker would claim and
            # send it again while this one still waits on a slow destination
            async with asyncio.timeout(self.lease.total_seconds() / 3):
                return await channel.send(item.message())
        except TimeoutError:
            return Result("retry", None, "send timed out")
        except Exception as exc:  # a channel bug must not kill the loop; retry later
            log.exception("channel %s failed on %s", item.channel, item.id)
            return Result("retry", None, f"internal: {exc.__class__.__name__}")

    async def finish(self, item: outbox.Claimed, result: Result, now: datetime) -> str | None:
        return await outbox.finish(self.pool, item, result, now=now, retry=self.retry, rng=self.rng)

    async def deliver(self, now: datetime | Callable[[], datetime]) -> DeliveryReport:
        """Send every notification due at `now` (a fixed instant, or a clock).

        A pipeline: claims a batch and starts sending it (at most `concurrency`
        sends at once); claims the next batch as soon as a send slot is free
        rather than when the whole batch is done, so one slow destination does
        not hold up the others; records outcomes as they come, every outcome
        that arrived meanwhile in one statement. Goes on while due rows remain.
        """
        clock = now if callable(now) else (lambda: now)
        report = DeliveryReport()
        gate = asyncio.Semaphore(self.concurrency)
        sending: set[asyncio.Task[None]] = set()
        outcomes: list[tuple[outbox.Claimed, Result]] = []
        arrived = asyncio.Event()
        claiming = True

        async def send(item: outbox.Claimed) -> None:
            async with gate:
                result = await self.send(item)
            outcomes.append((item, result))
            arrived.set()

        async def record() -> None:
            while claiming or sending or outcomes:
                await arrived.wait()
                arrived.clear()
                while outcomes:
                    batch = outcomes[:]
                    outcomes.clear()
                    try:
                        statuses = await outbox.finish_many(
                            self.pool, batch, now=clock(), retry=self.retry, rng=self.rng
                        )
                    except Exception:  # the rows stay leased: reclaimed and resent (same key)
                        log.exception("recording %d delivery outcomes failed", len(batch))
                        continue
                    for status in statuses:
                        report.add(status)

        recorder = asyncio.create_task(record())
        try:
            while not recorder.done():
                items, examined = await self._claim(clock(), self.batch)
                report.claimed += len(items)
                for item in items:
                    task = asyncio.create_task(send(item))
                    sending.add(task)
                    task.add_done_callback(sending.discard)
                if examined < self.batch:
                    break
                while len(sending) >= self.concurrency:
                    await asyncio.wait(set(sending), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if sending:  # sends do not raise: a channel's failure is an outcome
                await asyncio.gather(*sending)
            claiming = False
            arrived.set()
            await recorder
        return report


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def run_worker(
    settings: Settings,
    stop: asyncio.Event,
    *,
    clock: Callable[[], datetime] = _utcnow,
    poll_seconds: float = 1.0,
) -> None:
    """Tick and deliver until `stop` is set (real clock in production)."""
    worker = await _open_when_ready(settings, stop)
    if worker is None:
        return
    wake = asyncio.Event()
    listener: asyncpg.Connection | None = None
    failures = 0
    last_tick = -math.inf
    log.info("on-call worker %s started", worker.worker_id)
    try:
        while not stop.is_set():
            if listener is None or listener.is_closed():
                listener = await _listen(settings, wake)
            try:
                wake.clear()
                # escalations are due by the clock: a tick per poll interval is enough,
                # not one per wake-up (every alert that queues a page wakes the worker)
                if time.monotonic() - last_tick >= poll_seconds:
                    last_tick = time.monotonic()
                    await worker.tick(clock())
                await worker.deliver(clock)
                failures = 0
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                failures += 1
                log.warning("worker cycle failed (%s: %s); retrying", exc.__class__.__name__, exc)
            except Exception:  # a bug must not stop paging for everyone: log, back off, go on
                failures += 1
                log.exception("worker cycle failed; retrying")
            delay = poll_seconds if not failures else min(30.0, poll_seconds * 2**failures)
            await _wait_any(stop, wake, delay)
    finally:
        if listener is not None and not listener.is_closed():
            with contextlib.suppress(Exception):
                await listener.close()
        await worker.close()
        log.info("on-call worker %s stopped", worker.worker_id)


async def _open_when_ready(settings: Settings, stop: asyncio.Event) -> Worker | None:
    """Open the worker, waiting (with backoff) while the database or its roles are not there."""
    delay = 1.0
    while not stop.is_set():
        try:
            return await Worker.open(settings)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("database not ready for the worker (%s); retrying", exc.__class__.__name__)
        await _wait_any(stop, asyncio.Event(), delay)
        delay = min(delay * 2, 15.0)
    return None


async def _listen(settings: Settings, wake: asyncio.Event) -> asyncpg.Connection | None:
    assert settings.database_url
    try:
        conn = await db.connect(settings.worker_dsn)
        await conn.add_listener(runner.WAKE_CHANNEL, lambda *_: wake.set())
        return conn
    except (OSError, asyncpg.PostgresError) as exc:
        log.warning("cannot listen for wake-ups (%s); polling only", exc.__class__.__name__)
        return None


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
