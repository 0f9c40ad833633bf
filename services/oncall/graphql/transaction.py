"""One database transaction per GraphQL request, shared by every resolver.

GraphQL resolves nested fields one resolver at a time: a transaction each would
take `schedules(limit: 1000) { shifts }` to a thousand pool acquisitions and
transactions, and sibling fields would compete for the pool with every other
request. Instead the first resolver that needs the database opens the request's
tenant transaction (the caller's account, REPEATABLE READ so that every field
answers from one snapshot) and sets its statement timeout; the others wait
their turn on a lock (one connection runs one statement at a time) and reuse
it. `RequestTransaction` (a Strawberry extension) ends it when execution ends.

The schema only reads, so the end is a COMMIT that cannot lose anything; a
statement that failed aborts the transaction, and the fields that come after it
answer the same error instead of running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import asyncpg
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from services.common.db import tenant_transaction
from services.common.errors import ApiError

log = logging.getLogger("nsentry.oncall.graphql")
TIMEOUT_CODE = "timeout"


class RequestConnection:
    """The request's one transaction, opened on first use (a request whose fields never
    read the database takes no connection)."""

    def __init__(self, pool: asyncpg.Pool, account_id: str, *, statement_timeout_ms: int) -> None:
        self.pool = pool
        self.account_id = account_id
        self.statement_timeout_ms = statement_timeout_ms
        self.opened = 0  # transactions opened for the request: 0 or 1
        self._lock = asyncio.Lock()
        self._scope: AbstractAsyncContextManager[asyncpg.Connection] | None = None
        self._conn: asyncpg.Connection | None = None
        self._failed: GraphQLError | None = None  # what later fields answer instead

    @asynccontextmanager
    async def use(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._lock:
            if self._failed is not None:
                raise GraphQLError(self._failed.message, extensions=self._failed.extensions)
            conn = self._conn or await self._open()
            try:
                yield conn
            except asyncpg.QueryCanceledError as exc:
                self._failed = timeout_error(self.statement_timeout_ms)
                raise timeout_error(self.statement_timeout_ms) from exc
            except BaseException as exc:
                if _aborts(exc):
                    self._failed = GraphQLError(
                        "not run: an earlier statement of this request failed",
                        extensions={"code": "internal"},
                    )
                raise

    async def _open(self) -> asyncpg.Connection:
        scope = tenant_transaction(self.pool, self.account_id, isolation="repeatable_read")
        conn = await scope.__aenter__()
        self._scope = scope
        self.opened += 1
        try:
            await conn.execute(
                "SELECT set_config('statement_timeout', $1, true)", f"{self.statement_timeout_ms}ms"
            )
        except BaseException as exc:
            await self._end(exc)
            raise
        self._conn = conn
        return conn

    async def close(self) -> None:
        """End the transaction (COMMIT, or ROLLBACK after a failed statement)."""
        async with self._lock:
            await self._end(None if self._failed is None else RuntimeError(self._failed.message))

    async def _end(self, exc: BaseException | None) -> None:
        scope, self._scope, self._conn = self._scope, None, None
        if scope is None:
            return
        try:
            if exc is None:
                await scope.__aexit__(None, None, None)
            else:
                await scope.__aexit__(type(exc), exc, exc.__traceback__)
        except Exception as error:  # the answer was read already: ending cannot change it
            log.warning("graphql: ending the request's transaction failed: %s", error)


def _aborts(exc: BaseException) -> bool:
    """Whether `exc` left the transaction unusable: anything but an API or GraphQL error
    raised in Python after statements that succeeded (a not-found, a refused argument)."""
    if not isinstance(exc, ApiError | GraphQLError):
        return True
    cause: BaseException | None = exc
    for _ in range(5):
        if cause is None:
            return False
        if isinstance(cause, asyncpg.PostgresError | asyncpg.InterfaceError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def timeout_error(statement_timeout_ms: int) -> GraphQLError:
    return GraphQLError(
        f"a statement ran longer than the GraphQL statement timeout "
        f"({statement_timeout_ms} ms): ask for less",
        extensions={"code": TIMEOUT_CODE, "timeout_ms": statement_timeout_ms},
    )


class RequestTransaction(SchemaExtension):
    """Ends the request's transaction (`context["db"]`) once execution is over."""

    async def on_execute(self) -> AsyncIterator[None]:  # type: ignore[override]
        try:
            yield
        finally:
            db = _db_of(self.execution_context.context)
            if db is not None:
                await db.close()


def _db_of(context: Any) -> RequestConnection | None:
    found = context.get("db") if isinstance(context, dict) else None
    return found if isinstance(found, RequestConnection) else None
