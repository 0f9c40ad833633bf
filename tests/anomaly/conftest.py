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
from tests.clock import FakeClock
from tests.conftest import auth_headers, serve_app

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    """The anomaly app's clock; at T0, so the points tests push from T0 on are fresh."""
    return FakeClock(T0)


@pytest.fixture(scope="module")
async def client(settings: Settings, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    """The anomaly app (no background sender/pruner) with its lifespan, over ASGI, on
    the module's fake clock."""
    async with serve_app(create_app(settings, background=False, clock=clock)) as c:
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


# -- Hasura's documented payloads ----------------------------------------------
def action_payload(
    points: list[dict[str, Any]], *, account: str | None = "primary", role: str = "user"
) -> dict[str, Any]:
    """An action webhook body as Hasura sends it (action, input, session, query)."""
    session = {"x-hasura-role": role, "x-hasura-user-id": "u-1"}
    if account is not None:
        session["x-hasura-source-account-id"] = account
    return {
        "action": {"name": "scoreAnomalyPoints"},
        "input": {"points": points},
        "session_variables": session,
        "request_query": (
            "mutation ($points: [AnomalyPointInput!]!) { scoreAnomalyPoints(points: $points) "
            "{ accepted duplicates late anomalies { id detector_id timestamp score } } }"
        ),
    }


def event_payload(
    row: dict[str, Any], *, op: str = "INSERT", event_id: str = "e-1"
) -> dict[str, Any]:
    """An event-trigger webhook body as Hasura sends it for a row of the points table."""
    return {
        "id": event_id,
        "created_at": "2026-11-01T00:00:00.123456Z",
        "trigger": {"name": "score_anomaly_points"},
        "table": {"schema": "public", "name": "np_anomaly_data_points"},
        "event": {
            "session_variables": {"x-hasura-role": "user"},
            "op": op,
            "data": {
                "old": None if op == "INSERT" else row,
                "new": None if op == "DELETE" else row,
            },
            "trace_context": {"trace_id": "0af7651916cd43dd", "span_id": "b7ad6b7169203331"},
        },
        "delivery_info": {"max_retries": 3, "current_retry": 0},
    }


async def insert_unscored(
    database_url: str, account: str, detector_id: str, points: list[tuple[datetime, float]]
) -> list[dict[str, Any]]:
    """Rows inserted the way Hasura inserts them (no score); returns them as JSON rows."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "INSERT INTO np_anomaly_data_points (source_account_id, detector_id, ts, value) "
            "SELECT $1, $2, t, v FROM unnest($3::timestamptz[], $4::float8[]) AS u(t, v) "
            "RETURNING *",
            account,
            detector_id,
            [p[0] for p in points],
            [p[1] for p in points],
        )
    finally:
        await conn.close()
    out = []
    for r in rows:
        row = dict(r)
        row["ts"] = row["ts"].isoformat()
        row["ingested_at"] = row["ingested_at"].isoformat()
        row["context"] = None
        out.append(row)
    return out
