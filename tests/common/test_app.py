"""The shared app plumbing: health, readiness, metrics, the error envelope, body limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel

from services import __version__
from services.anomaly.app import create_app as create_anomaly
from services.common.app import build_app
from services.common.auth import Caller
from services.common.errors import Conflict
from services.oncall.app import create_app as create_oncall
from tests.conftest import auth_headers, make_settings, serve_app
from tests.media import check_415, chunked

probe = APIRouter()


class Body(BaseModel):
    name: str
    at: AwareDatetime


@probe.post("/api/v1/probe")
async def post_probe(body: Body, caller: Caller) -> dict[str, Any]:
    return {"name": body.name, "account": caller.account_id}


@probe.get("/api/v1/conflict")
async def conflict(caller: Caller) -> None:
    raise Conflict("already there", details={"id": "x"})


@probe.get("/api/v1/boom")
async def boom(caller: Caller) -> None:
    raise RuntimeError("secret internals")


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(
        plugin="nself-test",
        settings=make_settings(database_url, max_body_bytes=2048),
        description="plumbing test",
        routers=[probe],
    )
    async with serve_app(app, raise_app_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(
    ("factory", "plugin"), [(create_anomaly, "nself-anomaly"), (create_oncall, "nself-oncall")]
)
async def test_services_health_and_ready(database_url: str, factory: Any, plugin: str) -> None:
    async with serve_app(factory(make_settings(database_url))) as client:
        health = await client.get("/health")
        assert health.status_code == 200
        assert health.json() == {
            "status": "ok",
            "plugin": plugin,
            "version": __version__,
            "db": "ok",
        }
        ready = await client.get("/ready")
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}


async def test_unreachable_database_is_degraded_and_not_ready(tmp_path: Any) -> None:
    dead = f"postgresql://postgres@/postgres?host={tmp_path}&port=1"
    app = build_app(plugin="nself-test", settings=make_settings(dead), description="x")
    async with serve_app(app) as client:
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "degraded" and health.json()["db"] != "ok"
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not_ready" and "migrations" in ready.json()["error"]


async def test_metrics_count_requests(client: httpx.AsyncClient) -> None:
    await client.get("/health")
    text = (await client.get("/metrics")).text
    assert 'nsentry_http_requests_total{method="GET",plugin="nself-test",route="/health"' in text
    assert "nsentry_http_request_duration_seconds_bucket" in text


async def test_unknown_route_is_enveloped(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here", headers=auth_headers())
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "no such route", "details": None}
    }


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/api/v1/nothing-here", {}),
        ("GET", "/api/v1/nothing-here", {"Authorization": "Bearer wrong"}),
        ("DELETE", "/api/v1/probe", {}),
        ("GET", "/admin", {}),
    ],
)
async def test_unknown_routes_need_a_bearer_too(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> None:
    """Without a valid bearer nothing tells which routes exist (SPEC 3): 401, not 404/405."""
    response = await client.request(method, path, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_wrong_method_is_enveloped(client: httpx.AsyncClient) -> None:
    response = await client.delete("/health")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_validation_error_names_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/probe", json={"name": "n", "at": "2026-11-22T10:00:00"}, headers=auth_headers()
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"].startswith("body.at:")
    assert error["details"][0]["loc"] == ["body", "at"]


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/probe",
        content=b"{not json",
        headers={**auth_headers(), "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_valid_request_passes(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/probe",
        json={"name": "n", "at": "2026-11-22T10:00:00+01:00"},
        headers=auth_headers("acct-z"),
    )
    assert response.status_code == 200
    assert response.json() == {"name": "n", "account": "acct-z"}


async def test_typed_error_keeps_status_and_details(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/conflict", headers=auth_headers())
    assert response.status_code == 409
    assert response.json() == {
        "error": {"code": "conflict", "message": "already there", "details": {"id": "x"}}
    }


async def test_crash_reveals_no_internals(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/boom", headers=auth_headers())
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal"
    assert "secret internals" not in response.text and "Traceback" not in response.text


async def test_body_over_limit_by_content_length(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/probe",
        content=b'{"name": "' + b"x" * 4096 + b'"}',
        headers={**auth_headers(), "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_body_over_limit_when_chunked(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"x" * 512

    response = await client.post(
        "/api/v1/probe",
        content=chunks(),
        headers={**auth_headers(), "content-type": "application/json"},
    )
    assert response.status_code == 413


async def test_chunked_body_under_limit_is_replayed(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "chunked", '
        yield b'"at": "2026-11-22T10:00:00Z"}'

    response = await client.post(
        "/api/v1/probe",
        content=chunks(),
        headers={**auth_headers(), "content-type": "application/json"},
    )
    assert response.status_code == 200 and response.json()["name"] == "chunked"


async def test_openapi_documents_the_bearer(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert schema["paths"]["/api/v1/probe"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in schema["paths"]["/health"]["get"]


@probe.post("/api/v1/bodyless")
async def post_bodyless(caller: Caller) -> dict[str, str]:
    return {"account": caller.account_id}


PROBE_BODY = b'{"name": "typed", "at": "2026-11-22T10:00:00Z"}'


@pytest.mark.parametrize(
    "media",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON ; Charset=UTF-8",
        "application/vnd.api+json",
        "application/merge-patch+json",
    ],
)
async def test_json_media_types_pass(client: httpx.AsyncClient, media: str) -> None:
    for content in (PROBE_BODY, chunked(PROBE_BODY)):
        response = await client.post(
            "/api/v1/probe", content=content, headers={**auth_headers(), "content-type": media}
        )
        assert response.status_code == 200 and response.json()["name"] == "typed", response.text


@pytest.mark.parametrize(
    "media",
    [
        "text/plain",
        "text/json",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "application/json-seq",
        "application/+json; x=application/json",
        "",
        None,
    ],
)
async def test_other_media_types_are_415_before_the_route(
    client: httpx.AsyncClient, media: str | None
) -> None:
    headers = {} if media is None else {"content-type": media}
    for sent in (lambda: PROBE_BODY, lambda: chunked(PROBE_BODY)):
        for route in ("/api/v1/probe", "/api/v1/bodyless", "/api/v1/no-such-route"):
            response = await client.post(
                route, content=sent(), headers={**auth_headers(), **headers}
            )
            check_415(response, media)
        # before authentication, like the 413
        check_415(await client.post("/api/v1/probe", content=sent(), headers=headers), media)
    patch = await client.patch("/api/v1/probe", content=PROBE_BODY, headers=headers)
    check_415(patch, media)


async def test_requests_without_a_body_are_not_concerned(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"content-type": "text/plain"}):
        for content in (b"", chunked(b"")):
            response = await client.post(
                "/api/v1/bodyless", content=content, headers={**auth_headers("acct-e"), **headers}
            )
            assert response.status_code == 200, response.text
        missing = await client.post("/api/v1/probe", headers={**auth_headers(), **headers})
        assert missing.status_code == 422 and missing.json()["error"]["code"] == "validation_error"
        conflict = await client.get("/api/v1/conflict", headers={**auth_headers(), **headers})
        assert conflict.status_code == 409


async def test_openapi_documents_the_standard_errors(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    assert document["components"]["schemas"]["ErrorEnvelope"]["required"] == ["error"]
    for path in ("/api/v1/probe", "/api/v1/bodyless"):
        responses = paths[path]["post"]["responses"]
        for status in ("400", "401", "413", "415", "422", "503"):
            assert responses[status]["content"]["application/json"]["schema"] == envelope
        assert "Retry-After" in responses["503"]["headers"]
        assert "WWW-Authenticate" in responses["401"]["headers"]
    conflict = paths["/api/v1/conflict"]["get"]["responses"]
    assert {"401", "503"} <= set(conflict) and not {"413", "415"} & set(conflict)
    for public in ("/health", "/ready", "/metrics"):
        assert "401" not in paths[public]["get"]["responses"]
