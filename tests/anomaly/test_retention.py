"""Retention prunes old ordinary points in batches; anomalies and feedback stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from services.anomaly.retention import prune
from services.common import db
from services.common.settings import Settings
from tests.anomaly.conftest import create_detector, ingest, series
from tests.conftest import auth_headers


async def test_prune_keeps_anomalies_and_feedback(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for account in ("ra", "rb"):
        await create_detector(
            client, "old", account=account, algorithm="static", params={"upper": 10}
        )
        values = [1.0] * 100
        values[5] = values[50] = 99.0  # two anomalies
        found = (
            await ingest(client, series("old", values, start=start, step=3600), account=account)
        ).json()
        assert len(found["anomalies"]) == 2
    # a note on an ordinary point (as a Hasura user could leave) is feedback too
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(
            "UPDATE np_anomaly_data_points SET note = 'keep me' "
            "WHERE source_account_id = 'ra' AND ts = $1",
            start + timedelta(hours=7),
        )
    finally:
        await conn.close()

    pool = await db.create_pool(settings.database_url or "", role=db.WORKER_ROLE, min_size=0)
    try:
        # now = 30 days after hour 60: points before hour 60 are expired
        now = start + timedelta(hours=60, days=30)
        deleted = await prune(pool, now=now, retention_days=30, batch_size=7)
        # per account: 60 expired, minus the anomalies at hours 5 and 50 (and ra's noted point)
        assert deleted == (60 - 3) + (60 - 2)
        assert await prune(pool, now=now, retention_days=30, batch_size=7) == 0
    finally:
        await pool.close()

    for account, kept_old in (("ra", 3), ("rb", 2)):
        got = (await client.get("/api/v1/stats", headers=auth_headers(account))).json()
        assert got["account"]["points"] == 40 + kept_old
        assert got["account"]["anomalies"] == 2
        detector = (await client.get("/api/v1/detectors/old", headers=auth_headers(account))).json()
        assert detector["counts"]["points"] == 100  # counters are since creation
