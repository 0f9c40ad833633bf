"""A detector's `prometheus` metric source: validated at create and PATCH (422s naming
the field, nothing written), its URL judged by the destination policy, its secrets
never answered in clear."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from services.anomaly.app import create_app
from services.anomaly.prometheus_pull.source import MASK
from tests.anomaly.conftest import create_detector
from tests.clock import FakeClock
from tests.conftest import auth_headers, make_settings, serve_app

SOURCE = {"type": "prometheus", "url": "http://127.0.0.1:9090", "query": 'up{job="api"}'}


@pytest.fixture(scope="module")
async def client(database_url: str, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    """The app with loopback allowed for sources (as the tests' Prometheus is)."""
    settings = make_settings(database_url, anomaly_allowed_sources="127.0.0.1, 10.1.0.0/16")
    async with serve_app(create_app(settings, background=False, clock=clock)) as c:
        yield c


async def test_a_source_is_stored_with_its_defaults_and_no_status_for_push(
    client: httpx.AsyncClient,
) -> None:
    created = await create_detector(client, "pp-src", metric_source=SOURCE)
    assert created["metric_source"] == {
        **SOURCE,
        "step_seconds": 60,
        "lookback_seconds": 86400,
    }
    status = created["source_status"]
    assert status["last_success_at"] is None and status["last_error"] is None
    assert status["lag_seconds"] is None and status["polls"] == 0
    plain = await create_detector(client, "pp-push")
    assert plain["metric_source"] == {"type": "push"} and plain["source_status"] is None


async def test_secrets_are_masked_in_answers_and_kept_apart(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h = auth_headers()
    source = {**SOURCE, "bearer": "tok-123", "headers": {"X-Scope-OrgID": "tenant-7"}}
    created = await create_detector(client, "pp-secret", metric_source=source)
    shown = created["metric_source"]
    assert shown["bearer"] == MASK and shown["headers"] == {"X-Scope-OrgID": MASK}
    for answer in (
        await client.get("/api/v1/detectors/pp-secret", headers=h),
        await client.get("/api/v1/detectors", headers=h),
    ):
        assert "tok-123" not in answer.text and "tenant-7" not in answer.text
    conn = await asyncpg.connect(database_url)

    async def kept() -> Any:
        """The secrets as the pull state keeps them."""
        return await conn.fetchrow(
            "SELECT bearer, headers::text FROM np_anomaly_pull_state WHERE detector_id = $1",
            "pp-secret",
        )

    async def patch(fields: dict[str, Any]) -> httpx.Response:
        """The source as shown, with ``fields`` changed, sent back: a 200."""
        patched = await client.patch(
            "/api/v1/detectors/pp-secret",
            json={"metric_source": {**shown, **fields}},
            headers=h,
        )
        assert patched.status_code == 200, patched.text
        return patched

    try:
        stored = await conn.fetchval(
            "SELECT metric_source::text FROM np_anomaly_detectors WHERE id = 'pp-secret'"
        )
        assert "tok-123" not in stored and "tenant-7" not in stored  # nor in Hasura's select
        row = await kept()
        assert row["bearer"] == "tok-123" and "tenant-7" in row["headers"]
        # the GET's answer sent back unchanged keeps the secrets; a new value replaces one
        patched = await patch({"step_seconds": 30})
        assert patched.json()["metric_source"]["step_seconds"] == 30
        row = await kept()
        assert row["bearer"] == "tok-123" and "tenant-7" in row["headers"]
        patched = await patch({"bearer": "tok-456", "headers": {}})
        assert "headers" not in patched.json()["metric_source"]
        row = await kept()
        assert row["bearer"] == "tok-456" and row["headers"] == "{}"
        # back to push: the pull state (and its secrets) is gone
        patched = await client.patch(
            "/api/v1/detectors/pp-secret", json={"metric_source": {"type": "push"}}, headers=h
        )
        assert patched.status_code == 200 and patched.json()["source_status"] is None
        gone = await conn.fetchval(
            "SELECT count(*) FROM np_anomaly_pull_state WHERE detector_id = 'pp-secret'"
        )
        assert gone == 0
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("source", "field", "says"),
    [
        ({"type": "prometheus", "query": "up"}, "metric_source.url", "needs the server's URL"),
        ({**SOURCE, "url": "ftp://127.0.0.1/"}, "metric_source.url", "http or https"),
        ({**SOURCE, "url": "http://127.0.0.1:9090/?x=1"}, "metric_source.url", "no query"),
        ({**SOURCE, "query": "  "}, "metric_source.query", "PromQL query"),
        ({**SOURCE, "step_seconds": 0}, "metric_source.step_seconds", "between 1 and 86400"),
        ({**SOURCE, "step_seconds": 1.5}, "step_seconds", "integer"),
        ({**SOURCE, "lookback_seconds": -1}, "metric_source.lookback_seconds", "between 0"),
        ({**SOURCE, "headers": {"Bad Name": "x"}}, "metric_source.headers", "header name"),
        ({**SOURCE, "headers": {"Host": "x"}}, "metric_source.headers", "set by the poller"),
        ({**SOURCE, "headers": {"X-A": "a\nb"}}, "metric_source.headers.X-A", "printable"),
        ({**SOURCE, "bearer": ""}, "metric_source.bearer", "1 to"),
        (
            {**SOURCE, "bearer": "t", "headers": {"Authorization": "Basic x"}},
            "metric_source.bearer",
            "not both",
        ),
        # the destination policy: private, link-local, loopback names not allowed
        ({**SOURCE, "url": "http://192.168.1.5:9090"}, "metric_source.url", "ANOMALY_ALLOWED"),
        ({**SOURCE, "url": "http://169.254.169.254/"}, "metric_source.url", "ANOMALY_ALLOWED"),
        ({**SOURCE, "url": "http://0x7f000002:9090"}, "metric_source.url", "ANOMALY_ALLOWED"),
        ({**SOURCE, "url": "http://localhost:9090"}, "metric_source.url", "ANOMALY_ALLOWED"),
        ({**SOURCE, "url": "http://u:p@127.0.0.1:9090"}, "metric_source.url", "credentials"),
    ],
)
async def test_a_bad_source_is_a_422_naming_the_field_and_nothing_is_written(
    client: httpx.AsyncClient, source: dict[str, object], field: str, says: str
) -> None:
    h = auth_headers()
    body = {"id": "pp-bad", "name": "bad", "metric_source": source}
    response = await client.post("/api/v1/detectors", json=body, headers=h)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error", response.text
    assert field in response.text and says in response.text, response.text
    assert (await client.get("/api/v1/detectors/pp-bad", headers=h)).status_code == 404
    # the same through PATCH of an existing detector: refused, the detector unchanged
    await create_detector(client, "pp-bad-patch", metric_source=SOURCE) if (
        await client.get("/api/v1/detectors/pp-bad-patch", headers=h)
    ).status_code == 404 else None
    patched = await client.patch(
        "/api/v1/detectors/pp-bad-patch", json={"metric_source": source}, headers=h
    )
    assert patched.status_code == 422, patched.text
    again = await client.get("/api/v1/detectors/pp-bad-patch", headers=h)
    assert again.json()["metric_source"]["url"] == SOURCE["url"]


async def test_allowed_networks_and_canonical_hosts(client: httpx.AsyncClient) -> None:
    # 10.1.0.0/16 is listed in ANOMALY_ALLOWED_SOURCES; a numeric host is stored canonical
    created = await create_detector(
        client, "pp-allowed", metric_source={**SOURCE, "url": "http://0x0a010203:9090"}
    )
    assert created["metric_source"]["url"] == "http://10.1.2.3:9090"


async def test_local_mode_allows_loopback_and_nothing_else(database_url: str) -> None:
    settings = make_settings(database_url, nsentry_local_mode=True)
    async with serve_app(create_app(settings, background=False)) as c:
        h = auth_headers("pp-local")
        ok = {**SOURCE, "url": "http://localhost:9090"}
        created = await c.post(
            "/api/v1/detectors", json={"id": "l1", "name": "l", "metric_source": ok}, headers=h
        )
        assert created.status_code == 201, created.text
        private = {**SOURCE, "url": "http://10.0.0.1:9090"}
        refused = await c.post(
            "/api/v1/detectors",
            json={"id": "l2", "name": "l", "metric_source": private},
            headers=h,
        )
        assert refused.status_code == 422 and "ANOMALY_ALLOWED_SOURCES" in refused.text
