"""Ingest over HTTP: scoring at ingest, validation as a whole, duplicates, late points."""

from __future__ import annotations

import asyncpg
import httpx

from services.common.settings import Settings
from tests.anomaly.conftest import create_detector, ingest, noise, series, stamp
from tests.conftest import auth_headers


async def _count_points(settings: Settings, detector_id: str) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM np_anomaly_data_points WHERE detector_id = $1", detector_id
            )
        )
    finally:
        await conn.close()


async def test_spike_is_found_listed_and_explained(client: httpx.AsyncClient) -> None:
    detector = await create_detector(client, "latency")  # the default algorithm
    assert detector["algorithm"] == "auto"
    assert detector["status"] == "learning"

    ordinary = series("latency", noise(1000))
    response = await ingest(client, ordinary)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 1000 and body["duplicates"] == 0 and body["late"] == 0
    before = {a["id"] for a in body["anomalies"]}

    spike = {"detector_id": "latency", "value": 160.0, "timestamp": stamp(1000)}
    response = await client.post("/api/v1/ingest", json=spike, headers=auth_headers())
    assert response.status_code == 200, response.text
    found = response.json()["anomalies"]
    assert len(found) == 1
    anomaly = found[0]
    assert anomaly["timestamp"] == stamp(1000) and anomaly["value"] == 160.0
    assert anomaly["score"] >= 0.99 and anomaly["severity"] in {"warning", "critical"}
    assert anomaly["upper"] < 160.0 and anomaly["lower"] < anomaly["expected"] < anomaly["upper"]
    assert anomaly["explanation"]

    listed = (await client.get("/api/v1/anomalies", headers=auth_headers())).json()
    assert listed["data"][0]["id"] == anomaly["id"]  # newest first
    assert {a["id"] for a in listed["data"]} == before | {anomaly["id"]}

    detail = await client.get(
        f"/api/v1/anomalies/{anomaly['id']}?neighbours=5", headers=auth_headers()
    )
    assert detail.status_code == 200
    d = detail.json()
    assert d["expected"] == anomaly["expected"]
    assert d["lower"] == anomaly["lower"] and d["upper"] == anomaly["upper"]
    assert d["explanation"] == anomaly["explanation"]
    assert d["algorithm"] == "auto" and d["params"] == detector["params"]
    assert d["thresholds"] == detector["thresholds"]
    stamps = [n["timestamp"] for n in d["neighbours"]]
    assert stamps == [stamp(i) for i in range(995, 1001)]  # 5 before, itself, none after

    got = (await client.get("/api/v1/detectors/latency", headers=auth_headers())).json()
    # auto learns its first day, in time: 1,001 minutes are not a day, however many points
    assert got["status"] == "learning" and got["n_seen"] > got["warmup"]
    assert got["counts"]["points"] == 1001
    assert got["last_point"] == {
        "timestamp": stamp(1000),
        "value": 160.0,
        "score": anomaly["score"],
    }
    assert "state" not in got


async def test_one_bad_point_rejects_the_batch(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await create_detector(client, "strict", algorithm="ewma")
    points = series("strict", noise(50))
    bad = [dict(p) for p in points]
    bad[17] = {**bad[17], "value": "high"}
    response = await ingest(client, bad)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error" and "points.17.value" in error["message"]
    assert await _count_points(settings, "strict") == 0

    naive = [dict(p) for p in points]
    naive[3] = {**naive[3], "timestamp": "2026-11-01T00:03:00"}
    response = await ingest(client, naive)
    assert (
        response.status_code == 422 and "points.3.timestamp" in response.json()["error"]["message"]
    )
    single = {"detector_id": "strict", "value": 1.0, "timestamp": "2026-11-01T00:03:00"}
    response = await client.post("/api/v1/ingest", json=single, headers=auth_headers())
    assert response.status_code == 422 and "timestamp" in response.json()["error"]["message"]

    unknown = [dict(p) for p in points]
    unknown[40] = {**unknown[40], "detector_id": "nope"}
    response = await ingest(client, unknown)
    assert (
        response.status_code == 422
        and "points.40.detector_id" in response.json()["error"]["message"]
    )
    single = {"detector_id": "nope", "value": 1.0, "timestamp": stamp(0)}
    response = await client.post("/api/v1/ingest", json=single, headers=auth_headers())
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"

    too_many = series("strict", [1.0] * 10_001)
    response = await ingest(client, too_many)
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    assert await _count_points(settings, "strict") == 0

    assert (await ingest(client, points)).status_code == 200
    assert await _count_points(settings, "strict") == 50


async def test_the_same_batch_twice_is_all_duplicates(client: httpx.AsyncClient) -> None:
    await create_detector(client, "twice", algorithm="mad")
    points = series("twice", noise(300, seed=3))
    points[250]["value"] = 180.0
    first = (await ingest(client, points)).json()
    assert first["accepted"] == 300 and first["duplicates"] == 0
    assert any(a["timestamp"] == stamp(250) for a in first["anomalies"])
    detector = (await client.get("/api/v1/detectors/twice", headers=auth_headers())).json()

    second = (await ingest(client, points)).json()
    assert second == {
        "accepted": 0,
        "duplicates": 300,
        "late": 0,
        "anomalies": [],
        "refused": 0,
        "errors": [],
    }
    again = (await client.get("/api/v1/detectors/twice", headers=auth_headers())).json()
    assert again["n_seen"] == detector["n_seen"]
    assert again["counts"] == {**detector["counts"], "duplicates": 300}
    assert again["last_point"] == detector["last_point"]

    # repeated inside one batch: the first is kept
    repeated = series("twice", [1.0, 2.0], first=400)
    repeated.append({**repeated[0], "value": 99.0})
    third = (await ingest(client, repeated)).json()
    assert third["accepted"] == 2 and third["duplicates"] == 1


async def test_late_points_are_stored_scored_and_not_learned(client: httpx.AsyncClient) -> None:
    await create_detector(client, "laggy", algorithm="ewma")
    values = noise(200, seed=5)
    points = series("laggy", values)
    on_time = [p for i, p in enumerate(points) if i % 10 != 5]
    late = [p for i, p in enumerate(points) if i % 10 == 5]
    assert (await ingest(client, on_time)).json()["late"] == 0
    before = (await client.get("/api/v1/detectors/laggy", headers=auth_headers())).json()
    late[-1] = {**late[-1], "value": 500.0}  # a late spike is still flagged
    result = (await ingest(client, late)).json()
    assert result["accepted"] == 20 and result["late"] == 20
    assert late[-1]["timestamp"] in [a["timestamp"] for a in result["anomalies"]]
    assert all(a["late"] for a in result["anomalies"])
    after = (await client.get("/api/v1/detectors/laggy", headers=auth_headers())).json()
    assert after["n_seen"] == before["n_seen"]
    assert after["last_point"] == before["last_point"]
    assert after["counts"]["late"] == 20 and after["counts"]["points"] == 200


async def test_disabled_detector_refuses_points(client: httpx.AsyncClient) -> None:
    await create_detector(client, "off", algorithm="ewma", enabled=False)
    response = await ingest(client, series("off", [1.0, 2.0]))
    assert response.status_code == 409
    response = await client.patch(
        "/api/v1/detectors/off", json={"enabled": True}, headers=auth_headers()
    )
    assert response.json()["status"] == "learning"
    assert (await ingest(client, series("off", [1.0, 2.0]))).json()["accepted"] == 2


async def test_errors_use_the_envelope_and_need_auth(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/ingest", json={"points": []})
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    response = await client.post(
        "/api/v1/ingest",
        content=b"{not json",
        headers={**auth_headers(), "content-type": "application/json"},
    )
    assert response.status_code == 400
    response = await client.post("/api/v1/ingest", json=[1, 2], headers=auth_headers())
    assert response.status_code == 422
    response = await client.post("/api/v1/ingest", json={"points": []}, headers=auth_headers())
    assert response.json() == {
        "accepted": 0,
        "duplicates": 0,
        "late": 0,
        "anomalies": [],
        "refused": 0,
        "errors": [],
    }


async def test_offsets_are_accepted_and_answered_in_utc(client: httpx.AsyncClient) -> None:
    await create_detector(client, "tz", algorithm="static", params={"upper": 10})
    point = {"detector_id": "tz", "value": 50.0, "timestamp": "2026-11-01T10:00:00+01:00"}
    found = (await client.post("/api/v1/ingest", json=point, headers=auth_headers())).json()
    assert found["anomalies"][0]["timestamp"] == "2026-11-01T09:00:00Z"
    listed = (await client.get("/api/v1/anomalies?detector_id=tz", headers=auth_headers())).json()
    assert listed["data"][0]["timestamp"] == "2026-11-01T09:00:00Z"
    again = {**point, "timestamp": "2026-11-01T09:00:00Z"}  # the same instant: a duplicate
    assert (await client.post("/api/v1/ingest", json=again, headers=auth_headers())).json()[
        "duplicates"
    ] == 1
