"""Fixtures of the on-call tests: the app on a fake clock, a worker, real sinks."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from services.common.settings import Settings
from services.oncall.app import create_app
from services.oncall.worker import Worker
from tests.conftest import make_settings, serve_app
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
