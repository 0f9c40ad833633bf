"""A remote-write burst: 100,000 samples over 1,000 series into 10 detectors of the
default algorithm (auto), in requests of Prometheus' size and shape (2,000 samples,
one TimeSeries per sample); every sample stored and scored."""

from __future__ import annotations

import time
from datetime import timedelta

import asyncpg
import httpx

from tests.anomaly.conftest import T0, create_detector
from tests.anomaly.remote_write.support import HEADERS, body, scored
from tests.conftest import auth_headers

ACCOUNT = "rw-burst"
DETECTORS = 10
SERIES_PER_DETECTOR = 100
SAMPLES = 100  # per series
PER_REQUEST = 100  # series per request, 20 samples each: 2,000 samples, Prometheus' maximum


async def test_a_burst_of_100k_samples_is_all_stored_and_scored(
    client: httpx.AsyncClient, database_url: str
) -> None:
    for d in range(DETECTORS):
        created = await create_detector(
            client,
            f"burst-{d}",
            account=ACCOUNT,
            metric_source={"type": "remote_write", "match": f'burst_metric{{shard="{d}"}}'},
            group_by=["instance"],
        )
        assert created["algorithm"] == "auto"  # the product's default
    labels = [
        {"__name__": "burst_metric", "shard": str(d), "instance": f"i{s}"}
        for d in range(DETECTORS)
        for s in range(SERIES_PER_DETECTOR)
    ]
    bodies = []
    chunk = 20  # samples per series per request (Prometheus sends batches in time order)
    for start in range(0, SAMPLES, chunk):
        times = [T0 + timedelta(seconds=15 * i) for i in range(start, start + chunk)]
        for first in range(0, len(labels), PER_REQUEST):
            # as Prometheus sends them: one TimeSeries per sample, with all its labels
            series = [
                (lb, [(t, 100.0 + (i + k) % 7)])
                for k, t in enumerate(times)
                for i, lb in enumerate(labels[first : first + PER_REQUEST])
            ]
            bodies.append(body(series))
    headers = {**auth_headers(ACCOUNT), **HEADERS}
    started = time.perf_counter()
    for content in bodies:
        response = await client.post("/api/v1/write", content=content, headers=headers)
        assert response.status_code == 204, response.text
    await scored(client)
    seconds = time.perf_counter() - started
    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetchrow(
            "SELECT count(*) AS n, count(score) AS scored, count(DISTINCT series_key) AS series, "
            "count(DISTINCT detector_id) AS detectors "
            "FROM np_anomaly_data_points WHERE source_account_id = $1",
            ACCOUNT,
        )
        models = await conn.fetchval(
            "SELECT count(*) FROM np_anomaly_series WHERE source_account_id = $1 "
            "AND points_count = $2",
            ACCOUNT,
            SAMPLES,
        )
    finally:
        await conn.close()
    total = DETECTORS * SERIES_PER_DETECTOR * SAMPLES
    assert dict(stored) == {"n": total, "scored": total, "series": 100, "detectors": 10}
    assert models == DETECTORS * SERIES_PER_DETECTOR  # a model per (detector, instance)
    print(f"\n{total} samples in {len(bodies)} requests: {total / seconds:,.0f} samples/s")
