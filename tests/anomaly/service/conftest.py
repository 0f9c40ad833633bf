"""Fixtures of the nself-anomaly service tests: the app served over ASGI, helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest

from services.anomaly.app import create_app
from services.common.settings import Settings
from tests.conftest import auth_headers, serve_app

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The anomaly app (no background sender/pruner) with its lifespan, over ASGI."""
    async with serve_app(create_app(settings, background=False)) as c:
        yield c


def stamp(i: int, *, start: datetime = T0, step: float = 60.0) -> str:
    return (start + timedelta(seconds=i * step)).isoformat().replace("+00:00", "Z")


def series(
    detector_id: str, values: Any, *, first: int = 0, start: datetime = T0, step: float = 60.0
) -> list[dict[str, Any]]:
    return [
        {
            "detector_id": detector_id,
            "value": float(v),
            "timestamp": stamp(first + i, start=start, step=step),
        }
        for i, v in enumerate(values)
    ]


def noise(n: int, *, seed: int = 1, level: float = 100.0, sd: float = 2.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(level, sd, n)


async def create_detector(
    client: httpx.AsyncClient, detector_id: str, *, account: str = "primary", **fields: Any
) -> dict[str, Any]:
    body = {"id": detector_id, "name": fields.pop("name", detector_id), **fields}
    response = await client.post("/api/v1/detectors", json=body, headers=auth_headers(account))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def ingest(
    client: httpx.AsyncClient, points: list[dict[str, Any]], *, account: str = "primary"
) -> httpx.Response:
    return await client.post(
        "/api/v1/ingest", json={"points": points}, headers=auth_headers(account)
    )
