"""Dependencies shared by the on-call routes: the tenant transaction and the clock.

`Tx` is a connection inside a transaction scoped (RLS) to the caller's
account; it commits when the route returns and rolls back if it raises, before
the response is sent. `Now` is the service clock (injectable for tests).
"""

from __future__ import annotations

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


async def _tenant_connection(request: Request, caller: Caller) -> AsyncIterator[asyncpg.Connection]:
    async with tenant_transaction(request.app.state.pool, caller.account_id) as conn:
        yield conn


def _now(request: Request) -> datetime:
    return clock_of(request)()


Tx = Annotated[asyncpg.Connection, Depends(_tenant_connection, scope="function")]
Now = Annotated[datetime, Depends(_now)]
