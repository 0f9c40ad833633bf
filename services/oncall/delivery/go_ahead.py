"""The last check before claimed notifications are sent (see ``outbox``'s docstring).

An acknowledgement racing a claim: right before claimed rows are sent (after the
claim committed, one statement per batch), :func:`go_ahead` reads their alerts under
a share lock (so an ack in progress is waited for, then seen) and cancels a row whose
alert is no longer triggered, or skips one whose claim token no longer matches.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

import asyncpg

from services.common.metrics import NOTIFICATIONS

if TYPE_CHECKING:
    from services.oncall.delivery.outbox import Claimed


# Right before sends start: the alerts read under a share lock, in one order (an
# acknowledgement or a resolve in progress holds its alert's row: waited for, then
# its outcome read), and the rows cancelled whose alert is closed and that are
# still this claim's. An alert is locked before its notifications, the order
# acknowledge takes them in.
_GO_AHEAD = """
WITH items AS (
    SELECT u.a, u.n, u.alert, u.t
    FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::uuid[]) AS u(a, n, alert, t)
), alert AS (
    SELECT a.source_account_id, a.id, a.status
    FROM np_oncall.alerts a
    WHERE (a.source_account_id, a.id) IN (SELECT items.a, items.alert FROM items)
    ORDER BY a.source_account_id, a.id
    FOR SHARE OF a
), leased AS (
    SELECT n.source_account_id, n.id
    FROM np_oncall.notifications n JOIN items
      ON n.source_account_id = items.a AND n.id = items.n AND n.claim_token = items.t
    WHERE n.status = 'sending'
), cancelled AS (
    UPDATE np_oncall.notifications n
    SET status = 'cancelled', lease_until = NULL, updated_at = $5
    FROM items, alert
    WHERE n.source_account_id = items.a AND n.id = items.n AND n.claim_token = items.t
      AND n.status = 'sending' AND alert.source_account_id = items.a
      AND alert.id = items.alert AND alert.status <> 'triggered'
    RETURNING n.source_account_id, n.id, n.alert_id, alert.status
), timeline AS (
    INSERT INTO np_oncall.alert_events
        (source_account_id, alert_id, at, kind, notification_id, details)
    SELECT c.source_account_id, c.alert_id, $5, 'notification_cancelled', c.id,
           jsonb_build_object('alert_status', c.status, 'before_send', true)
    FROM cancelled c
)
SELECT items.a, items.n, l.id IS NOT NULL AS leased, al.status AS alert_status
FROM items
LEFT JOIN leased l ON l.source_account_id = items.a AND l.id = items.n
LEFT JOIN alert al ON al.source_account_id = items.a AND al.id = items.alert
"""

Verdict = Literal["go", "cancelled", "lost"]


async def go_ahead(pool: asyncpg.Pool, items: list[Claimed], *, now: datetime) -> list[Verdict]:
    """Whether each claimed notification may be sent now, in one statement: `go`;
    `cancelled` (its alert was acknowledged or resolved: the row is cancelled, on the
    timeline); `lost` (the lease went to another worker, whose send counts)."""
    if not items:
        return []
    rows = await pool.fetch(
        _GO_AHEAD,
        [i.account for i in items],
        [i.id for i in items],
        [i.alert_id for i in items],
        [i.claim_token for i in items],
        now,
    )
    found = {(r["a"], r["n"]): r for r in rows}
    verdicts: list[Verdict] = []
    for item in items:
        row = found[(item.account, item.id)]
        if not row["leased"]:
            verdicts.append("lost")
        elif row["alert_status"] != "triggered":
            NOTIFICATIONS.labels(item.channel, "cancelled").inc()
            verdicts.append("cancelled")
        else:
            verdicts.append("go")
    return verdicts
