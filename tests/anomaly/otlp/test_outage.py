"""OTLP while the database is away: 503 with Retry-After (exporters retry), and the
retry stores the data points."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from services.anomaly.app import create_app
from services.common.embedded import EmbeddedPostgres
from services.common.outage import outages
from tests.anomaly.conftest import T0, create_detector
from tests.anomaly.otlp.support import PROTOBUF, gauge, protobuf_body
from tests.conftest import auth_headers, create_database, make_settings, own_postgres, serve_app

ACCOUNT = "otlp-outage"
# its own killable Postgres (own_postgres), not the session's pg_server: marked by hand
pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedPostgres]:
    """A Postgres of this module's own, free to be killed."""
    with own_postgres("otlp-outage") as pg:
        yield pg


@pytest.fixture(scope="module")
async def own(server: EmbeddedPostgres) -> AsyncIterator[httpx.AsyncClient]:
    dsn = await create_database(server, "otlp_outage")
    app = create_app(make_settings(dsn), background=False)
    async with serve_app(app, raise_app_exceptions=False) as c:
        yield c
    outages.reset()


async def test_the_database_away_is_a_503_and_the_retry_stores_it(
    own: httpx.AsyncClient, server: EmbeddedPostgres
) -> None:
    await create_detector(
        own,
        "up",
        account=ACCOUNT,
        metric_source={"type": "otlp", "metric": "up"},
        group_by=["instance"],
    )
    content = protobuf_body(gauge("up", [({"instance": "a"}, T0, 1.0)]))
    headers = {**auth_headers(ACCOUNT), **PROTOBUF}
    await asyncio.to_thread(server.kill)
    try:
        response = await own.post("/v1/metrics", content=content, headers=headers)
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "service_unavailable"
        assert int(response.headers["retry-after"]) > 0
    finally:
        await asyncio.to_thread(server.start)
    for _ in range(100):  # the pool reconnects on its own; the exporter retries
        retried = await own.post("/v1/metrics", content=content, headers=headers)
        if retried.status_code != 503:
            break
        await asyncio.sleep(0.1)
    assert retried.status_code == 200, retried.text
    listed = await own.get("/api/v1/detectors/up/series", headers=auth_headers(ACCOUNT))
    assert [(s["labels"], s["counts"]["points"]) for s in listed.json()["data"]] == [
        ({"instance": "a"}, 1)
    ]
