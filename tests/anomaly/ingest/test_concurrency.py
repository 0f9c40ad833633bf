"""Concurrent ingests into one detector serialise on its row: same end state as one by one."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx

from services.common.settings import Settings
from tests.anomaly.conftest import create_detector, noise, series
from tests.conftest import auth_headers


async def _send(client: httpx.AsyncClient, points: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = points[0] if len(points) == 1 else {"points": points}
    response = await client.post("/api/v1/ingest", json=body, headers=auth_headers())
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def _stored(conn: asyncpg.Connection, detector_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, ts, value, score, expected, lower, upper, is_anomaly, severity, late "
        "FROM np_anomaly_data_points WHERE detector_id = $1 ORDER BY id",
        detector_id,
    )
    return [dict(r) for r in rows]


async def test_concurrent_ingest_equals_sequential(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await create_detector(client, "conc", algorithm="ewma", params={"warmup": 10})
    await create_detector(client, "seq", algorithm="ewma", params={"warmup": 10})
    values = noise(240, seed=21)
    values[150] = 190.0
    everything = series("conc", values)
    # 8 clients, interleaved timestamps, singles and small batches, some points sent twice
    requests: list[list[dict[str, Any]]] = []
    for k in range(8):
        mine = everything[k::8]
        requests += [mine[j : j + 1] for j in range(0, 10)]
        requests += [mine[j : j + 5] for j in range(10, len(mine), 5)]
    requests += [list(requests[7]), list(requests[12])]  # whole requests sent twice

    by_client = [requests[k::8] for k in range(8)]

    async def run(batch: list[list[dict[str, Any]]]) -> None:
        for points in batch:
            await _send(client, points)

    await asyncio.gather(*(run(b) for b in by_client))

    conn = await asyncpg.connect(settings.database_url)
    try:
        concurrent = await _stored(conn, "conc")
        assert len(concurrent) == 240
        # replay the requests one by one in the order they committed (ids follow commit order
        # per detector because the detector row lock serialises them)
        first_id = {row["ts"]: row["id"] for row in concurrent}
        from datetime import datetime

        def committed(points: list[dict[str, Any]]) -> int:
            return min(first_id[datetime.fromisoformat(p["timestamp"])] for p in points)

        replay_order = sorted(requests, key=committed)
        for points in replay_order:
            await _send(client, [{**p, "detector_id": "seq"} for p in points])
        sequential = await _stored(conn, "seq")
        strip = ("id",)
        assert [{k: v for k, v in r.items() if k not in strip} for r in concurrent] == [
            {k: v for k, v in r.items() if k not in strip} for r in sequential
        ]
        states = await conn.fetch(
            "SELECT detector_id AS id, state, n_seen, points_count, late_count, anomalies_count, "
            "last_ts FROM np_anomaly_series WHERE detector_id IN ('conc', 'seq') ORDER BY 1"
        )
        a, b = (dict(r) for r in states)
        a.pop("id"), b.pop("id")
        assert a == b
        assert a["points_count"] == 240 and a["late_count"] > 0
    finally:
        await conn.close()
