"""Backtests: proposed settings over a series or the stored history; nothing stored."""

from __future__ import annotations

import httpx

from tests.anomaly.conftest import create_detector, ingest, noise, series, stamp
from tests.conftest import auth_headers


async def test_backtest_scores_without_storing(client: httpx.AsyncClient) -> None:
    h = auth_headers()
    await create_detector(client, "bt", algorithm="ewma")
    values = noise(300, seed=11)
    values[200] = 150.0
    await ingest(client, series("bt", values))
    before = (await client.get("/api/v1/detectors/bt", headers=h)).json()

    stored = await client.post("/api/v1/detectors/bt/backtest", json={}, headers=h)
    assert stored.status_code == 200, stored.text
    result = stored.json()
    assert result["count"] == 300 and len(result["points"]) == 300
    assert stamp(200) in [a["timestamp"] for a in result["anomalies"]]
    assert result["points"][0]["expected"] is None  # learning: no opinion yet

    stricter = await client.post(
        "/api/v1/detectors/bt/backtest",
        json={"thresholds": {"score": 0.999999, "critical": 1.0}, "include_points": False},
        headers=h,
    )
    assert stricter.status_code == 200, stricter.text
    assert stricter.json()["points"] is None
    assert stricter.json()["anomaly_count"] <= result["anomaly_count"]

    given = [{"timestamp": stamp(i), "value": float(v)} for i, v in enumerate(values[:100])]
    given.reverse()  # any order: scored in time order
    proposed = await client.post(
        "/api/v1/detectors/bt/backtest",
        json={"algorithm": "mad", "params": {}, "points": given},
        headers=h,
    )
    assert proposed.status_code == 200 and proposed.json()["algorithm"] == "mad"
    assert [p["timestamp"] for p in proposed.json()["points"]] == [stamp(i) for i in range(100)]
    bad = await client.post(
        "/api/v1/detectors/bt/backtest", json={"params": {"alpha": 5}}, headers=h
    )
    assert bad.status_code == 422 and "params.alpha" in bad.json()["error"]["message"]
    dup = await client.post(
        "/api/v1/detectors/bt/backtest", json={"points": [given[0], given[0]]}, headers=h
    )
    assert dup.status_code == 422 and "points.1.timestamp" in dup.json()["error"]["message"]

    after = (await client.get("/api/v1/detectors/bt", headers=h)).json()
    assert after == before
