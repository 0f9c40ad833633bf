"""Maintenance windows: create (in force at once if it has begun), read, delete, and
the worker's pass (`tick`) that applies a window's start and releases at its end.

Suppression itself (alerts, timeline, cancelled notifications, escalation on
release) is `alerts/suppression.py`; when a window is in force is the pure
`windows.py`.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

import asyncpg

from services.common.listing import Filter, Keyset, keyset_page
from services.common.pagination import Page
from services.oncall.alerts import suppression
from services.oncall.escalation.runner import act_as_tenant
from services.oncall.maintenance import store
from services.oncall.maintenance.models import Occurrence, Window, WindowCreate
from services.oncall.maintenance.windows import InvalidWindow, covers, next_occurrence
from services.oncall.maintenance.windows import validate as validate_window
from services.oncall.validation import field_error, not_found, parse_uuid, raise_field_errors

log = logging.getLogger("nsentry.oncall.maintenance")
LISTING = Keyset(table="np_oncall.maintenance_windows", columns=store.COLUMNS, id_type="uuid")
_TARGETS = {
    "policy_id": ("np_oncall.policies", "policy"),
    "integration_id": ("np_oncall.integrations", "integration"),
    "detector_id": ("public.np_anomaly_detectors", "detector"),
}


def answer(row: Any, now: datetime) -> Window:
    current = store.in_force(row, now)
    try:
        upcoming = next_occurrence(store.window_of(row), now)
    except (ValueError, KeyError, TypeError, ZoneInfoNotFoundError):  # see store.in_force
        upcoming = None
    return Window(
        id=str(row["id"]),
        name=row["name"],
        policy_id=row["policy_id"],
        integration_id=row["integration_id"],
        detector_id=row["detector_id"],
        start=row["start_at"],
        end=row["end_at"],
        rrule=row["rrule"],
        timezone=row["timezone"],
        until=row["until_at"],
        created_at=row["created_at"],
        active=None if current is None else Occurrence(start=current.start, end=current.end),
        next=None if upcoming is None else Occurrence(start=upcoming.start, end=upcoming.end),
    )


async def create(
    conn: asyncpg.Connection, *, account: str, body: WindowCreate, now: datetime
) -> Window:
    """Store a window; in force already, it suppresses its scope's firing alerts now."""
    try:
        until = validate_window(store.Window(body.start, body.end, body.rrule, body.timezone))
    except InvalidWindow as exc:
        raise_field_errors([field_error(("body", exc.field), exc.message)])
        raise AssertionError from exc  # raise_field_errors raised
    for field, (table, kind) in _TARGETS.items():
        value = getattr(body, field)
        if value is None:
            continue
        ident: Any = uuid.UUID(value) if field == "integration_id" else value
        if not await store.exists(conn, table=table, ident=ident):
            raise_field_errors([field_error(("body", field), f"no {kind} {value!r}")])
    values = body.model_dump()
    if body.integration_id is not None:
        values["integration_id"] = str(uuid.UUID(body.integration_id))
    row = await store.insert(conn, values=values, until=until, now=now)
    await _apply(conn, account=account, row=row, now=now)
    return answer(row, now)


async def _apply(conn: asyncpg.Connection, *, account: str, row: Any, now: datetime) -> bool:
    """If an occurrence of the window is in force and not yet applied: suppress its scope."""
    current = store.in_force(row, now)
    if current is None or row["applied_start"] == current.start:
        return False
    await suppression.suppress(
        conn, account=account, scope=store.scope_of(row), window_id=row["id"], now=now
    )
    await store.mark_applied(conn, row["id"], current.start)
    return True


async def get(conn: asyncpg.Connection, *, window_id: str, now: datetime) -> Window:
    row = await store.get(conn, parse_uuid(window_id, "maintenance window"))
    if row is None:
        raise not_found("maintenance window", window_id)
    return answer(row, now)


async def delete(conn: asyncpg.Connection, *, account: str, window_id: str, now: datetime) -> None:
    """Delete a window; what it alone suppressed is released at once."""
    if not await store.delete(conn, parse_uuid(window_id, "maintenance window")):
        raise not_found("maintenance window", window_id)
    await release_uncovered(conn, account=account, now=now)


async def get_all(
    conn: asyncpg.Connection,
    *,
    policy_id: str | None,
    integration_id: str | None,
    detector_id: str | None,
    limit: int,
    cursor: str | None,
    now: datetime,
) -> Page[Window]:
    """In creation order."""
    return await keyset_page(
        conn,
        LISTING,
        build=lambda row: answer(row, now),
        limit=limit,
        cursor=cursor,
        filters=[
            Filter("policy_id", "=", policy_id),
            Filter("integration_id::text", "=", integration_id),
            Filter("detector_id", "=", detector_id),
        ],
    )


async def release_uncovered(conn: asyncpg.Connection, *, account: str, now: datetime) -> int:
    """Release the account's suppressed alerts that no window in force covers at `now`
    (in the caller's tenant transaction); how many were released."""
    alerts = await suppression.suppressed(conn)
    if not alerts:
        return 0
    in_force = [store.scope_of(w) for w in await store.live(conn, now) if store.in_force(w, now)]
    released = 0
    for alert in alerts:
        scope = suppression.scope_of(alert)
        if any(covers(window, scope) for window in in_force):
            continue
        released += await suppression.release(conn, account=account, alert_id=alert["uid"], now=now)
    return released


async def tick(pool: asyncpg.Pool, now: datetime) -> tuple[int, int]:
    """The worker's pass at `now`: windows whose occurrence has begun suppress their
    scope (once per occurrence), then suppressed alerts no window covers any more are
    released and start escalating. One transaction per window and per account; rows
    are locked with SKIP LOCKED, so any number of workers may run. Returns (windows
    applied, alerts released)."""
    applied = 0
    for candidate in await store.live(pool, now):
        current = store.in_force(candidate, now)
        if current is None or candidate["applied_start"] == current.start:
            continue
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT {store.COLUMNS} FROM np_oncall.maintenance_windows "  # noqa: S608
                "WHERE source_account_id = $1 AND id = $2 FOR UPDATE SKIP LOCKED",
                candidate["source_account_id"],
                candidate["id"],
            )
            if row is None:
                continue
            account = candidate["source_account_id"]
            await act_as_tenant(conn, account)
            applied += await _apply(conn, account=account, row=row, now=now)
    released = 0
    accounts = await pool.fetch(
        "SELECT DISTINCT source_account_id FROM np_oncall.alerts WHERE status = 'suppressed'"
    )
    for found in accounts:
        account = found["source_account_id"]
        async with pool.acquire() as conn, conn.transaction():
            await act_as_tenant(conn, account)
            released += await release_uncovered(conn, account=account, now=now)
    if applied or released:
        log.info("maintenance: %d window(s) began, %d alert(s) released", applied, released)
    return applied, released
