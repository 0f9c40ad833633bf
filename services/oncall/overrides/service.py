"""Override store."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.common.listing import Filter, Keyset, keyset_page
from services.common.pagination import Page
from services.oncall.overrides.models import Override, OverrideCreate
from services.oncall.people import service as people
from services.oncall.validation import field_error, not_found, parse_uuid, raise_field_errors

COLUMNS = (
    "id::text AS id, schedule_id, person_id, start_at AS start, end_at AS end, reason, created_at"
)
LISTING = Keyset(
    table="np_oncall.overrides",
    columns=COLUMNS,
    order=("start_at", "id"),
    id_type="uuid",
    keys=("start", "id"),
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
) -> Page[Override]:
    """Overrides overlapping [since, until), by start time."""
    return await keyset_page(
        conn,
        LISTING,
        build=_override,
        limit=limit,
        cursor=cursor,
        filters=[
            Filter("schedule_id", "=", schedule_id),
            Filter("end_at", ">", since),
            Filter("start_at", "<", until),
        ],
    )
