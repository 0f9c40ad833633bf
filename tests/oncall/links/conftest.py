"""Fixtures of the link tests: the service on a real local port (uvicorn, its clock
injected), PUBLIC_URL pointing at it, and a worker minting links with that address."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from services.common.settings import Settings
from services.oncall.app import create_app
from services.oncall.worker import Worker
from tests.conftest import make_settings
from tests.deploy.support import bound_socket
from tests.oncall.helpers import SIGNING_SECRET, FakeClock, SmtpSink, utc

START = "2026-11-23T08:00:00+00:00"


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
