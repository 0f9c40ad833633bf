"""Alert store: trigger (with dedup), acknowledge, resolve, read with the timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from services.common.errors import Conflict
from services.common.listing import Filter, Keyset, keyset_page
from services.common.metrics import ALERTS
from services.common.pagination import Page
from services.oncall.alerts.models import (
    Alert,
    AlertCreate,
    AlertDetail,
    Notification,
    TimelineEntry,
)
from services.oncall.escalation import engine, runner
from services.oncall.maintenance import store as maintenance_store
from services.oncall.policies.models import Step
from services.oncall.timeline import record
from services.oncall.validation import field_error, not_found, parse_uuid, raise_field_errors

COLUMNS = (
    "id::text AS id, policy_id, summary, details, severity, dedup_key, source, status, "
    "dedup_count, created_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by, "
    "integration_id::text AS integration_id, suppressed_at"
)
LISTING = Keyset(table="np_oncall.alerts", columns=COLUMNS, id_type="uuid", newest_first=True)


def _alert(row: asyncpg.Record) -> Alert:
    return Alert.model_validate(dict(row))


# One round trip: the policy, the alert (a still-open dedup_key counts one more
# instead), its timeline entry, and the people step 0 targets directly. No row
# when the policy does not exist (then nothing is written).
_TRIGGER = f"""
WITH policy AS (
    SELECT steps, repeat FROM np_oncall.policies WHERE id = $1
), alert AS (
    INSERT INTO np_oncall.alerts
        (source_account_id, policy_id, summary, details, severity, dedup_key, source, created_at,
         integration_id, status, suppressed_at)
    SELECT $2, $1, $3, $4, $5, $6, $7, $8, $10::uuid,
           CASE WHEN $11::uuid IS NULL THEN 'triggered' ELSE 'suppressed' END,
           CASE WHEN $11::uuid IS NULL THEN NULL ELSE $8::timestamptz END
    FROM policy
    ON CONFLICT (source_account_id, dedup_key) WHERE dedup_key IS NOT NULL AND status <> 'resolved'
    DO UPDATE SET dedup_count = np_oncall.alerts.dedup_count + 1
    RETURNING {COLUMNS}, id AS uid, (xmax = 0) AS inserted
), event AS (
    INSERT INTO np_oncall.alert_events (source_account_id, alert_id, at, kind, details)
    SELECT $2, a.uid, $8,
           CASE WHEN a.inserted THEN 'triggered' ELSE 'deduplicated' END,
           CASE WHEN a.inserted THEN $9::jsonb
                ELSE jsonb_build_object('dedup_key', a.dedup_key, 'count', a.dedup_count) END
    FROM alert a
    UNION ALL  -- a window in force: recorded as suppressed, nobody notified
    SELECT $2, a.uid, $8, 'suppressed', jsonb_build_object('window_id', $11::uuid)
    FROM alert a WHERE a.inserted AND $11::uuid IS NOT NULL
)
SELECT a.*, p.steps AS policy_steps, p.repeat AS policy_repeat,
       CASE WHEN a.inserted THEN (
           SELECT jsonb_object_agg(
                      pp.id,
                      jsonb_build_array(pp.name, pp.contact_methods, pp.notification_rules))
           FROM np_oncall.people pp
           WHERE pp.id IN (SELECT t ->> 'id'
                           FROM jsonb_array_elements(p.steps -> 0 -> 'targets') AS t
                           WHERE t ->> 'type' = 'person'))
       END AS people
FROM policy p LEFT JOIN alert a ON true
"""  # noqa: S608 - constant column list


async def trigger(
    conn: asyncpg.Connection,
    *,
    account: str,
    body: AlertCreate,
    now: datetime,
    integration_id: str | None = None,
) -> tuple[Alert, bool]:
    """The new alert (True) or the open one with the same dedup key (False).

    A maintenance window in force over the alert's policy, integration or detector
    (nself-anomaly's pages name it in `details.detector_id`) stores it `suppressed`:
    nobody is notified until the window ends (`maintenance.service.release`).
    """
    detector = (
        body.details.get("detector_id")
        if body.source == "nself-anomaly" and isinstance(body.details, dict)
        else None
    )
    window = await maintenance_store.window_in_force(
        conn,
        policy_id=body.policy_id,
        integration_id=integration_id,
        detector_id=detector if isinstance(detector, str) else None,
        now=now,
    )
    row = await conn.fetchrow(
        _TRIGGER,
        body.policy_id,
        account,
        body.summary,
        body.details,
        body.severity,
        body.dedup_key,
        body.source,
        now,
        {"policy_id": body.policy_id, "severity": body.severity, "source": body.source},
        integration_id,
        window,
    )
    if row is None:
        raise_field_errors([field_error(("body", "policy_id"), f"no policy {body.policy_id!r}")])
    assert row is not None
    alert = _alert(row)
    if not row["inserted"]:
        ALERTS.labels("deduplicated").inc()
        return alert, False
    if window is not None:
        ALERTS.labels("suppressed").inc()
        return alert, True
    ALERTS.labels("triggered").inc()
    steps = [Step.model_validate(s).model_dump(mode="json") for s in row["policy_steps"]]
    snapshot = {"steps": steps, "repeat": row["policy_repeat"]}
    found = row["people"] or {}
    people: dict[str, runner.PersonRow | None] = {
        t["id"]: tuple(found[t["id"]]) if t["id"] in found else None  # type: ignore[misc]
        for t in steps[0]["targets"]
        if t["type"] == "person"
    }
    # a step-0 target that cannot be resolved (a schedule with stored data the
    # resolver refuses) does not refuse the alert: it is stored, the failure is on
    # its timeline and the worker retries the step
    await runner.escalate_isolated(
        conn,
        account=account,
        alert={**dict(row), "id": row["uid"]},
        policy=snapshot,
        state=engine.start(now),
        now=now,
        people=people,
    )
    return alert, True


async def stop(conn: asyncpg.Connection, *, account: str, alert_id: Any, now: datetime) -> None:
    """No further escalation; pending notifications are cancelled (in-flight ones finish)."""
    await conn.execute("DELETE FROM np_oncall.escalations WHERE alert_id = $1", alert_id)
    cancelled = await conn.fetch(
        """
        UPDATE np_oncall.notifications
        SET status = 'cancelled', updated_at = $2, lease_until = NULL
        WHERE alert_id = $1 AND status IN ('pending', 'failed')
        RETURNING id
        """,
        alert_id,
        now,
    )
    for row in cancelled:
        await record(
            conn,
            account=account,
            alert_id=alert_id,
            at=now,
            kind="notification_cancelled",
            notification_id=row["id"],
        )


_ACKNOWLEDGE = f"""
UPDATE np_oncall.alerts SET status = 'acknowledged', acknowledged_at = $2, acknowledged_by = $3
WHERE id = $1 AND status IN ('triggered', 'suppressed')
RETURNING {COLUMNS}
"""  # noqa: S608 - constant column list
_RESOLVE = f"""
UPDATE np_oncall.alerts SET status = 'resolved', resolved_at = $2, resolved_by = $3
WHERE id = $1 AND status <> 'resolved'
RETURNING {COLUMNS}
"""  # noqa: S608 - constant column list


async def _close(
    conn: asyncpg.Connection,
    *,
    account: str,
    alert_id: str,
    by: str,
    now: datetime,
    update: str,
    kind: str,
    details: dict[str, Any] | None = None,
) -> Alert | None:
    """Run `update` (acknowledge or resolve); on a change record it and stop escalating.

    None when the alert was not in a state `update` changes.
    """
    uid = parse_uuid(alert_id, "alert")
    row = await conn.fetchrow(update, uid, now, by)
    if row is None:
        return None
    await record(
        conn,
        account=account,
        alert_id=uid,
        at=now,
        kind=kind,
        details={"by": by, **(details or {})},
    )
    await stop(conn, account=account, alert_id=uid, now=now)
    ALERTS.labels(kind).inc()
    return _alert(row)


async def acknowledge(
    conn: asyncpg.Connection,
    *,
    account: str,
    alert_id: str,
    by: str,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> Alert:
    """`details` go on the timeline entry beside `by` (a link's person and name)."""
    alert = await _close(
        conn,
        account=account,
        alert_id=alert_id,
        by=by,
        now=now,
        update=_ACKNOWLEDGE,
        kind="acknowledged",
        details=details,
    )
    if alert is not None:
        return alert
    current = await get(conn, alert_id=alert_id)
    if current.status == "resolved":
        raise Conflict("the alert is already resolved", details={"status": current.status})
    return current  # already acknowledged: nothing changes


async def resolve(
    conn: asyncpg.Connection,
    *,
    account: str,
    alert_id: str,
    by: str,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> Alert:
    alert = await _close(
        conn,
        account=account,
        alert_id=alert_id,
        by=by,
        now=now,
        update=_RESOLVE,
        kind="resolved",
        details=details,
    )
    return alert or await get(conn, alert_id=alert_id)  # already resolved (or 404)


async def get(conn: asyncpg.Connection, *, alert_id: str) -> Alert:
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM np_oncall.alerts WHERE id = $1",  # noqa: S608
        parse_uuid(alert_id, "alert"),
    )
    if row is None:
        raise not_found("alert", alert_id)
    return _alert(row)


def _shown_destination(channel: str, destination: str) -> str:
    if channel == "email":
        return destination
    parts = urlsplit(destination)  # webhook paths often carry secrets: show scheme and host
    return f"{parts.scheme}://{parts.netloc}"


async def get_detail(conn: asyncpg.Connection, *, alert_id: str) -> AlertDetail:
    alert = await get(conn, alert_id=alert_id)
    uid = parse_uuid(alert_id, "alert")
    events = await conn.fetch(
        "SELECT at, kind, notification_id::text AS notification_id, details "
        "FROM np_oncall.alert_events WHERE alert_id = $1 ORDER BY at, id",
        uid,
    )
    notifications = await conn.fetch(
        """
        SELECT id::text AS id, person_id, channel, destination, step, loop, status, attempts,
               idempotency_key, not_before, sent_at, last_error, last_status_code
        FROM np_oncall.notifications WHERE alert_id = $1 ORDER BY created_at, loop, step, id
        """,
        uid,
    )
    return AlertDetail(
        **alert.model_dump(),
        timeline=[TimelineEntry.model_validate(dict(e)) for e in events],
        notifications=[
            Notification.model_validate(
                {**dict(n), "destination": _shown_destination(n["channel"], n["destination"])}
            )
            for n in notifications
        ],
    )


async def get_all(
    conn: asyncpg.Connection,
    *,
    status: str | None,
    policy_id: str | None,
    limit: int,
    cursor: str | None,
) -> Page[Alert]:
    """Newest first."""
    return await keyset_page(
        conn,
        LISTING,
        build=_alert,
        limit=limit,
        cursor=cursor,
        filters=[Filter("status", "=", status), Filter("policy_id", "=", policy_id)],
    )
