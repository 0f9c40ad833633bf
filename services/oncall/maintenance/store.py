"""Maintenance window SQL: the windows in force over an alert, CRUD, the worker's reads."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

import asyncpg

from services.oncall.maintenance.windows import Occurrence, Scope, Window, active

log = logging.getLogger("nsentry.oncall.maintenance")
_WARNED: set[Any] = set()

COLUMNS = (
    "id, name, policy_id, integration_id::text AS integration_id, detector_id, start_at, "
    "end_at, rrule, timezone, until_at, applied_start, created_at"
)
# windows that may be in force at $1: started, and not past their last occurrence
_LIVE = "start_at <= $1 AND (until_at IS NULL OR until_at > $1)"


def window_of(row: Any) -> Window:
    return Window(row["start_at"], row["end_at"], row["rrule"], row["timezone"])


def in_force(row: Any, now: datetime) -> Occurrence | None:
    """The occurrence of a stored window in force at `now`. A row the API would refuse
    (written with SQL: a rule or zone that does not parse) is in force never, and is
    logged once per process; it breaks no alert, list or worker pass."""
    try:
        return active(window_of(row), now)
    except (ValueError, KeyError, TypeError, ZoneInfoNotFoundError) as exc:
        if row["id"] not in _WARNED:
            _WARNED.add(row["id"])
            log.warning("maintenance window %s cannot be read, ignored: %s", row["id"], exc)
        return None


def scope_of(row: Any) -> Scope:
    return Scope(row["policy_id"], row["integration_id"], row["detector_id"])


async def window_in_force(
    conn: asyncpg.Connection,
    *,
    policy_id: str,
    integration_id: str | None,
    detector_id: str | None,
    now: datetime,
) -> uuid.UUID | None:
    """A window of the account in force at `now` over this policy, integration or
    detector (the oldest, if several), or None."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM np_oncall.maintenance_windows "  # noqa: S608 - constants
        f"WHERE {_LIVE} AND (policy_id = $2 OR integration_id = $3::uuid OR detector_id = $4) "
        "ORDER BY created_at, id",
        now,
        policy_id,
        integration_id,
        detector_id,
    )
    for row in rows:
        if in_force(row, now) is not None:
            return row["id"]  # type: ignore[no-any-return]
    return None


async def live(conn: asyncpg.Connection | asyncpg.Pool, now: datetime) -> list[asyncpg.Record]:
    """The windows that may be in force at `now` (of every account the connection sees)."""
    return await conn.fetch(
        f"SELECT source_account_id, {COLUMNS} FROM np_oncall.maintenance_windows "  # noqa: S608
        f"WHERE {_LIVE} ORDER BY source_account_id, created_at, id",
        now,
    )


async def insert(
    conn: asyncpg.Connection, *, values: dict[str, Any], until: datetime | None, now: datetime
) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"""
        INSERT INTO np_oncall.maintenance_windows
            (source_account_id, name, policy_id, integration_id, detector_id, start_at, end_at,
             rrule, timezone, until_at, created_at)
        VALUES (current_setting('app.source_account_id'), $1, $2, $3::uuid, $4, $5, $6, $7, $8,
                $9, $10)
        RETURNING {COLUMNS}
        """,  # noqa: S608 - constant column list
        values["name"],
        values["policy_id"],
        values["integration_id"],
        values["detector_id"],
        values["start"],
        values["end"],
        values["rrule"],
        values["timezone"],
        until,
        now,
    )
    assert row is not None
    return row


async def mark_applied(conn: asyncpg.Connection, window_id: Any, start: datetime) -> None:
    await conn.execute(
        "UPDATE np_oncall.maintenance_windows SET applied_start = $2 WHERE id = $1",
        window_id,
        start,
    )


async def get(conn: asyncpg.Connection, window_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM np_oncall.maintenance_windows WHERE id = $1",  # noqa: S608
        window_id,
    )


async def delete(conn: asyncpg.Connection, window_id: uuid.UUID) -> bool:
    done = await conn.execute("DELETE FROM np_oncall.maintenance_windows WHERE id = $1", window_id)
    return done != "DELETE 0"


async def exists(conn: asyncpg.Connection, *, table: str, ident: Any) -> bool:
    """Whether the scope's target exists in the account (`table`: a constant)."""
    found = await conn.fetchval(f"SELECT 1 FROM {table} WHERE id = $1", ident)  # noqa: S608
    return found is not None
