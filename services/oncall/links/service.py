"""What a link does, in the alert's account: read its alert, remember its use, act.

A link acts once: its id goes into ``np_oncall.link_uses`` in the transaction that
acts (the primary key refuses a second use, however many requests race). An action
the alert's state refuses (ack of a resolved alert, escalation of one that is not
triggered or has no further step) rolls back with the use, so the link stays usable.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from services.common.errors import Conflict
from services.oncall.alerts import service as alerts
from services.oncall.escalation import engine, runner
from services.oncall.links.tokens import Link
from services.oncall.timeline import record

_ALERT = """
SELECT a.id, a.policy_id, a.summary, a.details, a.severity, a.dedup_key, a.source,
       a.created_at, a.status,
       (SELECT name FROM np_oncall.people WHERE id = $2) AS person_name,
       EXISTS (SELECT 1 FROM np_oncall.link_uses WHERE link_id = $3) AS used
FROM np_oncall.alerts a WHERE a.id = $1
"""


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def load(conn: asyncpg.Connection, link: Link) -> asyncpg.Record | None:
    """The link's alert (with `person_name` and `used`), None when it no longer exists."""
    alert_id = _uuid(link.alert_id)
    if alert_id is None:
        return None
    return await conn.fetchrow(_ALERT, alert_id, link.person_id, link.id)


def who(link: Link, alert: Any) -> str:
    name = alert["person_name"]
    return f"{name} ({link.person_id})" if name else link.person_id


async def use(conn: asyncpg.Connection, link: Link, *, now: datetime) -> bool:
    """Remember the link's use; False when it was used already."""
    row = await conn.fetchrow(
        """
        INSERT INTO np_oncall.link_uses
            (source_account_id, link_id, alert_id, person_id, action, used_at)
        VALUES (current_setting('app.source_account_id'), $1, $2, $3, $4, $5)
        ON CONFLICT (source_account_id, link_id) DO NOTHING
        RETURNING link_id
        """,
        link.id,
        uuid.UUID(link.alert_id),
        link.person_id,
        link.action,
        now,
    )
    return row is not None


# the actions that move an alert to a state: (the state, the service call)
_CLOSING = {"ack": ("acknowledged", alerts.acknowledge), "resolve": ("resolved", alerts.resolve)}


async def act(conn: asyncpg.Connection, link: Link, alert: Any, *, now: datetime) -> None:
    """Do what the link says, on the timeline with the person's id and name. Raises
    Conflict when the alert's state refuses it (the caller rolls back)."""
    details = {
        "person": {"id": link.person_id, "name": alert["person_name"]},
        "via": "link",
    }
    if link.action in _CLOSING:
        done, change = _CLOSING[link.action]
        if alert["status"] == done:
            raise Conflict(f"the alert is already {done}")
        await change(
            conn,
            account=link.account,
            alert_id=link.alert_id,
            by=link.person_id,
            now=now,
            details=details,
        )
    else:
        await escalate(conn, link, alert, now=now, details=details)


async def escalate(
    conn: asyncpg.Connection, link: Link, alert: Any, *, now: datetime, details: dict[str, Any]
) -> None:
    """Fire the alert's next escalation step now (PagerDuty's "escalate")."""
    if alert["status"] != "triggered":
        raise Conflict(f"the alert is {alert['status']}: only a triggered alert escalates")
    state = await conn.fetchrow(
        "SELECT policy, next_step, loop FROM np_oncall.escalations WHERE alert_id = $1 FOR UPDATE",
        alert["id"],
    )
    if state is None:
        raise Conflict("the escalation policy has no further step")
    await record(
        conn,
        account=link.account,
        alert_id=alert["id"],
        at=now,
        kind="escalation_requested",
        details={
            "by": link.person_id,
            "step": state["next_step"],
            "loop": state["loop"],
            **details,
        },
    )
    await runner.escalate_isolated(
        conn,
        account=link.account,
        alert=alert,
        policy=state["policy"],
        state=engine.State(state["next_step"], state["loop"], now),
        now=now,
    )
