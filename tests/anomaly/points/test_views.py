"""GET /api/v1/detectors/{id}/points over a real embedded Postgres."""

from __future__ import annotations

import httpx

from tests.anomaly.conftest import T0, create_detector, ingest, noise, series, stamp
from tests.conftest import auth_headers


async def test_points_band_anomaly_and_decimation(client: httpx.AsyncClient) -> None:
    await create_detector(client, "pts", algorithm="mad", params={"window": 60})
    values = noise(3000)
    values[2500] = 10_000.0
    response = await ingest(client, series("pts", values))
    assert response.status_code == 200, response.text
    anomaly_ids = {a["id"] for a in response.json()["anomalies"]}
    assert anomaly_ids
    whole = await client.get(
        "/api/v1/detectors/pts/points",
        params={"since": stamp(0), "until": stamp(3000), "max_points": 20000},
        headers=auth_headers(),
    )
    assert whole.status_code == 200, whole.text
    body = whole.json()
    assert body["total"] == 3000 and not body["decimated"] and len(body["points"]) == 3000
    spike = body["points"][2500]
    assert spike["is_anomaly"] and spike["value"] == 10_000.0 and spike["explanation"]
    assert spike["upper"] is not None and spike["status"] == "open"
    small = await client.get(
        "/api/v1/detectors/pts/points",
        params={"since": stamp(0), "until": stamp(3000), "max_points": 100},
        headers=auth_headers(),
    )
    got = small.json()
    assert got["decimated"] and len(got["points"]) <= 100
    assert anomaly_ids <= {p["id"] for p in got["points"] if p["is_anomaly"]}
    stamps = [p["timestamp"] for p in got["points"]]
    assert stamps == sorted(stamps)
    # default window: the 24 hours before the app's clock (T0): nothing before T0
    default = await client.get("/api/v1/detectors/pts/points", headers=auth_headers())
    assert default.status_code == 200 and default.json()["total"] == 0
    assert default.json()["until"].startswith(T0.strftime("%Y-%m-%d"))


async def test_labels_errors_and_tenancy(client: httpx.AsyncClient) -> None:
    await create_detector(client, "pts-b", algorithm="mad")
    await ingest(client, series("pts-b", noise(20)))
    params = {"since": stamp(0), "until": stamp(20)}
    other = await client.get(
        "/api/v1/detectors/pts-b/points", params=params, headers=auth_headers("someone-else")
    )
    assert other.status_code == 404
    selected = await client.get(
        "/api/v1/detectors/pts-b/points",
        params={**params, "labels": "host=db1"},
        headers=auth_headers(),
    )
    assert selected.status_code == 200
    assert selected.json()["labels"] == {"host": "db1"} and selected.json()["points"] == []
    contradictory = await client.get(
        "/api/v1/detectors/pts-b/points",
        params={**params, "labels": "a=1,a=2"},
        headers=auth_headers(),
    )
    assert contradictory.status_code == 200 and contradictory.json()["points"] == []
    for bad in ({"labels": "=x"}, {"labels": "a b=1"}, {"max_points": 1}):
        answer = await client.get(
            "/api/v1/detectors/pts-b/points", params={**params, **bad}, headers=auth_headers()
        )
        assert answer.status_code == 422, (bad, answer.text)
    backwards = await client.get(
        "/api/v1/detectors/pts-b/points",
        params={"since": stamp(5), "until": stamp(1)},
        headers=auth_headers(),
    )
    assert backwards.status_code == 200 and backwards.json()["points"] == []
    assert (await client.get("/api/v1/detectors/pts-b/points")).status_code == 401


async def test_each_series_is_drawn_on_its_own(client: httpx.AsyncClient) -> None:
    await create_detector(client, "pts-multi", algorithm="mad")
    points = [
        {**p, "labels": {"host": host}}
        for host, level in (("a", 10.0), ("b", 500.0))
        for p in series("pts-multi", noise(30, level=level))
    ]
    assert (await ingest(client, points)).status_code == 200
    params = {"since": stamp(0), "until": stamp(30)}
    for host, level in (("a", 10.0), ("b", 500.0)):
        answer = await client.get(
            "/api/v1/detectors/pts-multi/points",
            params={**params, "labels": f"host={host}"},
            headers=auth_headers(),
        )
        body = answer.json()
        assert body["labels"] == {"host": host} and body["total"] == 30
        assert all(abs(p["value"] - level) < 50 for p in body["points"])
    first = await client.get(
        "/api/v1/detectors/pts-multi/points", params=params, headers=auth_headers()
    )
    assert first.json()["labels"] == {"host": "a"} and first.json()["total"] == 30
    plain = await client.get(
        "/api/v1/detectors/pts-multi/points",
        params={**params, "labels": ""},
        headers=auth_headers(),
    )
    assert plain.json()["labels"] == {} and plain.json()["total"] == 0
