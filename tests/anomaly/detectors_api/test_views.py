"""Detector CRUD, validation naming the field, pagination."""

from __future__ import annotations

from datetime import timedelta

import httpx

from tests.anomaly.conftest import T0, create_detector, ingest, noise, series
from tests.conftest import auth_headers


async def test_create_validates_params_and_thresholds(client: httpx.AsyncClient) -> None:
    h = auth_headers()
    cases = [
        ({"name": "x", "algorithm": "ewma", "params": {"alpha": 2}}, "params.alpha"),
        ({"name": "x", "algorithm": "ewma", "params": {"nope": 1}}, "params.nope"),
        ({"name": "x", "algorithm": "no-such-thing"}, "algorithm"),
        ({"name": "x", "thresholds": {"score": 1.5}}, "thresholds.score"),
        ({"name": "x", "thresholds": {"direction": "sideways"}}, "thresholds.direction"),
        ({"name": "x", "thresholds": {"score": 0.9, "critical": 0.5}}, "thresholds.critical"),
        ({"name": "x", "thresholds": {"upper": 1, "lower": 2}}, "thresholds.lower"),
        ({"name": "x", "id": "Not A Slug"}, "id"),
        ({"name": ""}, "name"),
    ]
    for body, field in cases:
        response = await client.post("/api/v1/detectors", json=body, headers=h)
        assert response.status_code == 422, (body, response.text)
        assert field in response.json()["error"]["message"], (body, response.text)

    created = await create_detector(
        client,
        "cpu",
        algorithm="ewma",
        params={"alpha": 0.1},
        thresholds={"direction": "up"},
        metric_source={"type": "rum", "metric": "LCP"},
    )
    assert created["params"]["alpha"] == 0.1 and created["params"]["warmup"] == 30
    assert created["thresholds"]["direction"] == "up" and created["thresholds"]["score"] == 0.99
    assert created["metric_source"] == {"type": "rum", "metric": "LCP"}
    assert created["warmup"] == 30 and created["status"] == "learning"
    again = await client.post("/api/v1/detectors", json={"id": "cpu", "name": "y"}, headers=h)
    assert again.status_code == 409

    generated = await client.post("/api/v1/detectors", json={"name": "Disk Usage %"}, headers=h)
    assert generated.status_code == 201
    assert generated.json()["id"].startswith("disk-usage-")


async def test_patch_list_delete(client: httpx.AsyncClient) -> None:
    h = auth_headers()
    for i in range(5):
        await create_detector(client, f"page-{i}", algorithm="ewma")
    await ingest(client, series("page-0", noise(40)))
    got = (await client.get("/api/v1/detectors/page-0", headers=h)).json()
    assert got["status"] == "active" and got["n_seen"] == 40

    # thresholds keep what was learned; params restart learning
    patched = await client.patch(
        "/api/v1/detectors/page-0", json={"thresholds": {"score": 0.995}, "name": "P0"}, headers=h
    )
    assert patched.status_code == 200
    assert patched.json()["n_seen"] == 40 and patched.json()["name"] == "P0"
    assert patched.json()["thresholds"]["score"] == 0.995
    patched = await client.patch(
        "/api/v1/detectors/page-0", json={"params": {"alpha": 0.2}}, headers=h
    )
    assert patched.json()["status"] == "learning" and patched.json()["n_seen"] == 0
    bad = await client.patch("/api/v1/detectors/page-0", json={"params": {"alpha": -1}}, headers=h)
    assert bad.status_code == 422 and "params.alpha" in bad.json()["error"]["message"]
    bad = await client.patch("/api/v1/detectors/page-0", json={"bogus": 1}, headers=h)
    assert bad.status_code == 422
    policy = await client.patch(
        "/api/v1/detectors/page-0", json={"escalation_policy_id": "ops"}, headers=h
    )
    assert policy.json()["escalation_policy_id"] == "ops"
    off = await client.patch("/api/v1/detectors/page-0", json={"enabled": False}, headers=h)
    assert off.json()["status"] == "disabled"
    # the next points are older than the latest learned: late, not learned
    await client.patch("/api/v1/detectors/page-0", json={"enabled": True}, headers=h)
    between = series("page-0", noise(3), first=10, start=T0 + timedelta(seconds=30))
    assert (await ingest(client, between)).json()["late"] == 3

    seen: list[str] = []
    cursor = None
    while True:
        url = "/api/v1/detectors?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url, headers=h)).json()
        seen += [d["id"] for d in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [s for s in seen if s.startswith("page-")] == [f"page-{i}" for i in range(5)]
    assert len(seen) == len(set(seen))
    assert (await client.get("/api/v1/detectors?cursor=%%%", headers=h)).status_code == 400
    assert (await client.get("/api/v1/detectors?limit=1001", headers=h)).status_code == 422

    assert (await client.delete("/api/v1/detectors/page-0", headers=h)).status_code == 204
    assert (await client.get("/api/v1/detectors/page-0", headers=h)).status_code == 404
    assert (await client.delete("/api/v1/detectors/page-0", headers=h)).status_code == 404
    listed = (await client.get("/api/v1/anomalies?detector_id=page-0", headers=h)).json()
    assert listed["data"] == []
