"""The ingest fast path answers exactly as the documented FastAPI route does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from services.anomaly.app import create_app
from services.anomaly.ingest.views import IngestShim
from services.common.settings import Settings
from tests.anomaly.conftest import create_detector, noise, series, stamp
from tests.conftest import auth_headers, make_settings, serve_app
from tests.media import JSON, NOT_JSON, check_415, chunked


@pytest.fixture(scope="module")
async def both(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """The app, and the same app without the fast path (a small body limit on both)."""
    small = make_settings(settings.database_url or "", max_body_bytes=200_000)
    fast = create_app(small, background=False)
    routed = create_app(small, background=False)
    routed.user_middleware = [m for m in routed.user_middleware if m.cls is not IngestShim]
    assert len(routed.user_middleware) == len(fast.user_middleware) - 1
    async with serve_app(fast) as f, serve_app(routed) as r:
        yield f, r


def _comparable(response: httpx.Response, name: str) -> tuple[int, Any, str | None]:
    body = json.loads(response.text.replace(name, "NAME"))
    if isinstance(body, dict):
        for anomaly in body.get("anomalies", []):
            anomaly.pop("id"), anomaly.pop("ingested_at")
    return response.status_code, body, response.headers.get("www-authenticate")


async def test_same_answers(both: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    fast, routed = both
    for client, name in ((fast, "fp-a"), (routed, "fp-b")):
        await create_detector(client, name, algorithm="static", params={"upper": 10})
        await create_detector(client, f"{name}-off", algorithm="ewma", enabled=False)
    values = noise(30, level=5.0, sd=1.0)
    values[20] = 50.0
    bad = series("x", values)
    bad[7]["value"] = "high"
    cases: list[tuple[Any, dict[str, str]]] = [
        ({"points": series("x", values)}, auth_headers()),
        ({"points": series("x", values)}, auth_headers()),  # all duplicates
        ({"detector_id": "x", "value": 99.0, "timestamp": stamp(40)}, auth_headers()),
        ({"detector_id": "x", "value": 1.0, "timestamp": stamp(5)}, auth_headers()),  # dup
        ({"points": bad}, auth_headers()),  # 422 naming points.7.value
        ({"detector_id": "nope", "value": 1.0, "timestamp": stamp(0)}, auth_headers()),
        ({"points": [{"detector_id": "nope", "value": 1.0, "timestamp": stamp(0)}]}, {}),
        ({"detector_id": "x-off", "value": 1.0, "timestamp": stamp(0)}, auth_headers()),
        ({"points": series("x", [1.0] * 10_001)}, auth_headers()),  # over the byte limit
        ({"detector_id": "x", "value": 1.0, "timestamp": "2026-11-01T00:00:00"}, auth_headers()),
        ([1, 2], auth_headers()),
        (b"{not json", auth_headers()),
        ({"points": []}, auth_headers(account="other-account")),
    ]
    seen: list[int] = []
    for body, headers in cases:
        answers = []
        for client, name in ((fast, "fp-a"), (routed, "fp-b")):
            if isinstance(body, bytes):
                content = body
            else:
                text = httpx.Request("POST", "/", json=body).content.decode()
                content = text.replace('"x"', f'"{name}"').replace('"x-off"', f'"{name}-off"')
                content = content.encode()
            response = await client.post(
                "/api/v1/ingest",
                content=content,
                headers={**headers, "content-type": "application/json"},
            )
            answers.append(_comparable(response, name))
        assert answers[0] == answers[1], answers
        seen.append(answers[0][0])
    assert seen == [200, 200, 200, 200, 422, 404, 401, 409, 413, 422, 422, 400, 200]


async def _stored(settings: Settings, detector_id: str) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM np_anomaly_data_points WHERE detector_id = $1", detector_id
        )
    finally:
        await conn.close()
    return count


async def test_a_body_that_is_not_json_is_415_on_both_paths_and_nothing_is_stored(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], settings: Settings
) -> None:
    fast, routed = both
    for client, name in ((fast, "ct-a"), (routed, "ct-b")):
        await create_detector(client, name, algorithm="static", params={"upper": 10})
        single = json.dumps({"detector_id": name, "value": 1.0, "timestamp": stamp(0)}).encode()
        batch = json.dumps({"points": series(name, [1.0, 2.0, 3.0], first=1)}).encode()
        for body in (single, batch):
            for media in NOT_JSON:
                given = media.get("Content-Type")
                headers = {**auth_headers(), **media}
                response = await client.post("/api/v1/ingest", content=body, headers=headers)
                check_415(response, given)
                response = await client.post(
                    "/api/v1/ingest", content=chunked(body), headers=headers
                )
                check_415(response, given)
                # refused before authentication, like a body over the limit
                check_415(await client.post("/api/v1/ingest", content=body, headers=media), given)
        assert await _stored(settings, name) == 0
        for media, first in zip(JSON, (10, 20), strict=True):
            one = json.dumps({"detector_id": name, "value": 1.0, "timestamp": stamp(first)})
            many = json.dumps({"points": series(name, [1.0, 2.0], first=first + 1)})
            for body, accepted in ((one, 1), (many, 2)):
                response = await client.post(
                    "/api/v1/ingest", content=body, headers={**auth_headers(), **media}
                )
                assert response.status_code == 200, response.text
                assert response.json()["accepted"] == accepted
        assert await _stored(settings, name) == 6
        # a body without a Content-Type is still refused once the rest is right
        check_415(await client.post("/api/v1/ingest", content=single, headers=auth_headers()), None)
        # an empty body is no body: the parser says what is missing, whatever the type
        empty = await client.post(
            "/api/v1/ingest", content=b"", headers={**auth_headers(), "Content-Type": "text/plain"}
        )
        assert empty.status_code in (400, 422), empty.text
        assert await _stored(settings, name) == 6
