"""Remote write when the database is away (503: Prometheus retries, nothing lost) and
past a detector's max_series (refused and counted, the other series stored)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import httpx
import pytest
from prometheus_client import REGISTRY

from services.anomaly.app import create_app
from services.common.embedded import EmbeddedPostgres
from services.common.outage import outages
from tests.anomaly.conftest import T0, create_detector
from tests.anomaly.remote_write.support import HEADERS, body
from tests.conftest import auth_headers, create_database, make_settings, own_postgres, serve_app

ACCOUNT = "rw-outage"


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedPostgres]:
    """A Postgres of this module's own, free to be killed."""
    with own_postgres("rw-outage") as pg:
        yield pg


@pytest.fixture(scope="module")
async def own(server: EmbeddedPostgres) -> AsyncIterator[httpx.AsyncClient]:
    dsn = await create_database(server, "rw_outage")
    app = create_app(make_settings(dsn), background=False)
    async with serve_app(app, raise_app_exceptions=False) as c:
        yield c
    outages.reset()


async def stored(client: httpx.AsyncClient, detector_id: str) -> dict[str, int]:
    response = await client.get(
        f"/api/v1/detectors/{detector_id}/series", headers=auth_headers(ACCOUNT)
    )
    assert response.status_code == 200, response.text
    return {s["labels"]["instance"]: s["counts"]["points"] for s in response.json()["data"]}


async def test_the_database_away_is_a_503_and_the_retry_stores_it(
    own: httpx.AsyncClient, server: EmbeddedPostgres
) -> None:
    await create_detector(
        own,
        "up",
        account=ACCOUNT,
        metric_source={"type": "remote_write", "match": "up"},
        group_by=["instance"],
    )
    content = body([({"__name__": "up", "instance": "a"}, [(T0, 1.0)])])
    headers = {**auth_headers(ACCOUNT), **HEADERS}
    await asyncio.to_thread(server.kill)
    try:
        response = await own.post("/api/v1/write", content=content, headers=headers)
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "service_unavailable"
        assert "retry-after" in response.headers
    finally:
        await asyncio.to_thread(server.start)
    for _ in range(100):  # the pool reconnects on its own; Prometheus retries
        retried = await own.post("/api/v1/write", content=content, headers=headers)
        if retried.status_code != 503:
            break
        await asyncio.sleep(0.1)
    assert retried.status_code == 204, retried.text
    assert await stored(own, "up") == {"a": 1}


async def test_series_past_max_series_are_refused_counted_and_the_rest_stored(
    own: httpx.AsyncClient,
) -> None:
    await create_detector(
        own,
        "capped",
        account=ACCOUNT,
        metric_source={"type": "remote_write", "match": 'capped{job="x"}'},
        group_by=["instance"],
        max_series=2,
    )
    refused_before = REGISTRY.get_sample_value("nsentry_series_refused_total") or 0.0
    samples = [(T0 + timedelta(minutes=i), 1.0 + i) for i in range(3)]
    content = body(
        [({"__name__": "capped", "job": "x", "instance": i}, samples) for i in ("a", "b", "c")]
    )
    response = await own.post(
        "/api/v1/write", content=content, headers={**auth_headers(ACCOUNT), **HEADERS}
    )
    assert response.status_code == 204, response.text
    assert await stored(own, "capped") == {"a": 3, "b": 3}
    refused = (REGISTRY.get_sample_value("nsentry_series_refused_total") or 0.0) - refused_before
    assert refused == 3
