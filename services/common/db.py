"""asyncpg pools and the tenant-scoped transaction every request runs in.

The services never query as the table owner, nor log in as it: the request pools
log in as `nsentry_app` (Settings.app_dsn), a role that row-level security binds,
with no owner rights, no BYPASSRLS and no role it could SET ROLE to, so an
injected RESET ROLE or SET ROLE leaves it where it is. `nsentry_worker` is the
background workers' login (Settings.worker_dsn): it may read across accounts to
claim work, and then does the work inside a tenant transaction, as `nsentry_app`,
like any request. The owner (DATABASE_URL) only migrates.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from services.common.errors import DatabaseUnavailable
from services.common.outage import outage_kind, unavailable

APP_ROLE = "nsentry_app"
WORKER_ROLE = "nsentry_worker"


# reaching the server (asyncpg's default is 60 s): an unreachable host fails a request
# with 503 in seconds instead of holding it for a minute
CONNECT_TIMEOUT_SECONDS = 5.0


async def _init_connection(conn: asyncpg.Connection, role: str | None) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    if role:
        # SET ROLE survives asyncpg's RESET ALL on release (role is GUC_NO_RESET_ALL)
        await conn.execute(f'SET ROLE "{role}"')


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's RESET ALL round trip.

    Pooled connections carry no session state to undo: the tenant scope and any
    other setting are transaction-local (set_config(..., true)), asyncpg itself
    rolls back a transaction left open, and LISTEN runs on dedicated connections.
    """


async def create_pool(
    dsn: str, *, role: str | None = APP_ROLE, min_size: int = 2, max_size: int = 10
) -> asyncpg.Pool:
    """A pool whose connections act as `role` (None: the login role itself)."""

    async def init(conn: asyncpg.Connection) -> None:
        await _init_connection(conn, role)

    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=init,
        reset=_keep_session,
        command_timeout=60,
        timeout=CONNECT_TIMEOUT_SECONDS,
    )
    assert pool is not None
    return pool


class LoginNotBound(RuntimeError):
    """The services' login can escape row-level security (a misconfigured URL)."""


_LOGIN_CHECK_SQL = """
WITH me AS (SELECT oid, rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user),
reach AS (  -- every role the login is or may become (SET ROLE needs membership)
    SELECT r.* FROM pg_roles r, me WHERE pg_has_role(me.oid, r.oid, 'MEMBER')
)
SELECT (SELECT rolname FROM me) AS login,
       coalesce(string_agg(DISTINCT reach.rolname, ', ') FILTER (
           WHERE reach.rolsuper OR reach.rolbypassrls OR EXISTS (
               SELECT 1 FROM pg_class c WHERE c.relowner = reach.oid AND c.relrowsecurity)
       ), '') AS escapes
FROM reach
"""


async def check_app_login(dsn: str) -> str:
    """Log in with the services' URL and refuse a login that row-level security does not
    bind: a superuser, a BYPASSRLS role, the owner of a tenant table, or a member of
    one (it could SET ROLE to it). Returns the login role."""
    conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        row = await conn.fetchrow(_LOGIN_CHECK_SQL)
    finally:
        await conn.close()
    assert row is not None
    if row["escapes"]:
        raise LoginNotBound(
            f"the services' login {row['login']} is not bound by row-level security "
            f"(superuser, BYPASSRLS or table owner: {row['escapes']}); "
            f"set APP_DATABASE_URL to the nsentry_app login (docs/deployment.md)"
        )
    return str(row["login"])


async def connect(dsn: str, *, role: str | None = None) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_SECONDS)
    await _init_connection(conn, role)
    return conn


# The account and the RLS-bound role of a tenant transaction, so that it is scoped even
# on a worker pool (whose role bypasses RLS to claim work across accounts).
_SCOPE_SQL = "SELECT set_config('app.source_account_id', $1, true), set_config('role', $2, true)"
# BEGIN and the scope in one message (simple query protocol, one round trip). Only
# account ids of this alphabet are written into it as a literal; they cannot end the
# literal (no quote, no backslash), and the door admits no others (auth.ACCOUNT_PATTERN).
_LITERAL_ACCOUNT = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
_BEGIN_SCOPED = (
    "BEGIN ISOLATION LEVEL {isolation}; "
    "SELECT set_config('app.source_account_id', '{account}', true), "
    f"set_config('role', '{APP_ROLE}', true)"
)
_ISOLATION = {
    "read_committed": "READ COMMITTED",
    "repeatable_read": "REPEATABLE READ",
    "serializable": "SERIALIZABLE",
}


@asynccontextmanager
async def tenant_transaction(
    pool: asyncpg.Pool, account_id: str, *, isolation: str = "read_committed"
) -> AsyncIterator[asyncpg.Connection]:
    """A short transaction in which RLS limits every statement to one account.

    BEGIN and the scope go out in one round trip; an account id outside the
    plain alphabet (never admitted by the door, but a row could carry one) is
    sent as a parameter instead, in a second round trip.
    """
    level = _ISOLATION.get(isolation)
    if level is None:
        raise ValueError(f"isolation must be one of {sorted(_ISOLATION)}")
    inside = False
    try:
        async with _scoped(pool, account_id, level) as conn:
            inside = True
            yield conn
    except Exception as exc:
        # the database is unreachable: the 503 every caller answers (common.outage); a
        # timeout of the caller's own (not reaching the server) stays what it is
        down = unavailable(exc)
        if down is None or down is exc or (inside and isinstance(exc, TimeoutError)):
            raise
        raise down from exc


@asynccontextmanager
async def _scoped(
    pool: asyncpg.Pool, account_id: str, level: str
) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as conn:
        try:
            if _LITERAL_ACCOUNT.fullmatch(account_id):
                await conn.execute(_BEGIN_SCOPED.format(isolation=level, account=account_id))
            else:
                await conn.execute(f"BEGIN ISOLATION LEVEL {level}")
                await conn.execute(_SCOPE_SQL, account_id, APP_ROLE)
            yield conn
        except BaseException as exc:
            # Unconditionally: a cancel during the first message leaves the connection's
            # status "idle" though BEGIN ran (a ROLLBACK outside a transaction is harmless).
            try:
                if not _is_closed(conn):
                    await conn.execute("ROLLBACK")
            except Exception:  # a broken connection: not returned to the pool as is
                if not _is_closed(conn):
                    conn.terminate()
            _raise_if_lost(conn, exc)
            raise
        try:
            await conn.execute("COMMIT")
        except Exception as exc:
            # lost on the way: the server may have committed before it went away
            kind = outage_kind(exc) or (
                f"connection lost ({exc.__class__.__name__})" if _is_closed(conn) else None
            )
            if kind is None:
                raise
            # asyncpg refuses before sending on a connection it knows is gone
            sent = not isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError)
            raise DatabaseUnavailable(kind, in_doubt=sent) from exc


def _is_closed(conn: asyncpg.Connection) -> bool:
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:  # the pool took back a connection that was lost
        return True


def _raise_if_lost(conn: asyncpg.Connection, exc: BaseException) -> None:
    """A failure that left the connection closed is a lost connection, whatever asyncpg
    called it (a connection lost between two statements can surface as an
    ``InternalClientError``, "another operation is in progress")."""
    if isinstance(exc, Exception) and _is_closed(conn) and outage_kind(exc) is None:
        raise DatabaseUnavailable(f"connection lost ({exc.__class__.__name__})") from exc


async def set_tenant(conn: asyncpg.Connection, account_id: str) -> None:
    """Scope the current transaction of `conn` to one account, as the RLS-bound role."""
    await conn.execute(_SCOPE_SQL, account_id, APP_ROLE)
