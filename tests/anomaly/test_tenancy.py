"""Account B never reaches account A's detectors: REST, the action, the event trigger."""

from __future__ import annotations

from datetime import timedelta

import httpx

from services.common.settings import Settings
from tests.anomaly.conftest import (
    T0,
    action_payload,
    create_detector,
    event_payload,
    ingest,
    insert_unscored,
    noise,
    series,
    stamp,
)
from tests.conftest import auth_headers

A, B = "acct-a", "acct-b"


async def test_b_cannot_touch_a(client: httpx.AsyncClient, settings: Settings) -> None:
    a, b = auth_headers(A), auth_headers(B)
    await create_detector(client, "secret", account=A, algorithm="ewma")
    values = noise(100)
    values[80] = 300.0
    found = (await ingest(client, series("secret", values), account=A)).json()["anomalies"]
    anomaly_id = found[0]["id"]
    detector_before = (await client.get("/api/v1/detectors/secret", headers=a)).json()

    # list, read, change, delete, backtest, ingest: all 404 (422 naming the index in a batch)
    assert (await client.get("/api/v1/detectors", headers=b)).json()["data"] == []
    assert (await client.get("/api/v1/detectors/secret", headers=b)).status_code == 404
    patch = await client.patch("/api/v1/detectors/secret", json={"name": "x"}, headers=b)
    assert patch.status_code == 404
    assert (await client.delete("/api/v1/detectors/secret", headers=b)).status_code == 404
    backtest = await client.post("/api/v1/detectors/secret/backtest", json={}, headers=b)
    assert backtest.status_code == 404
    one = {"detector_id": "secret", "value": 1.0, "timestamp": stamp(500)}
    assert (await client.post("/api/v1/ingest", json=one, headers=b)).status_code == 404
    batch = await ingest(client, [one], account=B)
    assert batch.status_code == 422 and "points.0.detector_id" in batch.text
    assert (await client.get("/api/v1/anomalies", headers=b)).json()["data"] == []
    assert (await client.get(f"/api/v1/anomalies/{anomaly_id}", headers=b)).status_code == 404
    feedback = await client.patch(
        f"/api/v1/anomalies/{anomaly_id}", json={"status": "false_positive"}, headers=b
    )
    assert feedback.status_code == 404
    stats = (await client.get("/api/v1/stats", headers=b)).json()
    assert stats["detectors"] == [] and stats["account"]["points"] == 0
    assert (await client.get("/api/v1/stats?detector_id=secret", headers=b)).status_code == 404

    # the action: the account is the session's
    response = await client.post(
        "/hasura/actions/scoreAnomalyPoints",
        json=action_payload([one], account=B),
        headers=auth_headers(None),
    )
    assert response.status_code == 404
    assert response.json()["extensions"]["code"] == "not_found"
    assert "points.0.detector_id" in response.json()["message"]

    # the event trigger: the account is the row's. A row claiming account B for A's detector
    # id finds nothing; A's own unscored point stays unscored until A's event arrives.
    rows = await insert_unscored(
        settings.database_url or "", A, "secret", [(T0 + timedelta(minutes=200), 1.0)]
    )
    forged = {**rows[0], "source_account_id": B}
    response = await client.post(
        "/hasura/events/score", json=event_payload(forged), headers=auth_headers(None)
    )
    assert response.status_code == 404
    response = await client.post(
        "/hasura/events/score", json=event_payload(rows[0]), headers=auth_headers(None)
    )
    assert response.status_code == 200 and response.json()["scored"] == 1

    # the same detector id in account B is B's own
    await create_detector(client, "secret", account=B, algorithm="ewma")
    mine = await ingest(client, series("secret", noise(10)), account=B)
    assert mine.status_code == 200 and mine.json()["accepted"] == 10
    assert (await client.get("/api/v1/detectors/secret", headers=b)).json()["counts"][
        "points"
    ] == 10

    after = (await client.get("/api/v1/detectors/secret", headers=a)).json()
    assert after["counts"]["points"] == detector_before["counts"]["points"] + 1
    assert after["name"] == detector_before["name"]
    detail = (await client.get(f"/api/v1/anomalies/{anomaly_id}", headers=a)).json()
    assert detail["status"] == "open"


async def test_rls_is_a_second_wall(client: httpx.AsyncClient, settings: Settings) -> None:
    """Even a query without the account filter sees only the transaction's account."""
    from services.common.db import create_pool, tenant_transaction

    await create_detector(client, "wall", account=A, algorithm="ewma")
    pool = await create_pool(settings.database_url or "", min_size=0, max_size=1)
    try:
        async with tenant_transaction(pool, B) as conn:
            for query in (
                "SELECT DISTINCT source_account_id FROM np_anomaly_detectors",
                "SELECT DISTINCT source_account_id FROM np_anomaly_data_points",
            ):
                assert {r[0] for r in await conn.fetch(query)} <= {B}
            updated = await conn.execute(
                "UPDATE np_anomaly_detectors SET name = 'x' WHERE id = 'wall'"
            )
            assert updated == "UPDATE 0"
            deleted = await conn.execute("DELETE FROM np_anomaly_data_points")
            assert deleted == "DELETE 10"  # B's own points only
        async with tenant_transaction(pool, A) as conn:
            assert (
                await conn.fetchval("SELECT name FROM np_anomaly_detectors WHERE id = 'wall'")
                == "wall"
            )
            assert await conn.fetchval("SELECT count(*) FROM np_anomaly_data_points") == 101
    finally:
        await pool.close()
