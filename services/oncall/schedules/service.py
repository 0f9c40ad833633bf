"""Schedule store: rows and revisions in, pure `Schedule` values out.

Every question about who is on call goes to the one resolver
(`services.oncall.resolver`): this module only loads the revisions and the
overrides around the asked instants and turns the answers into API models.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.common import instants
from services.common.errors import ApiError, Conflict, ValidationFailed
from services.common.listing import Keyset, keyset_page
from services.oncall import resolver
from services.oncall.people import service as people
from services.oncall.schedules.models import (
    NextOncall,
    Oncall,
    PersonRef,
    Schedule,
    ScheduleCreate,
    ScheduleUpdate,
    Shift,
    Shifts,
)
from services.oncall.validation import field_error, new_id, not_found, raise_field_errors

COLUMNS = "id, name, timezone, layers, revision, created_at, updated_at"
LISTING = Keyset(table="np_oncall.schedules", columns=COLUMNS)
# the resolver looks this far around an instant for shift bounds and the next person
HORIZON = resolver.SEARCH_HORIZON + timedelta(days=1)
log = logging.getLogger("nsentry.oncall.schedules")

# Stored overrides are read clamped to the instants the API takes (1970 to 2200):
# a row stored before that validation, or written around the API, ending in 2600
# answers every question the API can ask exactly as stored, and the resolver
# (which refuses instants past 2500) never sees the far end. A row entirely
# outside the range can answer none of them and is left out.
_OVERRIDES = """
SELECT id, schedule_id, person_id, reason, seq,
       greatest(least(start_at, $2), $3) AS start_at,
       greatest(least(end_at, $2), $3) AS end_at,
       greatest(least(created_at, $2), $3) AS created_at,
       NOT (start_at >= $3 AND end_at <= $2 AND created_at >= $3 AND created_at <= $2)
           AS clamped
FROM np_oncall.overrides
WHERE schedule_id = $1 AND end_at > $3 AND start_at < $2 AND end_at > $4 AND start_at < $5
"""
_REPORTED: set[tuple[str, str]] = set()


class InvalidStoredData(ApiError):
    """409 ``invalid_stored_data``: a stored row of this schedule the resolver refuses.

    Only rows written around the API (SQL, Hasura) or before a validation can be
    like this; the answer names each row and field so an operator can fix it,
    and only requests about this schedule fail.
    """

    status, code = 409, "invalid_stored_data"


def _report_once(schedule_id: str, row: str, message: str, *args: Any) -> None:
    """Log a stored-data problem once per process and row, not once per request."""
    key = (schedule_id, row)
    if key in _REPORTED:
        return
    if len(_REPORTED) >= 10_000:
        _REPORTED.clear()
    _REPORTED.add(key)
    log.warning(message, *args)


def _schedule(row: asyncpg.Record, oncall: Oncall | None = None) -> Schedule:
    return Schedule.model_validate({**dict(row), "oncall": oncall})


async def _row(conn: asyncpg.Connection, schedule_id: str, *, lock: bool = False) -> asyncpg.Record:
    suffix = " FOR UPDATE" if lock else ""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM np_oncall.schedules WHERE id = $1{suffix}",  # noqa: S608
        schedule_id,
    )
    if row is None:
        raise not_found("schedule", schedule_id)
    return row


def resolver_errors(exc: resolver.ScheduleError, where: str = "query") -> ValidationFailed:
    details = [field_error((where, *e.field.split(".")), e.message) for e in exc.errors]
    return ValidationFailed(str(exc), details=details)


async def load(
    conn: asyncpg.Connection,
    *,
    schedule_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
    row: asyncpg.Record | None = None,
) -> resolver.Schedule:
    """The pure schedule with every revision and the overrides near [since, until]."""
    row = row or await _row(conn, schedule_id)
    revisions = await conn.fetch(
        "SELECT revision, effective_from, timezone, layers FROM np_oncall.schedule_revisions "
        "WHERE schedule_id = $1 ORDER BY revision",
        schedule_id,
    )
    lo = instants.EARLIEST if since is None else since - HORIZON
    hi = instants.LATEST if until is None else until + HORIZON
    overrides = await conn.fetch(
        _OVERRIDES, schedule_id, instants.LATEST, instants.EARLIEST, lo, hi
    )
    for o in overrides:
        if o["clamped"]:
            _report_once(
                schedule_id,
                str(o["id"]),
                "override %s of schedule %r has an instant outside %d..%d (stored around "
                "the API's validation): read as clamped to that range",
                o["id"],
                schedule_id,
                instants.EARLIEST.year,
                instants.LATEST.year,
            )
    return build(row, revisions, overrides)


def build(row: Any, revisions: Iterable[Any], overrides: Iterable[Any]) -> resolver.Schedule:
    """A pure Schedule from stored rows (the first revision has always been in force).

    A stored row the resolver refuses is an :class:`InvalidStoredData` naming it.
    """
    schedule_id = row["id"]
    problems: list[dict[str, Any]] = []

    def checked(where: dict[str, Any], make: Any) -> Any:
        try:
            return make()
        except resolver.ScheduleError as exc:
            problems.extend({**where, "field": e.field, "message": e.message} for e in exc.errors)
            return None

    revs = [
        checked(
            {"table": "schedule_revisions", "revision": r["revision"]},
            lambda i=i, r=r: resolver.Revision(
                timezone=r["timezone"],
                layers=tuple(resolver.Layer.from_dict(layer) for layer in r["layers"] or ()),
                effective_from=None if i == 0 else r["effective_from"],
            ),
        )
        for i, r in enumerate(revisions)
    ]
    if not revs:  # not reachable through the API; treat as the row's own configuration
        revs = [
            checked(
                {"table": "schedules"},
                lambda: resolver.Revision(timezone=row["timezone"], layers=()),
            )
        ]
    kept = [
        checked(
            {"table": "overrides", "id": str(o["id"])},
            lambda o=o: resolver.Override(
                id=str(o["id"]),
                person_id=o["person_id"],
                start=o["start_at"],
                end=o["end_at"],
                created_at=o["created_at"],
                sequence=o["seq"],
                reason=o["reason"] or "",
                schedule_id=o["schedule_id"],
            ),
        )
        for o in overrides
    ]
    if not problems:
        current = revs[-1]
        schedule = checked(
            {"table": "schedule_revisions"},
            lambda: resolver.Schedule(
                timezone=current.timezone,
                layers=current.layers,
                id=schedule_id,
                name=row["name"],
                effective_from=current.effective_from,
                history=tuple(revs[:-1]),
                overrides=tuple(kept),
            ),
        )
        if not problems:
            return schedule
    for p in problems:
        _report_once(
            schedule_id,
            f"{p['table']}:{p.get('id', p.get('revision', ''))}:{p['field']}",
            "schedule %r has a stored row the resolver refuses (%s): %s",
            schedule_id,
            ", ".join(f"{k}={v}" for k, v in p.items() if k != "message"),
            p["message"],
        )
    first = problems[0]
    raise InvalidStoredData(
        f"schedule {schedule_id!r} has stored data the resolver refuses "
        f"({first['table']} {first.get('id', first.get('revision', ''))} "
        f"{first['field']}: {first['message']}); fix or delete the row",
        details=[{"schedule_id": schedule_id, **p} for p in problems],
    )


async def check_participants(conn: asyncpg.Connection, *, layers: list[Any]) -> None:
    wanted = {p for layer in layers for p in layer.rotation.participants}
    absent = await people.missing(conn, ids=wanted)
    errors = [
        field_error(("body", "layers", i, "rotation", "participants", j), f"no person {person!r}")
        for i, layer in enumerate(layers)
        for j, person in enumerate(layer.rotation.participants)
        if person in absent
    ]
    raise_field_errors(errors)


def _normalised(timezone: str, layers: list[Any]) -> list[dict[str, Any]]:
    revision = resolver.Revision.from_dict(
        {"timezone": timezone, "layers": [layer.model_dump(mode="json") for layer in layers]}
    )
    return [layer.to_dict() for layer in revision.layers]


async def get_all(conn: asyncpg.Connection, *, limit: int, cursor: str | None) -> Any:
    return await keyset_page(conn, LISTING, build=_schedule, limit=limit, cursor=cursor)


async def get_plain(conn: asyncpg.Connection, *, schedule_id: str) -> Schedule:
    return _schedule(await _row(conn, schedule_id))


async def get(conn: asyncpg.Connection, *, schedule_id: str, now: datetime) -> Schedule:
    row = await _row(conn, schedule_id)
    return _schedule(row, await oncall_at(conn, schedule_id=schedule_id, at=now, row=row))


async def create(conn: asyncpg.Connection, *, body: ScheduleCreate, now: datetime) -> Schedule:
    await check_participants(conn, layers=body.layers)
    layers = _normalised(body.timezone, body.layers)
    row = await conn.fetchrow(
        f"""
        INSERT INTO np_oncall.schedules (source_account_id, id, name, timezone, layers)
        VALUES (current_setting('app.source_account_id'), $1, $2, $3, $4)
        ON CONFLICT (source_account_id, id) DO NOTHING
        RETURNING {COLUMNS}
        """,  # noqa: S608 - constant column list
        body.id or new_id(),
        body.name,
        body.timezone,
        layers,
    )
    if row is None:
        raise Conflict(f"a schedule with id {body.id!r} already exists", details={"id": body.id})
    await conn.execute(
        "INSERT INTO np_oncall.schedule_revisions "
        "(source_account_id, schedule_id, revision, effective_from, timezone, layers) "
        "VALUES (current_setting('app.source_account_id'), $1, 1, $2, $3, $4)",
        row["id"],
        now,
        body.timezone,
        layers,
    )
    return _schedule(row)


async def update(
    conn: asyncpg.Connection, *, schedule_id: str, body: ScheduleUpdate, now: datetime
) -> Schedule:
    """Rename, or revise the rotation from `now` on (earlier shifts stay as they were)."""
    row = await _row(conn, schedule_id, lock=True)
    given = body.model_fields_set
    raise_field_errors(
        [
            field_error(("body", name), "may not be null")
            for name in ("name", "timezone", "layers")
            if name in given and getattr(body, name) is None
        ]
    )
    timezone = body.timezone or row["timezone"]
    if body.layers is not None:
        await check_participants(conn, layers=body.layers)
        layers = _normalised(timezone, body.layers)
    else:
        layers = row["layers"]
    revision = row["revision"]
    if timezone != row["timezone"] or layers != row["layers"]:
        # a revision scheduled at or after `now` is superseded (as Schedule.revise does)
        await conn.execute(
            "DELETE FROM np_oncall.schedule_revisions "
            "WHERE schedule_id = $1 AND revision > 1 AND effective_from >= $2",
            schedule_id,
            now,
        )
        revision = await conn.fetchval(
            "SELECT max(revision) + 1 FROM np_oncall.schedule_revisions WHERE schedule_id = $1",
            schedule_id,
        )
        await conn.execute(
            "INSERT INTO np_oncall.schedule_revisions "
            "(source_account_id, schedule_id, revision, effective_from, timezone, layers) "
            "VALUES (current_setting('app.source_account_id'), $1, $2, $3, $4, $5)",
            schedule_id,
            revision,
            now,
            timezone,
            layers,
        )
    updated = await conn.fetchrow(
        f"""
        UPDATE np_oncall.schedules
        SET name = $2, timezone = $3, layers = $4, revision = $5, updated_at = now()
        WHERE id = $1 RETURNING {COLUMNS}
        """,  # noqa: S608 - constant column list
        schedule_id,
        body.name or row["name"],
        timezone,
        layers,
        revision,
    )
    return _schedule(updated)


async def delete(conn: asyncpg.Connection, *, schedule_id: str) -> None:
    """Delete a schedule (and its overrides) no escalation policy targets."""
    await _row(conn, schedule_id)
    policies = await conn.fetch(
        "SELECT id FROM np_oncall.policies WHERE jsonb_path_exists(steps, "
        "'$[*].targets[*] ? (@.type == \"schedule\" && @.id == $s)', $1) ORDER BY id",
        {"s": schedule_id},
    )
    if policies:
        raise Conflict(
            f"schedule {schedule_id!r} is a target of escalation policies; remove it there first",
            details={"policies": [r["id"] for r in policies]},
        )
    await conn.execute("DELETE FROM np_oncall.schedules WHERE id = $1", schedule_id)


async def person_refs(conn: asyncpg.Connection, ids: Iterable[str | None]) -> dict[str, PersonRef]:
    wanted = {i for i in ids if i}
    found = await people.get_many(conn, ids=wanted)
    return {
        i: PersonRef(id=i, name=found[i].name, email=found[i].email)
        if i in found
        else PersonRef(id=i, name=None)
        for i in wanted
    }


async def oncall_at(
    conn: asyncpg.Connection,
    *,
    schedule_id: str,
    at: datetime,
    row: asyncpg.Record | None = None,
) -> Oncall:
    schedule = await load(conn, schedule_id=schedule_id, since=at, until=at, row=row)
    try:
        answer = resolver.oncall(schedule, at)
    except resolver.ScheduleError as exc:
        raise resolver_errors(exc) from None
    refs = await person_refs(conn, [answer.person, answer.next.person if answer.next else None])
    return Oncall(
        schedule_id=schedule_id,
        at=answer.at,
        person=refs.get(answer.person) if answer.person else None,
        source=answer.source,
        layer=answer.layer,
        override_id=answer.override_id,
        shift_start=answer.shift_start,
        shift_end=answer.shift_end,
        next=None
        if answer.next is None
        else NextOncall(
            person=refs.get(answer.next.person) if answer.next.person else None,
            start=answer.next.start,
        ),
    )


async def shifts_between(
    conn: asyncpg.Connection, *, schedule_id: str, since: datetime, until: datetime
) -> Shifts:
    schedule = await load(conn, schedule_id=schedule_id, since=since, until=until)
    try:
        final = resolver.shifts(schedule, since, until)
    except resolver.ScheduleError as exc:
        raise resolver_errors(exc) from None
    return Shifts(
        schedule_id=schedule_id,
        since=final.since,
        until=final.until,
        shifts=[
            Shift(
                start=s.start,
                end=s.end,
                person_id=s.person_id,
                source=s.source,
                layer=s.layer,
                override_id=s.override_id,
            )
            for s in final.segments
        ],
        coverage=final.coverage,
    )


async def calendar(
    conn: asyncpg.Connection, *, schedule_id: str, since: datetime, until: datetime, now: datetime
) -> bytes:
    schedule = await load(conn, schedule_id=schedule_id, since=since, until=until)
    participants = {
        p for rev in schedule.revisions for layer in rev.layers for p in layer.rotation.participants
    }
    participants |= {o.person_id for o in schedule.overrides}
    names = {k: v.name for k, v in (await people.get_many(conn, ids=participants)).items()}
    try:
        return resolver.to_ical(schedule, since, until, dtstamp=now, names=names)
    except resolver.ScheduleError as exc:
        raise resolver_errors(exc) from None
