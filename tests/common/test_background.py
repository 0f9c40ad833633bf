"""The loop behind the services' background work (paging sender, pruner)."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from services.common.background import repeat, running
from services.common.outage import outages

log = logging.getLogger("nsentry.test.background")


def app(ready: bool) -> Any:
    return SimpleNamespace(state=SimpleNamespace(ready=ready))


async def test_a_failing_pass_is_logged_by_name_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    passes = 0
    wakeup, done = asyncio.Event(), asyncio.Event()

    async def one_pass() -> float:
        nonlocal passes
        passes += 1
        if passes == 1:
            wakeup.set()  # wakes the wait that follows the failure
            raise RuntimeError("database hiccup")
        if passes == 4:
            done.set()
            return 60.0
        return 0  # more is due: the next pass at once

    with caplog.at_level(logging.ERROR, logger=log.name):
        async with running(
            repeat(app(True), one_pass, name="probe", interval=60.0, log=log, wakeup=wakeup)
        ):
            await asyncio.wait_for(done.wait(), timeout=5)
    assert [r.getMessage() for r in caplog.records] == ["probe pass failed"]
    assert passes == 4


async def test_no_pass_while_the_app_is_not_ready() -> None:
    called = False

    async def one_pass() -> float:
        nonlocal called
        called = True
        return 0

    wakeup = asyncio.Event()
    async with running(
        repeat(app(False), one_pass, name="probe", interval=60.0, log=log, wakeup=wakeup)
    ):
        for _ in range(20):
            wakeup.set()
            await asyncio.sleep(0)
    assert not called


async def test_an_interval_must_be_positive() -> None:
    async def one_pass() -> float:
        return 0

    with pytest.raises(ValueError, match="positive"):
        await repeat(app(True), one_pass, name="probe", interval=0, log=log)


async def test_a_database_outage_is_logged_once_per_interval_without_a_trace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """50 passes that cannot reach Postgres: one line for the kind of failure (no
    traceback), then one when a pass gets through again; the loop never ends."""
    passes = 0
    wakeup, done = asyncio.Event(), asyncio.Event()

    async def one_pass() -> float:
        nonlocal passes
        passes += 1
        wakeup.set()  # the next pass at once, though the interval is a minute
        if passes <= 50:
            raise ConnectionRefusedError(111, "Connection refused")
        if passes == 52:
            done.set()
        return 0

    outages.reset()
    try:
        with caplog.at_level(logging.INFO):
            async with running(
                repeat(app(True), one_pass, name="probe", interval=60.0, log=log, wakeup=wakeup)
            ):
                await asyncio.wait_for(done.wait(), timeout=5)
    finally:
        outages.reset()
    lines = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [
        (
            "nsentry.outage",
            "WARNING",
            "database unavailable (ConnectionRefusedError: [Errno 111] Connection refused)"
            " at probe pass",
        ),
        (log.name, "INFO", "probe pass: the database is reachable again"),
    ]
    assert not [r for r in caplog.records if r.exc_info]
