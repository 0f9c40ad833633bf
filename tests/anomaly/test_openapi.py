"""Every route of SPEC section 4 exists, is documented, and needs the bearer."""

from __future__ import annotations

import httpx

from services.anomaly.hasura.models import ScoreAnomalyPointsInput, ScoreAnomalyPointsOutput
from tests.conftest import auth_headers

ROUTES = {
    ("post", "/api/v1/ingest"),
    ("get", "/api/v1/detectors"),
    ("post", "/api/v1/detectors"),
    ("get", "/api/v1/detectors/{detector_id}"),
    ("patch", "/api/v1/detectors/{detector_id}"),
    ("delete", "/api/v1/detectors/{detector_id}"),
    ("post", "/api/v1/detectors/{detector_id}/backtest"),
    ("get", "/api/v1/anomalies"),
    ("get", "/api/v1/anomalies/{anomaly_id}"),
    ("patch", "/api/v1/anomalies/{anomaly_id}"),
    ("get", "/api/v1/stats"),
    ("post", "/hasura/actions/scoreAnomalyPoints"),
    ("post", "/hasura/events/score"),
}


async def test_openapi_documents_every_route(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    found = {(m, p) for p, ops in schema["paths"].items() for m in ops}
    assert ROUTES <= found
    for method, path in ROUTES:
        operation = schema["paths"][path][method]
        assert operation.get("summary"), (method, path)
        assert operation.get("security") == [{"bearer": []}], (method, path)
    ingest = schema["paths"]["/api/v1/ingest"]["post"]["requestBody"]["content"]["application/json"]
    assert set(ingest["examples"]) == {"single", "batch"}
    for method, path in ROUTES:
        if path.startswith("/api/"):
            response = await client.request(
                method.upper(), path.replace("{detector_id}", "x").replace("{anomaly_id}", "1")
            )
            assert response.status_code == 401, (method, path)


def test_action_types_are_named_for_the_metadata() -> None:
    assert set(ScoreAnomalyPointsInput.model_fields) == {"points"}
    assert set(ScoreAnomalyPointsOutput.model_fields) == {
        "accepted",
        "duplicates",
        "late",
        "anomalies",
        "refused",
        "errors",
    }


async def test_detector_fields_document_the_paging_rules(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    for model in ("DetectorCreate", "DetectorPatch"):
        thresholds = schemas[model]["properties"]["thresholds"]["description"]
        for words in (
            '"cooldown_seconds": 1800',
            '"page_max_age_seconds": 3600',
            '"auto_resolve": true',
            "never while the detector is still learning",
        ):
            assert words in thresholds, (model, words)
    status = schemas["DetectorOut"]["properties"]["status"]["description"]
    assert "first seasonal cycle" in status and "page nobody" in status


async def test_a_405_allows_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    """FastAPI makes one route per method; the Allow header names them all (Starlette
    alone named only the first route's)."""
    for method, path, allowed in (
        ("PUT", "/api/v1/detectors/x", "DELETE, GET, PATCH"),
        ("OPTIONS", "/api/v1/anomalies/1", "GET, PATCH"),
        ("DELETE", "/api/v1/detectors", "GET, POST"),
    ):
        response = await client.request(method, path, headers=auth_headers())
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == allowed, (method, path)
        assert response.json()["error"]["code"] == "method_not_allowed"


async def test_the_plain_routes_document_their_content(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    auth = paths["/auth"]["get"]["responses"]
    assert "content" not in auth["200"]
    assert set(auth["200"]["headers"]) == {
        "X-Hasura-Role",
        "X-Hasura-User-Id",
        "X-Hasura-Source-Account-Id",
    }
    assert set(paths["/health"]["get"]["responses"]) == {"200", "503"}
    metrics = await client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
