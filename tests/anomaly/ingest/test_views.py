"""The ingest fast path answers exactly as the documented FastAPI route does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.anomaly.app import create_app
from services.anomaly.ingest.views import IngestShim
from services.common.settings import Settings
from tests.anomaly.conftest import create_detector, noise, series, stamp
from tests.conftest import auth_headers, make_settings, serve_app


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
