"""The alert timeline: one row per thing that happened to an alert."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg


async def record(
    conn: asyncpg.Connection,
    *,
    account: str,
    alert_id: str | UUID,
    at: datetime,
    kind: str,
    details: dict[str, Any] | None = None,
    notification_id: str | UUID | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO np_oncall.alert_events "
        "(source_account_id, alert_id, at, kind, notification_id, details) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        account,
        alert_id if isinstance(alert_id, UUID) else UUID(alert_id),
        at,
        kind,
        None
        if notification_id is None
        else notification_id
        if isinstance(notification_id, UUID)
        else UUID(str(notification_id)),
        details or {},
    )


async def record_many(conn: asyncpg.Connection, events: list[tuple[Any, ...]]) -> None:
    """Several entries: `(account, alert_id, at, kind, notification_id, details)` each."""
    await conn.executemany(
        "INSERT INTO np_oncall.alert_events "
        "(source_account_id, alert_id, at, kind, notification_id, details) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        events,
    )
