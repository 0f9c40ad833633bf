"""Integration key SQL: CRUD, the inbound lookup by selector, heartbeat state."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from services.oncall.integrations.tokens import Minted

COLUMNS = (
    "id, name, type, policy_id, severity, settings, last_ping_at, heartbeat_due_at, created_at"
)


async def insert(
    conn: asyncpg.Connection,
    *,
    name: str,
    type: str,
    policy_id: str,
    severity: str,
    settings: dict[str, Any],
    minted: Minted,
    now: datetime,
) -> asyncpg.Record | None:
    """The new key, or None when the selector is taken (mint again)."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO np_oncall.integrations
            (source_account_id, name, type, policy_id, severity, settings, selector, token_hash,
             created_at)
        VALUES (current_setting('app.source_account_id'), $1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (selector) DO NOTHING
        RETURNING {COLUMNS}
        """,  # noqa: S608 - constant column list
        name,
        type,
        policy_id,
        severity,
        settings,
        minted.selector,
        minted.token_hash,
        now,
    )
    return row


async def policy_exists(conn: asyncpg.Connection, policy_id: str) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM np_oncall.policies WHERE id = $1 FOR KEY SHARE", policy_id
    )
    return found is not None


async def get(conn: asyncpg.Connection, integration_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM np_oncall.integrations WHERE id = $1",  # noqa: S608
        integration_id,
    )


async def delete(conn: asyncpg.Connection, integration_id: uuid.UUID) -> bool:
    done = await conn.execute("DELETE FROM np_oncall.integrations WHERE id = $1", integration_id)
    return done != "DELETE 0"


# The inbound lookup: before the account is known, the transaction may read the one key
# whose selector it names (the integration_by_selector policy); then it is scoped to
# that key's account like any request, and the selector forgotten.
_LOOKUP_SCOPE = "SELECT set_config('app.integration_selector', $1, true)"
_LOOKUP = (
    f"SELECT source_account_id, token_hash, {COLUMNS} "  # noqa: S608 - constant column list
    "FROM np_oncall.integrations WHERE selector = $1"
)
_ACCOUNT_SCOPE = (
    "SELECT set_config('app.source_account_id', $1, true), "
    "set_config('app.integration_selector', '', true)"
)


async def lookup(conn: asyncpg.Connection, selector: str) -> asyncpg.Record | None:
    await conn.execute(_LOOKUP_SCOPE, selector)
    return await conn.fetchrow(_LOOKUP, selector)


async def scope_to(conn: asyncpg.Connection, account: str) -> None:
    await conn.execute(_ACCOUNT_SCOPE, account)


async def lock(conn: asyncpg.Connection, integration_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM np_oncall.integrations WHERE id = $1 FOR UPDATE",  # noqa: S608
        integration_id,
    )


async def set_heartbeat(
    conn: asyncpg.Connection,
    integration_id: uuid.UUID,
    *,
    last_ping_at: datetime | None,
    due_at: datetime | None,
) -> None:
    await conn.execute(
        "UPDATE np_oncall.integrations SET last_ping_at = $2, heartbeat_due_at = $3 WHERE id = $1",
        integration_id,
        last_ping_at,
        due_at,
    )


async def claim_due_heartbeat(conn: asyncpg.Connection, now: datetime) -> asyncpg.Record | None:
    """One heartbeat key past its deadline, of any account, locked (worker role)."""
    return await conn.fetchrow(
        f"SELECT source_account_id, {COLUMNS} FROM np_oncall.integrations "  # noqa: S608
        "WHERE heartbeat_due_at <= $1 ORDER BY heartbeat_due_at LIMIT 1 "
        "FOR UPDATE SKIP LOCKED",
        now,
    )


async def open_alert_id(conn: asyncpg.Connection, dedup_key: str) -> uuid.UUID | None:
    """The open (not resolved) alert with this dedup key, if any."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT id FROM np_oncall.alerts WHERE dedup_key = $1 AND status <> 'resolved'",
        dedup_key,
    )
