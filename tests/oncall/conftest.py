"""Fixtures of the on-call tests: the app on a fake clock, a worker, real sinks; the
service on a real local port (`live`: uvicorn, its clock injected, PUBLIC_URL pointing
at it, and a worker minting links with that address)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
import uvicorn

from services.common.settings import Settings
from services.oncall.app import create_app
from services.oncall.worker import Worker
from tests.conftest import make_settings, serve_app
from tests.deploy.support import bound_socket
from tests.oncall.helpers import SIGNING_SECRET, FakeClock, HttpSink, SmtpSink, utc

START = "2026-11-23T08:00:00+00:00"


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
async def sink() -> AsyncIterator[HttpSink]:
    server = await HttpSink().start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
def oncall_settings(database_url: str, smtp: SmtpSink) -> Settings:
    return make_settings(
        database_url,
        oncall_allowed_destinations="127.0.0.1",
        webhook_signing_secret=SIGNING_SECRET,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from="oncall@nsentry.test",
    )


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(utc(START))


@pytest.fixture(scope="module")
async def client(oncall_settings: Settings, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(oncall_settings, clock=clock)
    async with serve_app(app) as http:
        yield http


@pytest.fixture(scope="module")
async def make_worker(oncall_settings: Settings) -> AsyncIterator[Callable[..., Any]]:
    workers: list[Worker] = []

    async def make(**options: Any) -> Worker:
        options.setdefault("rng", random.Random(7))
        worker = await Worker.open(oncall_settings, **options)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        await worker.close()


@pytest.fixture(scope="module")
async def worker(make_worker: Callable[..., Any]) -> Worker:
    return await make_worker()


def at(clock: FakeClock) -> datetime:
    return clock()


class _Server(uvicorn.Server):
    """uvicorn in the test's loop; signals stay with pytest."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


@dataclass
class Live:
    """The running service: its address, an HTTP client, its clock and a worker."""

    base: str
    http: httpx.AsyncClient
    clock: FakeClock
    worker: Worker
    settings: Settings


@pytest.fixture(scope="module")
async def live(database_url: str, smtp: SmtpSink) -> AsyncIterator[Live]:
    sock = bound_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = make_settings(
        database_url,
        oncall_allowed_destinations="127.0.0.1",
        webhook_signing_secret=SIGNING_SECRET,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from="oncall@nsentry.test",
        public_url=base,
    )
    clock = FakeClock(utc(START))
    server = _Server(uvicorn.Config(create_app(settings, clock=clock), log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 20
    while not server.started:  # waiting for the port to answer, not for time to pass
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped during startup")
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start in 20 s")
        await asyncio.sleep(0.02)
    worker = await Worker.open(settings, rng=random.Random(7))
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            yield Live(base, http, clock, worker, settings)
    finally:
        await worker.close()
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=15)
        sock.close()
