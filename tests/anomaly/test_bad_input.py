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
