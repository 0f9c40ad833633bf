"""OTLP while the database is away: 503 with Retry-After (exporters retry), and the
retry stores the data points."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from services.common.embedded import EmbeddedPostgres
from tests.anomaly.conftest import T0, create_detector, served_on, through_outage
from tests.anomaly.otlp.support import PROTOBUF, gauge, protobuf_body
from tests.conftest import auth_headers, own_postgres

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
    async with served_on(server, "otlp_outage") as c:
        yield c


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
    response, retried = await through_outage(own, server, "/v1/metrics", content, headers)
    assert int(response.headers["retry-after"]) > 0
    assert retried.status_code == 200, retried.text
    listed = await own.get("/api/v1/detectors/up/series", headers=auth_headers(ACCOUNT))
    assert [(s["labels"], s["counts"]["points"]) for s in listed.json()["data"]] == [
        ({"instance": "a"}, 1)
    ]
