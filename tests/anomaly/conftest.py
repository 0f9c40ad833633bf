"""Fixtures of the nself-anomaly service tests: the app served over ASGI, helpers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import numpy as np
import pytest
import uvicorn

from services.anomaly.app import create_app
from services.anomaly.paging.sender import PageSender
from services.anomaly.series import labels_of
from services.common import db
from services.common.embedded import EmbeddedPostgres
from services.common.outage import outages
from services.common.settings import Settings
from tests.anomaly.oncall_standin import OncallStandIn, Received, free_port
from tests.clock import FakeClock
from tests.conftest import (
    PLUGIN_SECRET,
    auth_headers,
    create_database,
    make_settings,
    serve_app,
)

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


@pytest.fixture
async def anomaly(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The anomaly app (no background sender/pruner) over ASGI, on a fake clock at T0
    of this test's own."""
    async with serve_app(create_app(settings, background=False, clock=FakeClock(T0))) as c:
        yield c


@pytest.fixture
async def worker_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the worker role, as the background workers use."""
    pool = await db.create_pool(settings.database_url or "", role=db.WORKER_ROLE, min_size=0)
    yield pool
    await pool.close()


@pytest.fixture
async def standin() -> AsyncIterator[OncallStandIn]:
    """The on-call stand-in (tests/anomaly/oncall_standin.py) over real HTTP."""
    server = OncallStandIn(free_port())
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def service_settings(database_url: str, standin: OncallStandIn) -> Settings:
    """What ``service`` runs with: paging to the stand-in. A module overrides this
    fixture for more (the Prometheus pull tests allow the loopback Prometheus)."""
    return make_settings(database_url, oncall_url=standin.url)


@pytest.fixture
async def service(service_settings: Settings) -> AsyncIterator[str]:
    """nself-anomaly over real HTTP (uvicorn in this loop) with its background hooks
    (the paging sender; the poller where the settings have one); yields its URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(service_settings),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
        )
    )
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return bool(server.started)

    await until(started, seconds=60, what="the service to start")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(task, 30)


async def until(
    check: Callable[[], Awaitable[Any]], *, seconds: float, what: str, state: Any = None
) -> Any:
    """Poll ``check`` until it returns something truthy, or fail after ``seconds``
    (saying ``state``, which the check may fill)."""
    deadline = time.monotonic() + seconds
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}: {state}")
        await asyncio.sleep(0.1)


@asynccontextmanager
async def served_on(server: EmbeddedPostgres, database: str) -> AsyncIterator[httpx.AsyncClient]:
    """The anomaly app (no background hooks) on a new database of ``server``, a Postgres
    the test may kill: the client sees the error envelopes; the outage log reset after."""
    dsn = await create_database(server, database)
    app = create_app(make_settings(dsn), background=False)
    async with serve_app(app, raise_app_exceptions=False) as c:
        yield c
    outages.reset()


async def through_outage(
    client: httpx.AsyncClient,
    server: EmbeddedPostgres,
    path: str,
    content: bytes,
    headers: dict[str, str],
) -> tuple[httpx.Response, httpx.Response]:
    """``content`` posted to ``path`` while ``server`` is killed (a 503
    service_unavailable), then, once it is back, again until the answer is not a 503
    (the pool reconnects on its own; a sender retries): the two answers."""
    await asyncio.to_thread(server.kill)
    try:
        refused = await client.post(path, content=content, headers=headers)
    finally:
        await asyncio.to_thread(server.start)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "service_unavailable"
    for _ in range(100):
        retried = await client.post(path, content=content, headers=headers)
        if retried.status_code != 503:
            break
        await asyncio.sleep(0.1)
    return refused, retried


async def series_by_instance(
    client: httpx.AsyncClient, detector_id: str, headers: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """The detector's series keyed by their ``instance`` label ("?" for none)."""
    response = await client.get(f"/api/v1/detectors/{detector_id}/series", headers=headers)
    assert response.status_code == 200, response.text
    return {s["labels"].get("instance", "?"): s for s in response.json()["data"]}


def assert_one_page_naming(
    standin: OncallStandIn, pages: list[Received], instance: str, account: str
) -> None:
    """The stand-in was paged once, for ``account``, the alert naming ``instance`` in
    its labels and summary."""
    assert len(standin.opened()) == 1, [r.body for r in standin.opened()]
    page = pages[0].body
    assert page["details"]["labels"] == {"instance": instance}, page
    assert "instance" in page["summary"] and f'"{instance}"' in page["summary"], page["summary"]
    assert pages[0].headers["x-hasura-source-account-id"] == account


async def stored_points(
    database_url: str, detector_id: str, account: str
) -> list[tuple[dict[str, str], datetime, float]]:
    """The stored (labels, ts, value) of a detector (every series), read as the owner."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT series_key, ts, value FROM np_anomaly_data_points "
            "WHERE source_account_id = $1 AND detector_id = $2 ORDER BY series_key, ts",
            account,
            detector_id,
        )
    finally:
        await conn.close()
    return [(labels_of(r["series_key"]), r["ts"], r["value"]) for r in rows]


async def send_pages(pool: asyncpg.Pool, standin: OncallStandIn, now: datetime) -> None:
    """The paging sender's passes at ``now`` to the stand-in, until one claims nothing
    (five at most)."""
    async with httpx.AsyncClient() as http:
        sender = PageSender(pool, oncall_url=standin.url, secret=PLUGIN_SECRET, client=http)
        for _ in range(5):
            if not (await sender.run_once(now)).claimed:
                return


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
