"""Retention: prune old ordinary points, keep anomalies and anything with feedback.

Points with a timestamp older than ``ANOMALY_RETENTION_DAYS`` are deleted in
small batches (one short statement each, per series along the
``(source_account_id, detector_id, series_key, ts)`` key; the points of a series
deleted by a new ``group_by`` are kept with their detector), so pruning never holds long
locks or bloats one transaction. Anomalous points and points with feedback
(status, note, review) are kept. Runs as the worker role (across accounts).

Once the points table is range-partitioned by time, this becomes: copy the
kept rows of an expired partition forward, then drop it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from fastapi import FastAPI

from services.common.background import repeat, running, worker_pool
from services.common.settings import Settings

log = logging.getLogger("nsentry.anomaly.retention")

_DELETE_SQL = """
DELETE FROM np_anomaly_data_points
 WHERE id IN (
        SELECT id FROM np_anomaly_data_points
         WHERE source_account_id = $1 AND detector_id = $2 AND series_key = $5 AND ts < $3
           AND NOT is_anomaly AND status IS NULL AND note IS NULL AND reviewed_at IS NULL
         ORDER BY ts
         LIMIT $4
           FOR UPDATE SKIP LOCKED)
"""


async def prune(
    pool: asyncpg.Pool,
    *,
    now: datetime,
    retention_days: int,
    batch_size: int = 1000,
    pause: float = 0.0,
) -> int:
    """Delete expired ordinary points of every account; returns how many."""
    cutoff = now - timedelta(days=retention_days)
    every_series = await pool.fetch(
        "SELECT source_account_id, detector_id, series_key FROM np_anomaly_series "
        "ORDER BY source_account_id, detector_id, series_key"
    )
    deleted = 0
    for series in every_series:
        while True:
            status = await pool.execute(
                _DELETE_SQL,
                series["source_account_id"],
                series["detector_id"],
                cutoff,
                batch_size,
                series["series_key"],
            )
            count = int(status.split()[-1])
            deleted += count
            if count < batch_size:
                break
            if pause:
                await asyncio.sleep(pause)
    if deleted:
        log.info("retention: pruned %d points older than %s", deleted, cutoff.isoformat())
    return deleted


def retention_hook(
    *, interval: float = 3600.0, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Callable[[FastAPI], Any]:
    """A lifetime hook pruning every `interval` seconds (first pass a minute after start)."""

    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        settings: Settings = app.state.settings
        if not settings.database_url:
            yield
            return
        async with worker_pool(settings, max_size=1) as pool:

            async def one_pass() -> float:
                await prune(
                    pool, now=clock(), retention_days=settings.anomaly_retention_days, pause=0.05
                )
                return interval

            first = min(60.0, interval)
            loop = repeat(
                app, one_pass, name="retention", interval=interval, log=log, first_delay=first
            )
            async with running(loop):
                yield

    return hook
