"""Per-destination isolation (issue 12 item 2): a send is bounded in time, a slow
destination holds at most `per_origin` sends, and claiming goes on while sends
are in flight. Real HTTP servers: one that never answers, one that drips its
answer a byte at a time, and a healthy sink of another account."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.common.settings import Settings
from services.oncall.worker import Worker, run_worker
from tests.conftest import auth_headers
from tests.oncall.helpers import FakeClock, HttpSink, webhook_responders

SLOW = "acct-isolation-slow"
HEALTHY = "acct-isolation-healthy"
HS = auth_headers(SLOW)
HH = auth_headers(HEALTHY)


class SlowSink:
    """A real HTTP server that reads each request and then either never answers
    (`drip=None`) or sends a 200 whose declared body comes a byte every `drip`
    seconds. Counts the requests in flight (until the client hangs up)."""

    def __init__(self, drip: float | None = None) -> None:
        self.drip = drip
        self.port = 0
        self.requests = 0
        self.open = 0
        self.most_open = 0
        self._server: asyncio.Server | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> SlowSink:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counted = False
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode("latin-1").split("\r\n"):
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            await reader.readexactly(length)
            self.requests += 1
            self.open += 1
            counted = True
            self.most_open = max(self.most_open, self.open)
            if self.drip is None:
                await reader.read()  # no answer; until the client gives up
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                while True:  # a byte per `drip` seconds; ends when the client hangs up
                    writer.write(b"x")
                    await writer.drain()
                    try:
                        if not await asyncio.wait_for(reader.read(1), self.drip):
                            break
                    except TimeoutError:
                        pass
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if counted:
                self.open -= 1
            writer.close()


@pytest.fixture(scope="module")
async def hanging() -> AsyncIterator[SlowSink]:
    server = await SlowSink().start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
async def dripping() -> AsyncIterator[SlowSink]:
    server = await SlowSink(drip=0.05).start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
async def people(
    client: httpx.AsyncClient, sink: HttpSink, hanging: SlowSink, dripping: SlowSink
) -> None:
    await webhook_responders(client, hanging, ("hangs",), HS)  # type: ignore[arg-type]
    await webhook_responders(client, dripping, ("drips",), HS)  # type: ignore[arg-type]
    await webhook_responders(client, sink, ("healthy",), HH)


async def trigger(client: httpx.AsyncClient, policy: str, headers: dict[str, str]) -> str:
    response = await client.post(
        "/api/v1/alerts", json={"policy_id": policy, "summary": policy}, headers=headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def notification(client: httpx.AsyncClient, alert: str, headers: dict[str, str]) -> Any:
    response = await client.get(f"/api/v1/alerts/{alert}", headers=headers)
    assert response.status_code == 200, response.text
    [found] = response.json()["notifications"]
    return found


async def until(predicate: Callable[[], Any], seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while not await predicate():  # noqa: ASYNC110 - polls the API and the sinks
            await asyncio.sleep(0.02)


async def test_a_healthy_sink_is_not_held_up_by_a_hanging_or_dripping_one(
    people: None,
    client: httpx.AsyncClient,
    oncall_settings: Settings,
    sink: HttpSink,
    hanging: SlowSink,
    dripping: SlowSink,
    clock: FakeClock,
) -> None:
    slow = [await trigger(client, "hangs", HS) for _ in range(3)]
    slow += [await trigger(client, "drips", HS) for _ in range(3)]
    stop = asyncio.Event()
    options = {"per_origin": 2, "send_seconds": 3.0}
    loop = asyncio.create_task(
        run_worker(oncall_settings, stop, clock=clock, poll_seconds=0.05, options=options)
    )
    try:

        async def stuck() -> bool:
            return hanging.open == 2 and dripping.open == 2

        await until(stuck, 5)
        started = time.monotonic()
        healthy = await trigger(client, "healthy", HH)
        await sink.wait_for("/healthy", seconds=1.5)
        assert time.monotonic() - started < 1.5
        # the slow ones are still stuck, each origin holding only its two slots
        assert hanging.open == 2 and dripping.open == 2
        assert (await notification(client, healthy, HH))["status"] in ("sending", "sent")

        async def ended() -> bool:
            found = [await notification(client, a, HS) for a in slow]
            return all(n["status"] == "failed" for n in found)

        await until(ended, 10)  # two rounds of a 3 s deadline per origin
    finally:
        stop.set()
        await loop
    for alert in slow:
        found = await notification(client, alert, HS)
        assert found["last_error"] == "send timed out after 3 s"
    assert hanging.most_open == 2 and dripping.most_open == 2


async def test_a_dripping_answer_ends_at_the_send_deadline_as_a_retry_with_backoff(
    people: None,
    client: httpx.AsyncClient,
    make_worker: Callable[..., Any],
    dripping: SlowSink,
    clock: FakeClock,
) -> None:
    alert = await trigger(client, "drips", HS)
    worker: Worker = await make_worker(send_seconds=0.5)
    started = time.monotonic()
    report = await worker.deliver(clock())
    elapsed = time.monotonic() - started
    assert report.by_status == {"failed": 1}
    assert 0.5 <= elapsed < 2.0  # the whole answer would take 100 s at this pace
    found = await notification(client, alert, HS)
    assert found["last_error"] == "send timed out after 0.5 s"
    events = (await client.get(f"/api/v1/alerts/{alert}", headers=HS)).json()["timeline"]
    retry_at = events[-1]["details"]["retry_at"]
    # the outbox's backoff on the injected clock: 15 to 30 s after a first attempt
    assert (
        clock() + timedelta(seconds=15) <= datetime_of(retry_at) <= clock() + timedelta(seconds=30)
    )


def datetime_of(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text)


async def test_at_most_per_origin_sends_are_in_flight_to_a_slow_origin(
    people: None,
    client: httpx.AsyncClient,
    make_worker: Callable[..., Any],
    hanging: SlowSink,
    sink: HttpSink,
    clock: FakeClock,
) -> None:
    hanging.most_open = 0
    before = hanging.requests
    alerts = [await trigger(client, "hangs", HS) for _ in range(6)]
    healthy = await trigger(client, "healthy", HH)
    worker: Worker = await make_worker(send_seconds=0.5, per_origin=2)
    started = time.monotonic()
    deliver = asyncio.create_task(worker.deliver(clock()))
    await sink.wait_for("/healthy", count=2, seconds=1.0)  # at once, not after a deadline
    assert time.monotonic() - started < 0.5
    report = await deliver
    assert report.claimed == 7
    assert report.by_status == {"failed": 6, "sent": 1}
    assert hanging.requests - before == 6 and hanging.most_open == 2
    assert 1.5 <= time.monotonic() - started < 4.0  # three rounds of two
    assert (await notification(client, healthy, HH))["status"] == "sent"
    for alert in alerts:
        assert (await notification(client, alert, HS))["status"] == "failed"
