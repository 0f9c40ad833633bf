"""Dependencies shared by the on-call routes: the tenant transaction, the account, the clock.

`Tx` is a connection inside a transaction scoped (RLS) to the caller's
account; it commits when the route returns and rolls back if it raises, before
the response is sent. `Account` is the caller's account id. `Now` is the
service clock (injectable for tests). Each domain's `deps.py` adds its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from services.common.auth import Caller
from services.common.db import tenant_transaction

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def clock_of(request: Request) -> Clock:
    return getattr(request.app.state, "clock", system_clock)


def _gate(request: Request) -> asyncio.Semaphore:
    """First come, first served for the pool's connections.

    asyncpg's pool hands a released connection to whichever request asks
    first, and a waiter that was woken but lost it goes to the back of the
    queue: under a burst some requests waited many times longer than the rest.
    asyncio.Semaphore queues in order, so a request waits here for its turn and
    then finds a connection free.
    """
    state = request.app.state
    gate: asyncio.Semaphore | None = getattr(state, "tenant_gate", None)
    if gate is None:
        gate = state.tenant_gate = asyncio.Semaphore(state.pool.get_max_size())
    return gate


async def _tenant_connection(request: Request, caller: Caller) -> AsyncIterator[asyncpg.Connection]:
    async with (
        _gate(request),
        tenant_transaction(request.app.state.pool, caller.account_id) as conn,
    ):
        yield conn


async def _account(caller: Caller) -> str:
    return caller.account_id


async def _now(request: Request) -> datetime:
    # async: FastAPI would run a plain function in its thread pool, a hop per request
    return clock_of(request)()


Tx = Annotated[asyncpg.Connection, Depends(_tenant_connection, scope="function")]
Account = Annotated[str, Depends(_account)]
Now = Annotated[datetime, Depends(_now)]
