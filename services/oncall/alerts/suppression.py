"""Alerts and maintenance windows: suppress the alerts a window covers, release them.

A window that comes into force suppresses the alerts of its scope that are still
`triggered`: escalation stops and pending notifications are cancelled, as an ack
does (`service.stop`), and the timeline says `suppressed` with the window. An alert
created while a window is in force is stored suppressed at once
(`service.trigger`). When no window covers a suppressed alert any more, it is
released: `triggered` again, and its escalation starts at that instant from step 0
with the policy as it is then (an acknowledged or resolved alert stays as it is).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from services.common.metrics import ALERTS
from services.oncall.alerts.service import COLUMNS, stop
from services.oncall.escalation import engine, runner
from services.oncall.maintenance.windows import AlertScope, Scope
from services.oncall.policies.models import Step
from services.oncall.timeline import record

# the alerts of a scope still firing; nself-anomaly names its detector in the details
_SUPPRESS = """
UPDATE np_oncall.alerts SET status = 'suppressed', suppressed_at = $4
WHERE status = 'triggered'
  AND (policy_id = $1
       OR integration_id = $2::uuid
       OR (source = 'nself-anomaly' AND details ->> 'detector_id' = $3))
RETURNING id
"""


async def suppress(
    conn: asyncpg.Connection, *, account: str, scope: Scope, window_id: Any, now: datetime
) -> list[uuid.UUID]:
    """Suppress the firing alerts of `scope` (in the caller's tenant transaction)."""
    rows = await conn.fetch(
        _SUPPRESS, scope.policy_id, scope.integration_id, scope.detector_id, now
    )
    for row in rows:
        await record(
            conn,
            account=account,
            alert_id=row["id"],
            at=now,
            kind="suppressed",
            details={"window_id": str(window_id)},
        )
        await stop(conn, account=account, alert_id=row["id"], now=now)
        ALERTS.labels("suppressed").inc()
    return [row["id"] for row in rows]


def scope_of(alert: Any) -> AlertScope:
    """An alert row's scope, as windows match it."""
    details = alert["details"]
    detector = None
    if alert["source"] == "nself-anomaly" and isinstance(details, dict):
        found = details.get("detector_id")
        detector = found if isinstance(found, str) else None
    integration = alert["integration_id"]
    return AlertScope(
        policy_id=alert["policy_id"],
        integration_id=None if integration is None else str(integration),
        detector_id=detector,
    )


async def suppressed(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The account's suppressed alerts, locked (another worker skips them)."""
    return await conn.fetch(
        f"SELECT {COLUMNS}, id AS uid FROM np_oncall.alerts "  # noqa: S608 - constant columns
        "WHERE status = 'suppressed' ORDER BY created_at, id FOR UPDATE SKIP LOCKED"
    )


_RELEASE = f"""
WITH released AS (
    UPDATE np_oncall.alerts SET status = 'triggered', suppressed_at = NULL
    WHERE id = $1 AND status = 'suppressed'
    RETURNING {COLUMNS}, id AS uid
)
SELECT r.*, p.steps AS policy_steps, p.repeat AS policy_repeat
FROM released r LEFT JOIN np_oncall.policies p ON p.id = r.policy_id
"""  # noqa: S608 - constant column list


async def release(
    conn: asyncpg.Connection, *, account: str, alert_id: uuid.UUID, now: datetime
) -> bool:
    """Release one suppressed alert: triggered again, escalating from step 0 at `now`."""
    row = await conn.fetchrow(_RELEASE, alert_id)
    if row is None:
        return False
    if row["policy_steps"] is None:  # the policy was deleted meanwhile: nobody to page
        await record(
            conn,
            account=account,
            alert_id=alert_id,
            at=now,
            kind="released",
            details={"escalation": "policy_missing", "policy_id": row["policy_id"]},
        )
        return True
    await record(conn, account=account, alert_id=alert_id, at=now, kind="released")
    steps = [Step.model_validate(s).model_dump(mode="json") for s in row["policy_steps"]]
    # a new round of the escalation: its notifications get keys of their own (the
    # cancelled ones of the first round keep theirs)
    rounds = await conn.fetchval(
        "SELECT count(*) FROM np_oncall.alert_events WHERE alert_id = $1 AND kind = 'released'",
        alert_id,
    )
    await runner.escalate_isolated(
        conn,
        account=account,
        alert={**dict(row), "id": row["uid"]},
        policy={"steps": steps, "repeat": row["policy_repeat"], "round": rounds},
        state=engine.start(now),
        now=now,
    )
    ALERTS.labels("released").inc()
    return True
