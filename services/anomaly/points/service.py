"""The points of a detector over a range, decimated to at most `max_points`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg
import numpy as np

from services.anomaly.points import store
from services.anomaly.points.decimate import keep_indices
from services.anomaly.points.series import Selector, labels_of_key, series_key

DEFAULT_MAX_POINTS = 2000
MAX_MAX_POINTS = 20000
DEFAULT_RANGE = timedelta(hours=24)


def window(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """[since, until): until defaults to now, since to 24 hours before until (a range
    that is empty or backwards holds no point, as in the other lists)."""
    end = until or now
    start = since or end - DEFAULT_RANGE
    return start, end


async def points(
    conn: asyncpg.Connection,
    *,
    account: str,
    detector_id: str,
    selector: Selector,
    since: datetime,
    until: datetime,
    max_points: int,
) -> dict[str, Any]:
    await store.ensure_detector(conn, account=account, detector_id=detector_id)
    key = await series_key(conn, account=account, detector_id=detector_id, selector=selector)
    rows = (
        []
        if key is None or since >= until
        else await store.points(
            conn,
            account=account,
            detector_id=detector_id,
            series_key=key,
            since=since,
            until=until,
        )
    )
    values = np.fromiter((r["value"] for r in rows), dtype=np.float64, count=len(rows))
    anomalous = np.fromiter((r["is_anomaly"] for r in rows), dtype=bool, count=len(rows))
    kept = keep_indices(values, anomalous, max_points) if rows else np.arange(0)
    return {
        "detector_id": detector_id,
        "labels": labels_of_key(key, selector),
        "since": since,
        "until": until,
        "total": len(rows),
        "anomalies": int(anomalous.sum()),
        "decimated": int(kept.size) < len(rows),
        "max_points": max_points,
        "points": [_point(rows[i]) for i in kept.tolist()],
    }


def _point(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "timestamp": row["ts"],
        "value": row["value"],
        "score": row["score"],
        "expected": row["expected"],
        "lower": row["lower"],
        "upper": row["upper"],
        "is_anomaly": row["is_anomaly"],
        "severity": row["severity"] or ("warning" if row["is_anomaly"] else None),
        "status": row["status"],
        "explanation": row["explanation"],
        "late": row["late"],
    }
