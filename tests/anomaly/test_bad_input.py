"""Hostile input gets a 4xx with the envelope, never a 500 (review findings)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.anomaly.app import create_app
from services.common.settings import Settings
from tests.conftest import auth_headers, serve_app

H = auth_headers("acct-bad-input")


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(create_app(settings, background=False)) as http:
        created = await http.post(
            "/api/v1/detectors", json={"id": "d1", "name": "d1", "algorithm": "ewma"}, headers=H
        )
        assert created.status_code == 201, created.text
        yield http


@pytest.mark.parametrize(
    ("method", "path", "body", "params"),
    [
        ("GET", "/api/v1/anomalies", None, {"detector_id": "d\u00001"}),
        ("GET", "/api/v1/stats", None, {"detector_id": "d\u00001"}),
        ("POST", "/api/v1/detectors", {"id": "d2", "name": "bad\u0000name"}, None),
        ("PATCH", "/api/v1/detectors/d1", {"description": None}, None),
        ("PATCH", "/api/v1/detectors/d1", {"name": "x\u0000"}, None),
        ("GET", "/api/v1/anomalies/99999999999999999999999", None, None),
        ("POST", "/api/v1/ingest",
         {"detector_id": "d1", "value": 1.0, "timestamp": "0001-01-01T00:00:00+01:00"}, None),
        ("POST", "/api/v1/ingest",
         {"points": [{"detector_id": "d1", "value": 1.0,
                      "timestamp": "9999-12-31T23:59:59-01:00"}]}, None),
    ],
)  # fmt: skip
async def test_refused_values_are_4xx(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: object,
    params: dict[str, str] | None,
) -> None:
    response = await client.request(method, path, json=body, params=params, headers=H)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["code"] in {"validation_error", "bad_request", "not_found"}


async def test_detector_unchanged_after_refused_patch(client: httpx.AsyncClient) -> None:
    await client.patch("/api/v1/detectors/d1", json={"name": "x\u0000"}, headers=H)
    assert (await client.get("/api/v1/detectors/d1", headers=H)).json()["name"] == "d1"


@pytest.mark.parametrize(
    ("body", "params"),
    [
        ({"detector_id": "d1", "value": 1.0, "timestamp": 1700000000}, None),
        ({"detector_id": "d1", "value": 1.0, "timestamp": "1700000000"}, None),
        ({"points": [{"detector_id": "d1", "value": 1.0, "timestamp": "9999-12-31T00:00:00Z"}]},
         None),
        (None, {"since": "-1e-144"}),
        (None, {"until": "2600-01-01T00:00:00Z"}),
    ],
)  # fmt: skip
async def test_instants_are_rfc_3339_from_1970_to_2200(
    client: httpx.AsyncClient, body: object, params: dict[str, str] | None
) -> None:
    """Epoch numbers and far-off instants are 422, in bodies and query parameters alike;
    nothing is stored (a far-future point would make every later point late)."""
    if body is not None:
        response = await client.post("/api/v1/ingest", json=body, headers=H)
    else:
        response = await client.get("/api/v1/anomalies", params=params, headers=H)
    assert response.status_code == 422, response.text
    detector = (await client.get("/api/v1/detectors/d1", headers=H)).json()
    assert detector["last_point"] is None and detector["counts"]["points"] == 0


@pytest.mark.parametrize("method", ["GET", "PATCH"])
async def test_an_anomaly_id_past_bigint_is_refused_by_its_schema(
    client: httpx.AsyncClient, method: str
) -> None:
    """An id Postgres cannot hold was bound as is: 422 "a value cannot be stored". The
    path parameter is bounded to bigint, which the OpenAPI document says."""
    body = {"status": "confirmed"} if method == "PATCH" else None
    answer = await client.request(method, f"/api/v1/anomalies/{2**63}", json=body, headers=H)
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["loc"] == ["path", "anomaly_id"]
    assert (await client.get(f"/api/v1/anomalies/{2**63 - 1}", headers=H)).status_code == 404
    document = (await client.get("/openapi.json")).json()
    parameter = document["paths"]["/api/v1/anomalies/{anomaly_id}"]["get"]["parameters"][0]
    assert parameter["schema"]["maximum"] == 2**63 - 1


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/v1/detectors", {"id": "d3", "name": "d3", "enabled": 0}, "enabled"),
        ("PATCH", "/api/v1/detectors/d1", {"enabled": "true"}, "enabled"),
        ("PATCH", "/api/v1/detectors/d1", {"thresholds": {"lower": "1"}}, "lower"),
        ("PATCH", "/api/v1/detectors/d1", {"thresholds": {"auto_resolve": 1}}, "auto_resolve"),
        ("PATCH", "/api/v1/detectors/d1", {"params": {"alpha": "0.1"}}, "alpha"),
        ("POST", "/api/v1/detectors",
         {"id": "d4", "name": "d4", "algorithm": "mad", "params": {"window": "50"}}, "window"),
        ("POST", "/api/v1/detectors/d1/backtest",
         {"include_points": 0, "points": [{"timestamp": "2026-11-23T09:00:00Z", "value": 1}]},
         "include_points"),
    ],
)  # fmt: skip
async def test_types_are_the_documents_types(
    client: httpx.AsyncClient, method: str, path: str, body: object, field: str
) -> None:
    """A bool is true or false and a number is a number, as the OpenAPI document says:
    0, "true" and "1" were read as their Python conversions (schemathesis' negative
    cases found them)."""
    response = await client.request(method, path, json=body, headers=H)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["message"]


async def test_the_detector_document_states_the_field_rules(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    patch = schemas["DetectorPatch"]["properties"]
    for never_null in ("name", "algorithm", "params", "thresholds", "enabled"):
        assert {"type": "null"} not in patch[never_null].get("anyOf", []), never_null
        assert patch[never_null].get("type") != "null", never_null
    params = {branch["title"]: branch for branch in patch["params"]["anyOf"]}
    assert params["mad parameters"]["properties"]["window"]["type"] == "integer"
    assert params["mad parameters"]["additionalProperties"] is False
    assert "anyOf" in patch["escalation_policy_id"]  # null takes the policy off
    create = schemas["DetectorCreate"]["properties"]
    assert "auto" in create["algorithm"]["enum"] and "mad" in create["algorithm"]["enum"]
    assert create["thresholds"]["additionalProperties"] is False
    assert {"score", "direction", "auto_resolve"} <= set(create["thresholds"]["properties"])
