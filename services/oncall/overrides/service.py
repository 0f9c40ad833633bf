"""Override store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from services.common.pagination import cursor_time, decode_cursor, page_of
from services.oncall.overrides.models import Override, OverrideCreate
from services.oncall.people import service as people
from services.oncall.validation import field_error, not_found, parse_uuid, raise_field_errors

COLUMNS = (
    "id::text AS id, schedule_id, person_id, start_at AS start, end_at AS end, reason, created_at"
)


def _override(row: asyncpg.Record) -> Override:
    return Override.model_validate(dict(row))


async def create(conn: asyncpg.Connection, *, body: OverrideCreate) -> Override:
    errors = []
    schedule = await conn.fetchval(
        "SELECT 1 FROM np_oncall.schedules WHERE id = $1 FOR KEY SHARE", body.schedule_id
    )
    if schedule is None:
        errors.append(field_error(("body", "schedule_id"), f"no schedule {body.schedule_id!r}"))
    if await people.missing(conn, ids=[body.person_id]):
        errors.append(field_error(("body", "person_id"), f"no person {body.person_id!r}"))
    raise_field_errors(errors)
    row = await conn.fetchrow(
        f"""
        INSERT INTO np_oncall.overrides
            (source_account_id, schedule_id, person_id, start_at, end_at, reason)
        VALUES (current_setting('app.source_account_id'), $1, $2, $3, $4, $5)
        RETURNING {COLUMNS}
        """,  # noqa: S608 - constant column list
        body.schedule_id,
        body.person_id,
        body.start,
        body.end,
        body.reason,
    )
    return _override(row)


async def get(conn: asyncpg.Connection, *, override_id: str) -> Override:
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM np_oncall.overrides WHERE id = $1",  # noqa: S608 - constant column list
        parse_uuid(override_id, "override"),
    )
    if row is None:
        raise not_found("override", override_id)
    return _override(row)


async def delete(conn: asyncpg.Connection, *, override_id: str) -> None:
    done = await conn.execute(
        "DELETE FROM np_oncall.overrides WHERE id = $1", parse_uuid(override_id, "override")
    )
    if done == "DELETE 0":
        raise not_found("override", override_id)


async def get_all(
    conn: asyncpg.Connection,
    *,
    schedule_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
) -> Any:
    """Overrides overlapping [since, until), by start time."""
    position = decode_cursor(cursor, arity=2)
    rows = await conn.fetch(
        f"""
        SELECT {COLUMNS} FROM np_oncall.overrides
        WHERE ($1::text IS NULL OR schedule_id = $1)
          AND ($2::timestamptz IS NULL OR end_at > $2)
          AND ($3::timestamptz IS NULL OR start_at < $3)
          AND ($4::timestamptz IS NULL OR (start_at, id) > ($4, $5::uuid))
        ORDER BY start_at, id
        LIMIT $6
        """,  # noqa: S608 - constant column list
        schedule_id,
        since,
        until,
        None if position is None else cursor_time(position[0]),
        None if position is None else str(position[1]),
        limit + 1,
    )
    return page_of([_override(r) for r in rows], limit, lambda o: (o.start.isoformat(), o.id))
