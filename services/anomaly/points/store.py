"""SQL of the points route. Runs inside a tenant transaction; names the account too."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.anomaly.detectors_api.store import detector_missing

_EXISTS_SQL = "SELECT 1 FROM np_anomaly_detectors WHERE source_account_id = $1 AND id = $2"

# along the unique (source_account_id, detector_id, series_key, ts) key;
# explanations of anomalies only; `no_data` anomalies are no points
_POINTS_SQL = """
SELECT id, ts, value, score, expected, lower, upper, is_anomaly, late,
       CASE WHEN is_anomaly THEN severity END AS severity,
       CASE WHEN is_anomaly THEN coalesce(status, 'open') END AS status,
       CASE WHEN is_anomaly THEN context ->> 'explanation' END AS explanation
  FROM np_anomaly_data_points
 WHERE source_account_id = $1 AND detector_id = $2 AND series_key = $5
   AND ts >= $3 AND ts < $4 AND kind = 'point'
 ORDER BY ts
"""


async def ensure_detector(conn: asyncpg.Connection, *, account: str, detector_id: str) -> None:
    if await conn.fetchval(_EXISTS_SQL, account, detector_id) is None:
        raise detector_missing(detector_id)


async def points(
    conn: asyncpg.Connection,
    *,
    account: str,
    detector_id: str,
    series_key: str,
    since: datetime,
    until: datetime,
) -> list[asyncpg.Record]:
    return await conn.fetch(_POINTS_SQL, account, detector_id, since, until, series_key)
