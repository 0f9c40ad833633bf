"""People store: keyword-only functions over a tenant connection."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg

from services.common.destinations import DestinationPolicy
from services.common.errors import Conflict
from services.common.listing import Keyset, keyset_page
from services.oncall.people import contacts
from services.oncall.people.models import Person, PersonCreate, PersonUpdate
from services.oncall.validation import field_error, new_id, not_found, raise_field_errors

COLUMNS = "id, name, email, timezone, contact_methods, notification_rules, created_at, updated_at"
LISTING = Keyset(table="np_oncall.people", columns=COLUMNS)


def _person(row: asyncpg.Record, secrets: dict[str, str] | None = None) -> Person:
    """A stored person; `secrets` (new ones, by method id) are shown in this answer only."""
    data = dict(row)
    if secrets:
        data["contact_methods"] = [
            {**m, "signing_secret": secrets[m["id"]]} if m.get("id") in secrets else m
            for m in data["contact_methods"]
        ]
    return Person.model_validate(data)


def check_destinations(methods: Iterable[Any], policy: DestinationPolicy) -> None:
    """422 for webhook/Slack URLs that could never be called; a numeric host in any form
    (``http://2852039166/``, ``0x7f.1``) is judged as the address it is and stored in
    canonical form."""
    errors = []
    for i, method in enumerate(methods):
        url = getattr(method, "url", None)
        if url is None:
            continue
        problem = policy.literal_problem(url)
        if problem:
            errors.append(field_error(("body", "contact_methods", i, "url"), problem))
        else:
            method.url = policy.canonical_url(url)
    raise_field_errors(errors)


def _dump_methods(methods: Iterable[Any]) -> list[dict[str, Any]]:
    return [
        m.model_dump(mode="json", exclude_none=True, exclude={"signing_secret"}) for m in methods
    ]


def _dump_rules(rules: Iterable[Any]) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for r in rules]


async def get(conn: asyncpg.Connection, *, person_id: str) -> Person:
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM np_oncall.people WHERE id = $1",  # noqa: S608
        person_id,
    )
    if row is None:
        raise not_found("person", person_id)
    return _person(row)


async def get_many(conn: asyncpg.Connection, *, ids: Iterable[str]) -> dict[str, Person]:
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM np_oncall.people WHERE id = ANY($1::text[])",  # noqa: S608
        list(set(ids)),
    )
    return {row["id"]: _person(row) for row in rows}


async def missing(conn: asyncpg.Connection, *, ids: Iterable[str]) -> set[str]:
    wanted = set(ids)
    if not wanted:
        return set()
    found = await conn.fetch(
        "SELECT id FROM np_oncall.people WHERE id = ANY($1::text[])", list(wanted)
    )
    return wanted - {row["id"] for row in found}


async def get_all(conn: asyncpg.Connection, *, limit: int, cursor: str | None) -> Any:
    return await keyset_page(conn, LISTING, build=_person, limit=limit, cursor=cursor)


async def create(
    conn: asyncpg.Connection, *, body: PersonCreate, policy: DestinationPolicy
) -> Person:
    check_destinations(body.contact_methods, policy)
    contacts.assign_ids(body.contact_methods)
    contacts.check_rules(body.notification_rules, body.contact_methods, "notification_rules")
    row = await conn.fetchrow(
        f"""
        INSERT INTO np_oncall.people
            (source_account_id, id, name, email, timezone, contact_methods, notification_rules)
        VALUES (current_setting('app.source_account_id'), $1, $2, $3, $4, $5, $6)
        ON CONFLICT (source_account_id, id) DO NOTHING
        RETURNING {COLUMNS}
        """,  # noqa: S608 - constant column list
        body.id or new_id(),
        body.name,
        body.email,
        body.timezone,
        _dump_methods(body.contact_methods),
        _dump_rules(body.notification_rules),
    )
    if row is None:
        raise Conflict(f"a person with id {body.id!r} already exists", details={"id": body.id})
    fresh = await contacts.sync_secrets(conn, person_id=row["id"], methods=body.contact_methods)
    return _person(row, fresh)


async def update(
    conn: asyncpg.Connection, *, person_id: str, body: PersonUpdate, policy: DestinationPolicy
) -> Person:
    current = await get(conn, person_id=person_id)
    given = body.model_fields_set
    if body.contact_methods is not None:
        check_destinations(body.contact_methods, policy)
    errors = [
        field_error(("body", name), "may not be null")
        for name in ("name", "timezone", "contact_methods", "notification_rules")
        if name in given and getattr(body, name) is None
    ]
    raise_field_errors(errors)
    methods: list[Any] = list(current.contact_methods)
    if body.contact_methods is not None:
        contacts.assign_ids(body.contact_methods, current.contact_methods)
        methods = list(body.contact_methods)
    rules = (
        body.notification_rules
        if body.notification_rules is not None
        else current.notification_rules
    )
    contacts.check_rules(
        rules,
        methods,
        "notification_rules" if body.notification_rules is not None else "contact_methods",
    )
    row = await conn.fetchrow(
        f"""
        UPDATE np_oncall.people
        SET name = $2, email = $3, timezone = $4, contact_methods = $5,
            notification_rules = $6, updated_at = now()
        WHERE id = $1
        RETURNING {COLUMNS}
        """,  # noqa: S608 - constant column list
        person_id,
        body.name if "name" in given else current.name,
        body.email if "email" in given else current.email,
        body.timezone if "timezone" in given else current.timezone,
        _dump_methods(methods),
        _dump_rules(rules),
    )
    assert row is not None
    fresh = {}
    if body.contact_methods is not None:
        fresh = await contacts.sync_secrets(conn, person_id=person_id, methods=methods)
    return _person(row, fresh)


async def delete(conn: asyncpg.Connection, *, person_id: str, now: datetime) -> None:
    """Delete a person no schedule, current or future override or policy still names."""
    await get(conn, person_id=person_id)
    refs = await references(conn, person_id=person_id, now=now)
    if refs:
        raise Conflict(
            f"person {person_id!r} is still referenced; remove those references first",
            details=refs,
        )
    await conn.execute("DELETE FROM np_oncall.people WHERE id = $1", person_id)


async def references(
    conn: asyncpg.Connection, *, person_id: str, now: datetime
) -> dict[str, list[str]]:
    var = {"p": person_id}
    schedules = await conn.fetch(
        "SELECT id FROM np_oncall.schedules "
        "WHERE jsonb_path_exists(layers, '$[*].rotation.participants[*] ? (@ == $p)', $1) "
        "ORDER BY id",
        var,
    )
    policies = await conn.fetch(
        "SELECT id FROM np_oncall.policies WHERE jsonb_path_exists(steps, "
        "'$[*].targets[*] ? (@.type == \"person\" && @.id == $p)', $1) ORDER BY id",
        var,
    )
    overrides = await conn.fetch(
        "SELECT id FROM np_oncall.overrides WHERE person_id = $1 AND end_at > $2 ORDER BY id",
        person_id,
        now,
    )
    refs = {
        "schedules": [r["id"] for r in schedules],
        "policies": [r["id"] for r in policies],
        "overrides": [str(r["id"]) for r in overrides],
    }
    return {k: v for k, v in refs.items() if v}
