"""SQL of the per-detector counts behind ``GET /api/v1/stats``.

Runs inside a tenant transaction; the queries name ``source_account_id`` too.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.anomaly.series_api.store import SeriesSelection


async def stats(
    conn: asyncpg.Connection,
    *,
    account: str,
    since: datetime | None,
    until: datetime | None,
    selected: SeriesSelection,
) -> list[asyncpg.Record]:
    """Per-series counts of the points stored in [since, until) of the selected series,
    by detector (every detector listed: a row with a NULL series_key when it has none)."""
    return await conn.fetch(
        """
        WITH p AS (
            SELECT detector_id, series_key,
                   count(*) FILTER (WHERE kind = 'point') AS points,
                   count(*) FILTER (WHERE is_anomaly) AS anomalies,
                   count(*) FILTER (WHERE is_anomaly AND severity = 'warning') AS warning,
                   count(*) FILTER (WHERE is_anomaly AND severity = 'critical') AS critical,
                   count(*) FILTER (WHERE is_anomaly AND status <> 'open') AS reviewed,
                   count(*) FILTER (WHERE is_anomaly AND status = 'confirmed') AS confirmed,
                   count(*) FILTER (WHERE is_anomaly AND status = 'false_positive')
                       AS false_positives,
                   count(*) FILTER (WHERE is_anomaly AND status = 'resolved') AS resolved
              FROM np_anomaly_data_points
             WHERE source_account_id = $1
               AND ($2::timestamptz IS NULL OR ts >= $2)
               AND ($3::timestamptz IS NULL OR ts < $3)
               AND ($4::text IS NULL OR detector_id = $4)
               AND ($5::text IS NULL OR series_key = $5)
               AND ($6::jsonb IS NULL OR series_key::jsonb @> $6)
             GROUP BY detector_id, series_key
        )
        SELECT d.id AS detector_id, p.series_key,
               COALESCE(p.points, 0) AS points, COALESCE(p.anomalies, 0) AS anomalies,
               COALESCE(p.warning, 0) AS warning, COALESCE(p.critical, 0) AS critical,
               COALESCE(p.reviewed, 0) AS reviewed, COALESCE(p.confirmed, 0) AS confirmed,
               COALESCE(p.false_positives, 0) AS false_positives,
               COALESCE(p.resolved, 0) AS resolved
          FROM np_anomaly_detectors d
          LEFT JOIN p ON p.detector_id = d.id
         WHERE d.source_account_id = $1 AND ($4::text IS NULL OR d.id = $4)
         ORDER BY d.id, p.series_key
        """,
        account,
        since,
        until,
        selected.detector_id,
        selected.series_key,
        selected.labels,
    )
