"""SQL of anomalies: the list, one anomaly and its neighbours, feedback.

Runs inside a tenant transaction; the queries name ``source_account_id`` too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from services.anomaly.anomalies.service import anomaly_out
from services.anomaly.series_api.store import SeriesSelection
from services.common.errors import NotFound
from services.common.listing import Filter, Keyset, keyset_page
from services.common.pagination import Page

LISTING = Keyset(
    table="np_anomaly_data_points",
    columns="*",
    order=("ts", "id"),
    id_type="bigint",
    newest_first=True,
    where="is_anomaly",
)


async def list_anomalies(
    conn: asyncpg.Connection,
    *,
    account: str,
    selected: SeriesSelection,
    since: datetime | None,
    until: datetime | None,
    severity: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
    kind: str | None = None,
) -> Page[dict[str, Any]]:
    """One page of anomalies, newest first (keyset on ts, id), as answer shapes."""
    return await keyset_page(
        conn,
        LISTING,
        build=anomaly_out,
        limit=limit,
        cursor=cursor,
        filters=[
            Filter("source_account_id", "=", account),
            Filter("detector_id", "=", selected.detector_id),
            Filter("series_key", "=", selected.series_key),
            Filter("series_key::jsonb", "@>", selected.labels),
            Filter("ts", ">=", since),
            Filter("ts", "<", until),
            Filter("severity", "=", severity),
            Filter("status", "=", status),
            Filter("kind", "=", kind),
        ],
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
    conn: asyncpg.Connection,
    *,
    account: str,
    detector_id: str,
    series_key: str,
    ts: datetime,
    count: int,
) -> list[asyncpg.Record]:
    """Up to `count` points of the series before and `count` after `ts` (the point itself
    included; a `no_data` anomaly is no point: its neighbours are the points around it)."""
    return await conn.fetch(
        """
        (SELECT id, ts, value, score, is_anomaly, expected, lower, upper, late
           FROM np_anomaly_data_points
          WHERE source_account_id = $1 AND detector_id = $2 AND series_key = $5 AND ts < $3
            AND kind = 'point'
          ORDER BY ts DESC LIMIT $4)
        UNION ALL
        (SELECT id, ts, value, score, is_anomaly, expected, lower, upper, late
           FROM np_anomaly_data_points
          WHERE source_account_id = $1 AND detector_id = $2 AND series_key = $5 AND ts >= $3
            AND kind = 'point'
          ORDER BY ts LIMIT $4 + 1)
        ORDER BY ts
        """,
        account,
        detector_id,
        ts,
        count,
        series_key,
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
