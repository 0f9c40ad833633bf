"""SQL of the stored history a backtest replays.

Runs inside a tenant transaction; the queries name ``source_account_id`` too.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def history(
    conn: asyncpg.Connection,
    *,
    account: str,
    detector_id: str,
    series_key: str,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[asyncpg.Record]:
    """The newest `limit` stored points of a series in [since, until), oldest first."""
    rows = await conn.fetch(
        """
        SELECT ts, value FROM np_anomaly_data_points
        WHERE source_account_id = $1 AND detector_id = $2 AND series_key = $6
          AND kind = 'point'
          AND ($3::timestamptz IS NULL OR ts >= $3) AND ($4::timestamptz IS NULL OR ts < $4)
        ORDER BY ts DESC LIMIT $5
        """,
        account,
        detector_id,
        since,
        until,
        limit,
        series_key,
    )
    rows.reverse()
    return rows
