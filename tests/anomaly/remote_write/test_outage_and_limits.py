"""Remote write when the database is away (503: Prometheus retries, nothing lost) and
past a detector's max_series (refused, counted on /metrics and named in the log; every
other point stored)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta

import httpx
import pytest

from services.common.embedded import EmbeddedPostgres
from tests.anomaly.conftest import T0, create_detector, served_on, through_outage
from tests.anomaly.remote_write.support import HEADERS, Series, body, scored
from tests.conftest import auth_headers, own_postgres

pytestmark = pytest.mark.db  # its own Postgres (own_postgres), not a server fixture

ACCOUNT = "rw-outage"


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedPostgres]:
    """A Postgres of this module's own, free to be killed."""
    with own_postgres("rw-outage") as pg:
        yield pg


@pytest.fixture(scope="module")
async def own(server: EmbeddedPostgres) -> AsyncIterator[httpx.AsyncClient]:
    async with served_on(server, "rw_outage") as c:
        yield c


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
    response, retried = await through_outage(own, server, "/api/v1/write", content, headers)
    assert "retry-after" in response.headers
    assert retried.status_code == 204, retried.text
    await scored(own)
    assert await stored(own, "up") == {"a": 1}


def refused_total(metrics: str) -> float:
    """``nsentry_series_refused_total`` as ``/metrics`` shows it."""
    for line in metrics.splitlines():
        if line.startswith("nsentry_series_refused_total "):
            return float(line.split()[1])
    raise AssertionError("nsentry_series_refused_total is not on /metrics")


async def test_series_past_max_series_are_refused_counted_reported_and_the_rest_stored(
    own: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    for detector_id, max_series in (("capped", 2), ("roomy", 1000)):
        await create_detector(
            own,
            detector_id,
            account=ACCOUNT,
            metric_source={"type": "remote_write", "match": 'capped{job="x"}'},
            group_by=["instance"],
            max_series=max_series,
        )
    headers = {**auth_headers(ACCOUNT), **HEADERS}

    def samples(first: int) -> list[tuple[datetime, float]]:
        return [(T0 + timedelta(minutes=first + i), 1.0 + i) for i in range(3)]

    def series(instances: str, first: int) -> list[Series]:
        return [
            ({"__name__": "capped", "job": "x", "instance": i}, samples(first)) for i in instances
        ]

    first = await own.post("/api/v1/write", content=body(series("ab", 0)), headers=headers)
    assert first.status_code == 204, first.text
    await scored(own)
    before = refused_total((await own.get("/metrics")).text)
    # one request: the two existing series go on, two new ones (c, d) are one too many
    # for "capped" (and fine for "roomy", fed the same samples)
    caplog.set_level(logging.WARNING, logger="nsentry.anomaly.remote_write")
    response = await own.post("/api/v1/write", content=body(series("acbd", 10)), headers=headers)
    assert response.status_code == 204, response.text  # accepted: scored after the answer
    await scored(own)
    [line] = [r.getMessage() for r in caplog.records if "max_series" in r.getMessage()]
    assert f"account {ACCOUNT}: 6 point(s) refused past max_series, of 2 new series" in line
    assert 'capped {"instance": "c"}, capped {"instance": "d"}' in line
    assert "the other 18 point(s) were stored" in line
    assert refused_total((await own.get("/metrics")).text) == before + 6
    # nothing else affected: the existing series took the new points, the other
    # detector has every series
    assert await stored(own, "capped") == {"a": 6, "b": 6}
    assert await stored(own, "roomy") == {"a": 6, "b": 6, "c": 3, "d": 3}
    # sent again (a retry): nothing is stored twice
    again = await own.post("/api/v1/write", content=body(series("acbd", 10)), headers=headers)
    assert again.status_code == 204
    await scored(own)
    assert await stored(own, "capped") == {"a": 6, "b": 6}
    assert await stored(own, "roomy") == {"a": 6, "b": 6, "c": 3, "d": 3}
