"""Anomalies: filters and keyset pages."""

from __future__ import annotations

import httpx

from tests.anomaly.conftest import create_detector, ingest, noise, series, stamp
from tests.conftest import auth_headers


async def test_anomaly_filters_and_pages(client: httpx.AsyncClient) -> None:
    h = auth_headers()
    await create_detector(client, "flt", algorithm="ewma", thresholds={"critical": 0.99999})
    values = noise(400, seed=2)
    for i in (100, 200, 300, 350):
        values[i] = 200.0
    values[250] = 103.0  # a mild one (warning) when the band is tight
    found = (await ingest(client, series("flt", values))).json()["anomalies"]
    ids = [a["id"] for a in sorted(found, key=lambda a: a["timestamp"], reverse=True)]
    assert len(ids) >= 4

    collected: list[int] = []
    cursor = None
    while True:
        url = "/api/v1/anomalies?detector_id=flt&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url, headers=h)).json()
        collected += [a["id"] for a in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert collected == ids

    window = await client.get(
        f"/api/v1/anomalies?detector_id=flt&since={stamp(150)}&until={stamp(301)}", headers=h
    )
    stamps = [a["timestamp"] for a in window.json()["data"]]
    assert stamp(300) in stamps and stamp(200) in stamps and stamp(100) not in stamps
    critical = (
        await client.get("/api/v1/anomalies?detector_id=flt&severity=critical", headers=h)
    ).json()
    assert {a["severity"] for a in critical["data"]} == {"critical"}
    naive = await client.get("/api/v1/anomalies?since=2026-11-01T00:00:00", headers=h)
    assert naive.status_code == 422
    assert (await client.get("/api/v1/anomalies/999999", headers=h)).status_code == 404
