"""Escalation policy store."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.common.errors import Conflict
from services.common.listing import Keyset, keyset_page
from services.oncall.people import service as people
from services.oncall.policies.models import Policy, PolicyCreate, PolicyUpdate, Step
from services.oncall.validation import field_error, new_id, not_found, raise_field_errors

COLUMNS = "id, name, steps, repeat, created_at, updated_at"
LISTING = Keyset(table="np_oncall.policies", columns=COLUMNS)


def _policy(row: asyncpg.Record) -> Policy:
    return Policy.model_validate(dict(row))


async def check_targets(conn: asyncpg.Connection, *, steps: list[Step]) -> None:
    """422 naming every target that does not exist in this account."""
    person_ids = {t.id for s in steps for t in s.targets if t.type == "person"}
    schedule_ids = {t.id for s in steps for t in s.targets if t.type == "schedule"}
    absent_people = await people.missing(conn, ids=person_ids)
    found = await conn.fetch(
        "SELECT id FROM np_oncall.schedules WHERE id = ANY($1::text[])", list(schedule_ids)
    )
    absent_schedules = schedule_ids - {r["id"] for r in found}
    errors = []
    for i, step in enumerate(steps):
        for j, target in enumerate(step.targets):
            absent = absent_people if target.type == "person" else absent_schedules
            if target.id in absent:
                errors.append(
                    field_error(
                        ("body", "steps", i, "targets", j, "id"), f"no {target.type} {target.id!r}"
                    )
                )
    raise_field_errors(errors)


def _dump(steps: list[Step]) -> list[dict[str, Any]]:
    return [s.model_dump(mode="json") for s in steps]


async def get(conn: asyncpg.Connection, *, policy_id: str) -> Policy:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM np_oncall.policies WHERE id = $1", policy_id)  # noqa: S608 - constant column list
    if row is None:
        raise not_found("policy", policy_id)
    return _policy(row)


async def find(conn: asyncpg.Connection, *, policy_id: str) -> Policy | None:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM np_oncall.policies WHERE id = $1", policy_id)  # noqa: S608 - constant column list
    return None if row is None else _policy(row)


async def get_all(conn: asyncpg.Connection, *, limit: int, cursor: str | None) -> Any:
    return await keyset_page(conn, LISTING, build=_policy, limit=limit, cursor=cursor)


async def create(conn: asyncpg.Connection, *, body: PolicyCreate) -> Policy:
    await check_targets(conn, steps=body.steps)
    row = await conn.fetchrow(
        f"""
        INSERT INTO np_oncall.policies (source_account_id, id, name, steps, repeat)
        VALUES (current_setting('app.source_account_id'), $1, $2, $3, $4)
        ON CONFLICT (source_account_id, id) DO NOTHING
        RETURNING {COLUMNS}
        """,  # noqa: S608 - constant column list
        body.id or new_id(),
        body.name,
        _dump(body.steps),
        body.repeat,
    )
    if row is None:
        raise Conflict(f"a policy with id {body.id!r} already exists", details={"id": body.id})
    return _policy(row)


async def update(conn: asyncpg.Connection, *, policy_id: str, body: PolicyUpdate) -> Policy:
    current = await get(conn, policy_id=policy_id)
    given = body.model_fields_set
    raise_field_errors(
        [
            field_error(("body", name), "may not be null")
            for name in ("name", "steps", "repeat")
            if name in given and getattr(body, name) is None
        ]
    )
    if body.steps is not None:
        await check_targets(conn, steps=body.steps)
    row = await conn.fetchrow(
        f"""
        UPDATE np_oncall.policies SET name = $2, steps = $3, repeat = $4, updated_at = now()
        WHERE id = $1 RETURNING {COLUMNS}
        """,  # noqa: S608 - constant column list
        policy_id,
        body.name if body.name is not None else current.name,
        _dump(body.steps if body.steps is not None else current.steps),
        body.repeat if body.repeat is not None else current.repeat,
    )
    assert row is not None
    return _policy(row)


async def delete(conn: asyncpg.Connection, *, policy_id: str) -> None:
    """Delete a policy; open alerts keep escalating with the policy they started with."""
    done = await conn.execute("DELETE FROM np_oncall.policies WHERE id = $1", policy_id)
    if done == "DELETE 0":
        raise not_found("policy", policy_id)
