"""Hasura's documented action and event payloads against the handlers."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import asyncpg
import httpx

from services.anomaly.hasura.models import ScoreAnomalyPointsOutput
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
from tests.media import JSON, NOT_JSON, check_415, chunked

HASURA = auth_headers(None)  # the secret only: Hasura's configured header


async def _scored(settings: Settings, detector_id: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch(
            "SELECT ts, value, score, expected, lower, upper, is_anomaly, late "
            "FROM np_anomaly_data_points WHERE detector_id = $1 ORDER BY ts",
            detector_id,
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]


async def _deliver(client: httpx.AsyncClient, row: dict[str, Any], event_id: str) -> dict[str, Any]:
    response = await client.post(
        "/hasura/events/score", json=event_payload(row, event_id=event_id), headers=HASURA
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_events_twice_and_out_of_order_score_each_point_once_in_order(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    dsn = settings.database_url or ""
    await create_detector(client, "ev", algorithm="ewma")
    await create_detector(client, "ref", algorithm="ewma")
    values = noise(200, seed=9)
    values[120] = 150.0
    at = [T0 + timedelta(minutes=i) for i in range(200)]

    # Hasura inserts two batches, the newer one first; events arrive out of order, twice
    newer = await insert_unscored(
        dsn, "primary", "ev", [(at[i], values[i]) for i in range(60, 100)]
    )
    older = await insert_unscored(dsn, "primary", "ev", [(at[i], values[i]) for i in range(60)])
    results = [
        await _deliver(client, newer[-1], "e-2"),
        await _deliver(client, older[0], "e-1"),
        await _deliver(client, newer[-1], "e-2"),
        await _deliver(client, older[5], "e-1"),
    ]
    assert [r["scored"] for r in results] == [100, 0, 0, 0]
    assert (await ingest(client, series("ref", values[:100]))).status_code == 200

    # then more, including points older than the latest (late) and a spike
    later = await insert_unscored(
        dsn, "primary", "ev", [(at[i], values[i]) for i in range(100, 200)]
    )
    between = T0 + timedelta(minutes=50, seconds=30)
    late = await insert_unscored(dsn, "primary", "ev", [(between, 100.0)])
    results = [
        await _deliver(client, late[0], "e-4"),
        await _deliver(client, later[3], "e-3"),
        await _deliver(client, late[0], "e-4"),
    ]
    assert [r["scored"] for r in results] == [101, 0, 0]
    assert results[0]["late"] == 1 and results[0]["anomalies"] >= 1
    reference = await ingest(
        client,
        series("ref", values[100:], first=100)
        + [{"detector_id": "ref", "value": 100.0, "timestamp": between.isoformat()}],
    )
    assert reference.json()["late"] == 1

    ev, ref = await _scored(settings, "ev"), await _scored(settings, "ref")
    assert len(ev) == len(ref) == 201
    assert all(p["score"] is not None for p in ev)
    for mine, theirs in zip(ev, ref, strict=True):
        assert mine == theirs
    got = (await client.get("/api/v1/detectors/ev", headers=auth_headers())).json()
    want = (await client.get("/api/v1/detectors/ref", headers=auth_headers())).json()
    assert got["n_seen"] == want["n_seen"] == 200
    assert got["last_point"] == want["last_point"]
    assert got["counts"] == want["counts"]
    spikes = (await client.get("/api/v1/anomalies?detector_id=ev", headers=auth_headers())).json()
    assert stamp(120) in [a["timestamp"] for a in spikes["data"]]


async def test_event_edge_cases(client: httpx.AsyncClient, settings: Settings) -> None:
    dsn = settings.database_url or ""
    await create_detector(client, "ev-off", algorithm="ewma", enabled=False)
    rows = await insert_unscored(dsn, "primary", "ev-off", [(T0, 1.0)])
    payload = event_payload(rows[0])
    wrong = {"Authorization": "Bearer not-the-secret"}
    assert (
        await client.post("/hasura/events/score", json=payload, headers=wrong)
    ).status_code == 401
    jwt_like = await client.post("/hasura/events/score", json=payload)
    assert jwt_like.status_code == 401
    skipped = await _deliver(client, rows[0], "e-9")
    assert skipped["scored"] == 0 and skipped["skipped"] == "detector disabled"
    await client.patch("/api/v1/detectors/ev-off", json={"enabled": True}, headers=auth_headers())
    assert (await _deliver(client, rows[0], "e-9"))["scored"] == 1

    update = event_payload(rows[0], op="UPDATE")
    response = await client.post("/hasura/events/score", json=update, headers=HASURA)
    assert response.status_code == 200 and response.json()["skipped"] == "operation UPDATE"
    other = event_payload(rows[0])
    other["table"]["name"] = "np_anomaly_detectors"
    assert (
        await client.post("/hasura/events/score", json=other, headers=HASURA)
    ).status_code == 400
    broken = event_payload(rows[0])
    del broken["event"]["op"]
    assert (
        await client.post("/hasura/events/score", json=broken, headers=HASURA)
    ).status_code == 422


async def test_action_scores_and_answers_in_hasura_shapes(client: httpx.AsyncClient) -> None:
    await create_detector(client, "act", algorithm="ewma")
    values = noise(60, seed=4)
    values[55] = 170.0
    points = series("act", values)
    response = await client.post(
        "/hasura/actions/scoreAnomalyPoints", json=action_payload(points), headers=HASURA
    )
    assert response.status_code == 200, response.text
    output = ScoreAnomalyPointsOutput.model_validate(response.json())
    assert output.accepted == 60 and output.duplicates == 0 and output.late == 0
    assert stamp(55) in [a.timestamp.isoformat().replace("+00:00", "Z") for a in output.anomalies]
    again = await client.post(
        "/hasura/actions/scoreAnomalyPoints", json=action_payload(points), headers=HASURA
    )
    assert again.json()["duplicates"] == 60

    def check(response: httpx.Response, status: int, code: str, text: str = "") -> None:
        assert response.status_code == status, response.text
        body = response.json()
        assert set(body) == {"message", "extensions"} and body["extensions"]["code"] == code
        assert text in body["message"]

    bad = [dict(p) for p in series("act", [1.0, 2.0, 3.0], first=100)]
    bad[2]["value"] = None
    url = "/hasura/actions/scoreAnomalyPoints"
    check(
        await client.post(url, json=action_payload(bad), headers=HASURA),
        422,
        "validation_error",
        "input.points.2.value",
    )
    naive = [dict(p) for p in series("act", [1.0], first=100)]
    naive[0]["timestamp"] = "2026-11-01T10:00:00"
    check(
        await client.post(url, json=action_payload(naive), headers=HASURA),
        422,
        "validation_error",
        "timestamp",
    )
    check(
        await client.post(url, json=action_payload(points), headers={"Authorization": "Bearer x"}),
        401,
        "unauthorized",
    )
    check(
        await client.post(url, json=action_payload(points, account=None), headers=HASURA),
        400,
        "bad_request",
    )
    admin = await client.post(
        url, json=action_payload(points, account=None, role="admin"), headers=HASURA
    )
    assert admin.status_code == 200 and admin.json()["duplicates"] == 60  # admin: primary
    many = series("act", [1.0] * 10_001, first=1000)
    check(
        await client.post(url, json=action_payload(many), headers=HASURA), 413, "payload_too_large"
    )
    wrong_name = action_payload(points)
    wrong_name["action"]["name"] = "somethingElse"
    check(await client.post(url, json=wrong_name, headers=HASURA), 400, "bad_request")
    check(
        await client.post(
            url, content=b"{", headers={**HASURA, "content-type": "application/json"}
        ),
        400,
        "bad_request",
    )


async def test_rest_ingest_meeting_an_unscored_hasura_row_counts_a_duplicate(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """A point stored by Hasura (unscored, newer than the latest) is not learned twice."""
    dsn = settings.database_url or ""
    await create_detector(client, "mixed", algorithm="ewma")
    await ingest(client, series("mixed", noise(40, seed=8)))
    before = (await client.get("/api/v1/detectors/mixed", headers=auth_headers())).json()
    rows = await insert_unscored(dsn, "primary", "mixed", [(T0 + timedelta(minutes=45), 99.0)])
    # 45 is newer than the latest learned point: the fast path skips the lookup, collides,
    # rolls back and redoes the call with every point checked
    result = (await ingest(client, series("mixed", [100.0, 101.0], first=44))).json()
    assert result["accepted"] == 1 and result["duplicates"] == 1
    after = (await client.get("/api/v1/detectors/mixed", headers=auth_headers())).json()
    assert after["n_seen"] == before["n_seen"] + 1
    assert after["counts"]["duplicates"] == 1
    # the Hasura row is still the event trigger's to score (newer than 44: learned)
    scored = await _deliver(client, rows[0], "e-mixed")
    assert scored["scored"] == 1 and scored["late"] == 0
    final = (await client.get("/api/v1/detectors/mixed", headers=auth_headers())).json()
    assert final["n_seen"] == before["n_seen"] + 2


async def test_service_writes_do_not_fire_table_triggers(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Hasura's event trigger is an ordinary trigger: it fires for rows inserted through
    Hasura, not for the points the service scores itself (session_replication_role)."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(
            """
            CREATE TABLE hasura_like_event_log (point_id bigint);
            CREATE FUNCTION hasura_like_notify() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO hasura_like_event_log VALUES (NEW.id); RETURN NULL; END $$;
            CREATE TRIGGER hasura_like_insert AFTER INSERT ON np_anomaly_data_points
                FOR EACH ROW EXECUTE FUNCTION hasura_like_notify();
            """
        )
        await create_detector(client, "quiet", algorithm="ewma")
        assert (await ingest(client, series("quiet", noise(20)))).json()["accepted"] == 20
        assert await conn.fetchval("SELECT count(*) FROM hasura_like_event_log") == 0
        rows = await insert_unscored(
            settings.database_url or "", "primary", "quiet", [(T0 + timedelta(hours=5), 1.0)]
        )
        logged = await conn.fetch("SELECT point_id FROM hasura_like_event_log")
        assert [r[0] for r in logged] == [rows[0]["id"]]
    finally:
        await conn.execute(
            "DROP TRIGGER IF EXISTS hasura_like_insert ON np_anomaly_data_points;"
            "DROP FUNCTION IF EXISTS hasura_like_notify();"
            "DROP TABLE IF EXISTS hasura_like_event_log"
        )
        await conn.close()


async def test_action_and_event_bodies_that_are_not_json_are_415_and_store_nothing(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Hasura always sends application/json; anything else is refused before the handler,
    in the error envelope (like a body over the limit), and nothing is stored."""
    await create_detector(client, "act-ct", algorithm="ewma")
    url = "/hasura/actions/scoreAnomalyPoints"
    action = json.dumps(action_payload(series("act-ct", noise(5, seed=4)))).encode()
    row = {"detector_id": "act-ct", "source_account_id": "primary", "id": 1}
    event = json.dumps(event_payload(row)).encode()
    for media in NOT_JSON:
        given = media.get("Content-Type")
        check_415(await client.post(url, content=action, headers={**HASURA, **media}), given)
        check_415(
            await client.post(url, content=chunked(action), headers={**HASURA, **media}), given
        )
        check_415(
            await client.post("/hasura/events/score", content=event, headers={**HASURA, **media}),
            given,
        )
    assert await _scored(settings, "act-ct") == []
    for media, first in zip(JSON, (0, 5), strict=True):
        body = json.dumps(action_payload(series("act-ct", noise(5, seed=5), first=first)))
        response = await client.post(url, content=body, headers={**HASURA, **media})
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == 5
    assert len(await _scored(settings, "act-ct")) == 10


async def test_action_points_carry_labels_and_refusals_are_reported(
    client: httpx.AsyncClient,
) -> None:
    await create_detector(
        client, "act-series", algorithm="static", params={"upper": 10}, max_series=1
    )
    points = [{**p, "labels": {"instance": "a"}} for p in series("act-series", [1.0, 20.0])] + [
        {**p, "labels": {"instance": "b"}} for p in series("act-series", [1.0], first=5)
    ]
    got = await client.post(
        "/hasura/actions/scoreAnomalyPoints", json=action_payload(points), headers=HASURA
    )
    assert got.status_code == 200, got.text
    out = ScoreAnomalyPointsOutput.model_validate(got.json())
    assert (out.accepted, out.refused) == (2, 1)
    assert [(a.labels, a.value) for a in out.anomalies] == [({"instance": "a"}, 20.0)]
    assert [(e.index, e.code, e.labels) for e in out.errors] == [
        (2, "max_series", {"instance": "b"})
    ]
    bad = [{**points[0], "labels": {"instance": 7}}]
    refused = await client.post(
        "/hasura/actions/scoreAnomalyPoints", json=action_payload(bad), headers=HASURA
    )
    assert refused.status_code == 422
    assert refused.json()["message"].startswith("input.points.0.labels")
    assert refused.json()["extensions"]["code"] == "validation_error"
