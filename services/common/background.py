"""Background loops that live as long as a service app (the paging sender, the pruner).

``repeat`` runs one pass after another while the app is ready, each pass
saying when the next is due, woken early by an event if it has one; a pass
that fails is logged and retried at the next interval, so a database hiccup
never ends the loop. A pass that fails because the database is unreachable is
logged without a trace, once per kind of failure per interval
(``common.outage``), and the first pass that succeeds after it says so.
``running`` starts such a loop for the app's lifetime and ``worker_pool`` gives
it a pool of the worker role (across accounts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
from fastapi import FastAPI

from services.common import db
from services.common.outage import outage_kind, outages
from services.common.settings import Settings

# one pass; returns the seconds until the next one (0: at once)
Pass = Callable[[], Awaitable[float]]


def until_due(due: datetime | None, now: datetime, interval: float) -> float:
    """A pass's answer when the next piece of work is ``due`` (None: none is): the
    seconds until then, at least 0.05 and at most ``interval``."""
    if due is None:
        return interval
    return min(interval, max(0.05, (due - now).total_seconds()))


async def repeat(
    app: FastAPI,
    one_pass: Pass,
    *,
    name: str,
    interval: float,
    log: logging.Logger,
    first_delay: float = 0.0,
    wakeup: asyncio.Event | None = None,
) -> None:
    """Run ``one_pass`` forever while ``app`` is ready (until cancelled); ``name`` says
    which loop in the log line of a failed pass."""
    if interval <= 0:
        raise ValueError("interval must be positive")
    if first_delay > 0:
        await asyncio.sleep(first_delay)
    down = False  # the last pass failed for a database outage
    while True:
        if wakeup is not None:
            wakeup.clear()
        delay = interval
        if getattr(app.state, "ready", False):
            try:
                delay = await one_pass()
            except Exception as exc:  # keep the loop alive through database hiccups
                kind = outage_kind(exc)
                if kind is None:
                    log.exception("%s pass failed", name)
                else:  # the database is away: one line per kind per interval, no trace
                    outages.report(kind, f"{name} pass", exc)
                    down = True
                delay = interval
            else:
                if down:
                    log.info("%s pass: the database is reachable again", name)
                    down = False
        if delay <= 0:
            await asyncio.sleep(0)  # another pass at once, but let the loop breathe
            continue
        if wakeup is None:
            await asyncio.sleep(delay)
            continue
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # arrives as the wake-up does, and the loop would outlive its app
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await wakeup.wait()


@asynccontextmanager
async def running(loop: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run ``loop`` as a task for the duration of the block; cancel it at the end."""
    task = asyncio.create_task(loop)
    try:
        yield
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


@asynccontextmanager
async def worker_pool(settings: Settings, *, max_size: int) -> AsyncIterator[asyncpg.Pool]:
    """A small pool logged in as the worker role (it reads across accounts to claim work)."""
    assert settings.database_url
    pool = await db.create_pool(settings.worker_dsn, role=None, min_size=0, max_size=max_size)
    try:
        yield pool
    finally:
        await asyncio.wait_for(pool.close(), timeout=10)
