"""The no-data pass with replicas and many series (a database of this module's own, so
that the counts are exact): two replicas' passes at once record each silence once, and
a pass over 10,000 series of which a few are silent stays cheap."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import asyncpg
import httpx
import pytest

from services.anomaly.nodata.worker import NoDataCheck
from services.common import db
from services.common.settings import Settings
from tests.anomaly.conftest import T0, create_detector, ingest, stamp

MINUTE = timedelta(minutes=1)


async def worker(settings: Settings) -> asyncpg.Pool:
    return await db.create_pool(settings.database_url or "", role=db.WORKER_ROLE, min_size=0)


async def test_two_replicas_passes_at_once_record_each_silence_once(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Four passes (two per replica pool) over the same 300 silent series of 10 detectors
    at the same instant, in batches of 20 so that they interleave: one anomaly and one
    page per series. A detector's series are locked with it (as an ingest locks them),
    so passes share the work detector by detector."""
    account = "nd-race"
    for d in range(10):
        await create_detector(
            client,
            f"race-{d}",
            account=account,
            algorithm="mad",
            group_by=["instance"],
            escalation_policy_id="ops",
            no_data_seconds=60,
        )
    body = [
        {
            "detector_id": f"race-{d}",
            "value": 1.0,
            "timestamp": stamp(i),
            "labels": {"instance": f"i{k:03d}"},
        }
        for d in range(10)
        for k in range(30)
        for i in range(3)
    ]
    assert (await ingest(client, body, account=account)).status_code == 200
    pools = [await worker(settings) for _ in range(2)]
    try:
        for pool in pools:  # connections open before the race starts
            async with pool.acquire(), pool.acquire():
                pass
        now = T0 + 30 * MINUTE
        reports = await asyncio.gather(
            *(NoDataCheck(pool, batch=20).run_once(now) for pool in pools for _ in range(2))
        )
        print("\nsilences recorded per pass:", [r.started for r in reports])
        assert sum(r.started for r in reports) == 300
        assert sum(r.pages for r in reports) == 300
        assert sum(1 for r in reports if r.started) >= 2  # the passes did overlap
        counts = await pools[0].fetchrow(
            "SELECT count(*) AS anomalies, count(DISTINCT (detector_id, series_key)) AS series "
            "FROM np_anomaly_data_points WHERE source_account_id = $1 AND kind = 'no_data'",
            account,
        )
        assert (counts["anomalies"], counts["series"]) == (300, 300)
        pages = await pools[0].fetch(
            "SELECT count(*) FROM np_anomaly_page_outbox WHERE source_account_id = $1 "
            "GROUP BY dedup_key",
            account,
        )
        assert len(pages) == 300 and {r["count"] for r in pages} == {1}
        # and again, both replicas: nothing more for silences already recorded
        again = await asyncio.gather(*(NoDataCheck(p).run_once(now + MINUTE) for p in pools))
        assert [r.started for r in again] == [0, 0]
    finally:
        for pool in pools:
            await pool.close()


@pytest.mark.parametrize("series", [10_000])
async def test_a_pass_over_10k_series_finds_the_silent_few(
    client: httpx.AsyncClient, settings: Settings, series: int
) -> None:
    account = "nd-scale"
    await create_detector(
        client,
        "big",
        account=account,
        group_by=["instance"],
        max_series=series,
        no_data_seconds=300,
    )
    await create_detector(
        client, "unwatched", account=account, group_by=["instance"], max_series=series
    )
    pool = await worker(settings)
    try:
        # series rows as the ingest leaves them: the last point a minute before `now` for
        # all but every 1000th, silent for an hour; as many again under a detector
        # without no_data_seconds (never read by the pass)
        now = T0 + timedelta(days=1)
        for detector_id in ("big", "unwatched"):
            await pool.execute(
                "INSERT INTO np_anomaly_series (source_account_id, detector_id, series_key, "
                "labels, last_ts, last_value, policy_state) "
                "SELECT $1, $2, k, k::jsonb, $3::timestamptz - CASE WHEN i % 1000 = 0 "
                "THEN interval '1 hour' ELSE interval '1 minute' END, 1.0, "
                "'{\"interval\": 60}'::jsonb "
                "FROM generate_series(1, $4) AS i, "
                "LATERAL (SELECT json_build_object('instance', 'i' || i)::text AS k) AS key",
                account,
                detector_id,
                now,
                series,
            )
        await pool.execute("ANALYZE np_anomaly_series; ANALYZE np_anomaly_detectors")
        check = NoDataCheck(pool)
        started = time.perf_counter()
        report = await check.run_once(now)
        first = time.perf_counter() - started
        started = time.perf_counter()
        quiet = await check.run_once(now + MINUTE)
        second = time.perf_counter() - started
        print(
            f"\n10k series: first pass {first * 1000:.0f} ms (10 silences), "
            f"next pass {second * 1000:.0f} ms (none)"
        )
        assert (report.started, quiet.started) == (series // 1000, 0)
        recorded = await pool.fetch(
            "SELECT detector_id, series_key FROM np_anomaly_data_points "
            "WHERE source_account_id = $1 AND kind = 'no_data' ORDER BY series_key",
            account,
        )
        assert {r["detector_id"] for r in recorded} == {"big"}
        assert len(recorded) == series // 1000
        assert second < 2.0  # generous: a loaded machine; measured tens of ms
    finally:
        await pool.close()
