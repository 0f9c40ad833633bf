"""Both services on real local ports (uvicorn), the production worker loop, one database:
a detector with an escalation policy turns an anomaly episode into exactly one alert,
whose notification reaches the sink."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from services.anomaly.app import create_app as create_anomaly
from services.common.settings import Settings
from services.oncall.app import create_app as create_oncall
from services.oncall.worker import run_worker
from tests.conftest import auth_headers, make_settings
from tests.oncall.helpers import SIGNING_SECRET, HttpSink, free_port

ACCOUNT = "acct-int"
OUTBOX = "SELECT status FROM np_anomaly_page_outbox"
H = auth_headers(ACCOUNT)


class _Server(uvicorn.Server):
    """uvicorn in the test's loop, leaving signals alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(app: FastAPI, port: int) -> AsyncIterator[str]:
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(20):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="module")
def stack_settings(database_url: str) -> Settings:
    return make_settings(
        database_url,
        oncall_url=f"http://127.0.0.1:{free_port()}",
        oncall_allowed_destinations="127.0.0.1",
        webhook_signing_secret=SIGNING_SECRET,
    )


async def test_anomaly_episode_pages_once(
    stack_settings: Settings, sink: HttpSink, database_url: str
) -> None:
    oncall_port = int(stack_settings.oncall_url.rsplit(":", 1)[1])
    stop = asyncio.Event()
    async with (
        serving(create_oncall(stack_settings), oncall_port) as oncall_url,
        serving(create_anomaly(stack_settings), free_port()) as anomaly_url,
        httpx.AsyncClient(headers=H, timeout=10) as http,
    ):
        worker = asyncio.create_task(run_worker(stack_settings, stop))
        try:
            page = await _page(http, oncall_url, anomaly_url, sink)
        finally:
            stop.set()
            await worker  # finishes its cycle: the delivery is recorded
        await _exactly_once(http, oncall_url, page, sink, database_url)


async def _page(
    http: httpx.AsyncClient, oncall: str, anomaly: str, sink: HttpSink
) -> dict[str, Any]:
    async def created(response: httpx.Response) -> Any:
        assert response.status_code == 201, response.text
        return response.json()

    await created(
        await http.post(
            f"{oncall}/api/v1/people",
            json={
                "id": "sre",
                "name": "SRE",
                "contact_methods": [{"type": "webhook", "url": sink.url("/page")}],
            },
        )
    )
    await created(
        await http.post(
            f"{oncall}/api/v1/policies",
            json={
                "id": "latency",
                "name": "Latency",
                "steps": [{"targets": [{"type": "person", "id": "sre"}]}],
            },
        )
    )
    await created(
        await http.post(
            f"{anomaly}/api/v1/detectors",
            json={
                "id": "api-latency",
                "name": "API latency",
                "algorithm": "static",
                "params": {"upper": 10},
                "thresholds": {"cooldown_seconds": 600},
                "escalation_policy_id": "latency",
            },
        )
    )
    # recent points (older than an hour when scored would page nobody), ending within the
    # cooldown of the last anomaly: the episode, and its alert, stay open
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    values = [1.0] * 30
    for i in (20, 21, 22, 25):  # one episode: anomalies within the cooldown
        values[i] = 50.0
    points = [
        {
            "detector_id": "api-latency",
            "value": v,
            "timestamp": (start + timedelta(minutes=i)).isoformat(),
        }
        for i, v in enumerate(values)
    ]
    response = await http.post(f"{anomaly}/api/v1/ingest", json={"points": points})
    assert response.status_code == 200, response.text
    assert len(response.json()["anomalies"]) == 4

    [page] = await sink.wait_for("/page")
    return page.json()


async def _exactly_once(
    http: httpx.AsyncClient, oncall: str, body: dict[str, Any], sink: HttpSink, database_url: str
) -> None:
    assert body["alert"]["source"] == "nself-anomaly"
    assert body["alert"]["dedup_key"].startswith(f"anomaly:{ACCOUNT}:api-latency:")
    assert body["source_account_id"] == ACCOUNT

    # exactly one alert, one notification, and the anomaly outbox is done
    alerts = (await http.get(f"{oncall}/api/v1/alerts")).json()["data"]
    assert len(alerts) == 1 and alerts[0]["id"] == body["alert"]["id"]
    detail = (await http.get(f"{oncall}/api/v1/alerts/{alerts[0]['id']}")).json()
    assert [n["status"] for n in detail["notifications"]] == ["sent"]
    # one page in nself-anomaly's outbox, marked sent once its sender has read our 201
    conn = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(10):
            while (statuses := [r["status"] for r in await conn.fetch(OUTBOX)]) != ["sent"]:
                assert len(statuses) == 1
                await asyncio.sleep(0.02)  # the anomaly service's own background sender
    finally:
        await conn.close()
    assert len(sink.to("/page", None)) == 1
