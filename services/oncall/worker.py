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
from services.common.destinations import DestinationPolicy
from services.common.outage import outage_kind
from services.common.outbox import Lease
from services.common.settings import Settings
from services.oncall.delivery import outbox
from services.oncall.delivery.channels import (
    Channel,
    EmailChannel,
    Result,
    Settled,
    SlackChannel,
    SmtpConfig,
    WebhookChannel,
)
from services.oncall.delivery.http import Connections
from services.oncall.escalation import runner
from services.oncall.integrations import inbound_email
from services.oncall.integrations import service as integrations
from services.oncall.links.keys import link_minter
from services.oncall.links.tokens import Minter
from services.oncall.maintenance import service as maintenance

log = logging.getLogger("nsentry.oncall.worker")
DEFAULT_CONCURRENCY = 32
# sends in flight to one origin (scheme://host:port) at once: a slow or hanging
# destination holds at most this many of the `concurrency` slots
DEFAULT_PER_ORIGIN = 8
# the most one send may take, everything included (connect, request, first byte,
# the whole answer): a destination that drips its answer byte by byte never
# trips a per-read timeout, this deadline ends it
DEFAULT_SEND_SECONDS = 30.0


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
    """Escalation and delivery against one database; safe to run several at once.

    Sends run as tasks owned by the worker: at most `concurrency` in flight, at
    most `per_origin` to one origin, each bounded by `send_seconds` (which the
    lease must cover: a send ends well inside its lease, or another worker would
    claim and send it again meanwhile).
    """

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
        per_origin: int = DEFAULT_PER_ORIGIN,
        send_seconds: float | None = None,
        worker_id: str | None = None,
        links: Minter | None = None,
    ) -> None:
        self.pool = pool
        self.links = links  # signed ack/resolve/escalate links in every notification
        self.channels = dict(channels)
        self.rng = rng or random.Random()
        self.retry = retry or outbox.RetryPolicy()
        self.lease = lease
        self.batch = batch
        self.concurrency = max(1, concurrency)
        self.per_origin = max(1, per_origin)
        self.send_seconds = Lease(lease).send_deadline(send_seconds, DEFAULT_SEND_SECONDS)
        self.worker_id = worker_id or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self._owned: list[Any] = []
        # sends in flight (task -> origin), outcomes waiting to be recorded
        self._sending: dict[asyncio.Task[None], str] = {}
        self._outcomes: list[tuple[outbox.Claimed, Result, DeliveryReport]] = []
        self._recorder: asyncio.Task[None] | None = None
        self._clock: Callable[[], datetime] = _utcnow
        self.settled = asyncio.Event()  # set whenever a send ends (a slot is free)

    @classmethod
    async def open(cls, settings: Settings, **options: Any) -> Worker:
        """A worker with its own pool (worker role) and HTTP client; `close()` releases them."""
        if not settings.database_url:
            raise RuntimeError("DATABASE_URL is not set")
        # logs in as the worker role itself (never the owner): see docs/architecture.md
        pool = await db.create_pool(settings.worker_dsn, role=None, min_size=1, max_size=4)
        connections = Connections()
        channels = options.pop("channels", None) or default_channels(settings, connections)
        options.setdefault("links", link_minter(settings))
        worker = cls(pool, channels=channels, **options)
        worker._owned = [connections, pool]
        return worker

    async def close(self) -> None:
        """Stop the sends in flight (their rows stay leased: claimed again after the
        lease and sent with the same key), record what ended, release resources."""
        for task in list(self._sending):
            task.cancel()
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._flush()
        for resource in self._owned:
            with contextlib.suppress(Exception):
                if isinstance(resource, Connections):
                    await resource.aclose()
                else:
                    await resource.close()
        self._owned = []

    @property
    def in_flight(self) -> dict[str, int]:
        """Sends in flight per origin."""
        counts: dict[str, int] = {}
        for origin in self._sending.values():
            counts[origin] = counts.get(origin, 0) + 1
        return counts

    async def tick(self, now: datetime) -> int:
        """Maintenance windows that began suppress their scope and those that ended
        release it, missed heartbeats open their alerts, then every escalation due at
        `now` advances; the number of alerts advanced."""
        for extra in (maintenance.tick, integrations.heartbeat_tick):
            try:
                await extra(self.pool, now)
            except Exception as exc:  # a bug there must not stop escalations for everyone
                if outage_kind(exc) is not None:
                    raise
                log.exception("%s.%s failed; escalations go on", extra.__module__, "tick")
        return await runner.tick(self.pool, now)

    async def claim(self, now: datetime, limit: int | None = None) -> list[outbox.Claimed]:
        """Lease due notifications (without sending them); `send` then checks at `now`."""
        self._clock = lambda: now
        items, _ = await self._claim(now, limit or self.batch)
        return items

    async def _claim(self, now: datetime, limit: int) -> tuple[list[outbox.Claimed], int]:
        return await outbox.claim(
            self.pool,
            now=now,
            limit=limit,
            lease=self.lease,
            worker_id=self.worker_id,
            in_flight=self.in_flight,
            per_origin=self.per_origin,
            retry=self.retry,
        )

    async def send(self, item: outbox.Claimed) -> Result:
        """One attempt. Right before it the claim is checked (`outbox.go_ahead`): an
        alert acknowledged or resolved since the claim cancels it, a lease lost to
        another worker skips it; neither sends anything."""
        [verdict] = await outbox.go_ahead(self.pool, [item], now=self._clock())
        if verdict != "go":
            return _settled(verdict)
        return await self._attempt(item)

    async def _attempt(self, item: outbox.Claimed) -> Result:
        """Send through the item's channel, within the send deadline (no check)."""
        channel = self.channels.get(item.channel)
        if channel is None:
            return Result("permanent", None, f"no {item.channel} channel configured")
        try:
            # the whole send, answer included, within its deadline (inside the lease)
            async with asyncio.timeout(self.send_seconds):
                return await channel.send(item.message(self._links(item)))
        except TimeoutError:
            return Result("retry", None, f"send timed out after {self.send_seconds:g} s")
        except Exception as exc:  # a channel bug must not kill the loop; retry later
            log.exception("channel %s failed on %s", item.channel, item.id)
            return Result("retry", None, f"internal: {exc.__class__.__name__}")

    def _links(self, item: outbox.Claimed) -> dict[str, str] | None:
        if self.links is None or item.created_at is None or not item.person_id:
            return None
        return self.links.links(
            account=item.account,
            alert_id=str(item.alert_id),
            person_id=item.person_id,
            notification_id=str(item.id),
            created_at=item.created_at,
        )

    async def finish(self, item: outbox.Claimed, result: Result, now: datetime) -> str | None:
        return await outbox.finish(self.pool, item, result, now=now, retry=self.retry, rng=self.rng)

    def _start(self, item: outbox.Claimed, report: DeliveryReport) -> None:
        async def send() -> None:
            result = await self._attempt(item)  # checked by `deliver` just before
            self._outcomes.append((item, result, report))
            if self._recorder is None or self._recorder.done():
                self._recorder = asyncio.create_task(self._record())

        task = asyncio.create_task(send())
        self._sending[task] = outbox.origin_of(item.destination)

        def done(task: asyncio.Task[None]) -> None:
            self._sending.pop(task, None)
            self.settled.set()

        task.add_done_callback(done)

    async def _record(self) -> None:
        """Record the outcomes that arrived, every one that arrived meanwhile in one
        statement, until none is waiting."""
        while self._outcomes:
            batch = self._outcomes[:]
            self._outcomes.clear()
            try:
                statuses = await outbox.finish_many(
                    self.pool,
                    [(item, result) for item, result, _ in batch],
                    now=self._clock(),
                    retry=self.retry,
                    rng=self.rng,
                )
            except Exception:  # the rows stay leased: reclaimed and resent (same key)
                log.exception("recording %d delivery outcomes failed", len(batch))
                continue
            for (_, _, report), status in zip(batch, statuses, strict=True):
                report.add(status)

    async def _flush(self) -> None:
        while self._recorder is not None and not self._recorder.done():
            await asyncio.shield(self._recorder)

    async def deliver(
        self, now: datetime | Callable[[], datetime], *, wait: bool = True
    ) -> DeliveryReport:
        """Send every notification due at `now` (a fixed instant, or a clock).

        Claims only what it can start at once (free slots of `concurrency`, and
        of `per_origin` per origin: an origin at its bound is not claimed, so
        others proceed), starts each send as a task and claims again while due
        rows remain. Outcomes are recorded as they come, every outcome that
        arrived meanwhile in one statement. With `wait` (tests, one-shot runs)
        it goes on, claiming as slots free, until nothing is due or in flight
        and every outcome is recorded. Without (the production loop) it returns
        once nothing more can be claimed, leaving sends in flight: the next call
        claims again without waiting for them (`settled` tells when one ends).
        """
        clock = now if callable(now) else (lambda: now)
        self._clock = clock
        report = DeliveryReport()
        while True:
            self.settled.clear()  # before the claim: a send that ends during it counts
            room = self.concurrency - len(self._sending)
            if room > 0:
                limit = min(self.batch, room)
                items, examined = await self._claim(clock(), limit)
                report.claimed += len(items)
                # the last check before the sends start: an ack that committed since
                # the claim (or is committing) cancels its rows here
                verdicts = await outbox.go_ahead(self.pool, items, now=clock())
                for item, verdict in zip(items, verdicts, strict=True):
                    if verdict == "go":
                        self._start(item, report)
                    else:
                        report.add(outbox.finish_status(_settled(verdict)))
                if examined >= limit:
                    continue  # more may be due
            if not wait or not self._sending:
                break
            await self.settled.wait()
        if wait:
            await self._flush()
        return report


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _settled(verdict: str) -> Result:
    """The result of a claim that was not sent: `cancelled` or `lost` (see go_ahead)."""
    outcome: Settled = "cancelled" if verdict == "cancelled" else "lost"
    return Result(outcome, None, f"not sent: {outcome} before the send")


async def run_worker(
    settings: Settings,
    stop: asyncio.Event,
    *,
    clock: Callable[[], datetime] = _utcnow,
    poll_seconds: float = 1.0,
    options: Mapping[str, Any] | None = None,
) -> None:
    """Tick and deliver until `stop` is set (real clock in production); `options`
    go to `Worker.open` (tests: short deadlines, small bounds)."""
    worker = await _open_when_ready(settings, stop, options or {})
    if worker is None:
        return
    mail = contextlib.AsyncExitStack()
    if settings.inbound_email_port is not None:  # email-to-alert, off unless configured
        await mail.enter_async_context(
            inbound_email.serving(
                worker.pool,
                host=settings.inbound_email_host,
                port=settings.inbound_email_port,
                domain=settings.inbound_email_domain or "localhost",
                clock=clock,
            )
        )
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
                # claims what can start and returns: sends stay in flight (bounded
                # each), the next cycle claims again without waiting for them
                await worker.deliver(clock, wait=False)
                failures = 0
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                failures += 1
                log.warning("worker cycle failed (%s: %s); retrying", exc.__class__.__name__, exc)
            except Exception:  # a bug must not stop paging for everyone: log, back off, go on
                failures += 1
                log.exception("worker cycle failed; retrying")
            delay = poll_seconds if not failures else min(30.0, poll_seconds * 2**failures)
            await _wait_any(stop, wake, delay, worker.settled)
    finally:
        await mail.aclose()
        if listener is not None and not listener.is_closed():
            with contextlib.suppress(Exception):
                await listener.close()
        await worker.close()
        log.info("on-call worker %s stopped", worker.worker_id)


async def _open_when_ready(
    settings: Settings, stop: asyncio.Event, options: Mapping[str, Any]
) -> Worker | None:
    """Open the worker, waiting (with backoff) while the database or its roles are not there."""
    delay = 1.0
    while not stop.is_set():
        try:
            return await Worker.open(settings, **dict(options))
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


async def _wait_any(
    stop: asyncio.Event, wake: asyncio.Event, seconds: float, *more: asyncio.Event
) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in (stop, wake, *more)]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
