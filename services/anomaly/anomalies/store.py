"""SQL of anomalies: the list, one anomaly and its neighbours, feedback.

Every function takes a connection already inside a tenant transaction
(``tenant_transaction``): row-level security limits it to one account, and the
queries name ``source_account_id`` as well so that they use the indexes.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.common.errors import NotFound


async def list_anomalies(
    conn: asyncpg.Connection,
    *,
    account: str,
    detector_id: str | None,
    since: datetime | None,
    until: datetime | None,
    severity: str | None,
    status: str | None,
    limit: int,
    before: tuple[datetime, int] | None,
) -> list[asyncpg.Record]:
    """Anomalies newest first (keyset on ts, id); `limit + 1` rows to detect a next page."""
    before_ts, before_id = before if before is not None else (None, None)
    return await conn.fetch(
        """
        SELECT * FROM np_anomaly_data_points
        WHERE source_account_id = $1 AND is_anomaly
          AND ($2::text IS NULL OR detector_id = $2)
          AND ($3::timestamptz IS NULL OR ts >= $3)
          AND ($4::timestamptz IS NULL OR ts < $4)
          AND ($5::text IS NULL OR severity = $5)
          AND ($6::text IS NULL OR status = $6)
          AND ($7::timestamptz IS NULL OR (ts, id) < ($7, $8::bigint))
        ORDER BY ts DESC, id DESC
        LIMIT $9
        """,
        account,
        detector_id,
        since,
        until,
        severity,
        status,
        before_ts,
        before_id,
        limit + 1,
    )


async def get_anomaly(conn: asyncpg.Connection, *, account: str, point_id: int) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT * FROM np_anomaly_data_points "
        "WHERE source_account_id = $1 AND id = $2 AND is_anomaly",
        account,
        point_id,
    )
    if row is None:
        raise NotFound(f"no anomaly {point_id}", details={"id": point_id})
    return row


async def neighbours(
    conn: asyncpg.Connection, *, account: str, detector_id: str, ts: datetime, count: int
) -> list[asyncpg.Record]:
    """Up to `count` points before and `count` after `ts` (the point itself included)."""
    return await conn.fetch(
        """
        (SELECT id, ts, value, score, is_anomaly, expected, lower, upper, late
           FROM np_anomaly_data_points
          WHERE source_account_id = $1 AND detector_id = $2 AND ts < $3
          ORDER BY ts DESC LIMIT $4)
        UNION ALL
        (SELECT id, ts, value, score, is_anomaly, expected, lower, upper, late
           FROM np_anomaly_data_points
          WHERE source_account_id = $1 AND detector_id = $2 AND ts >= $3
          ORDER BY ts LIMIT $4 + 1)
        ORDER BY ts
        """,
        account,
        detector_id,
        ts,
        count,
    )


async def set_feedback(
    conn: asyncpg.Connection,
    *,
    account: str,
    point_id: int,
    status: str | None,
    note: str | None,
    note_given: bool,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        """
        UPDATE np_anomaly_data_points SET
            status = COALESCE($3, status),
            note = CASE WHEN $5 THEN $4 ELSE note END,
            reviewed_at = CASE
                WHEN $3::text IS NULL THEN reviewed_at
                WHEN $3 = 'open' THEN NULL
                ELSE now() END
        WHERE source_account_id = $1 AND id = $2 AND is_anomaly
        RETURNING *
        """,
        account,
        point_id,
        status,
        note,
        note_given,
    )
    if row is None:
        raise NotFound(f"no anomaly {point_id}", details={"id": point_id})
    return row
