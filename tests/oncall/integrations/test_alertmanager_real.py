"""A real Alertmanager (Debian's prometheus-alertmanager 0.25) pages through
nself-oncall: alerts posted to Alertmanager's own API reach the service through a
webhook receiver with the integration's URL, open an alert that pages a real HTTP
sink, and resolve when Alertmanager sends `resolved`. Alertmanager runs on its real
clock with one-second group waits; the test polls for each step, never sleeps blind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn

from services.common.settings import Settings
from services.oncall.app import create_app
from services.oncall.worker import Worker
from tests.conftest import auth_headers
from tests.oncall.helpers import FakeClock, HttpSink, free_port
from tests.oncall.integrations.alertmanager import am_alert, until
from tests.oncall.integrations.helpers import alert_detail, alerts, key, kinds, responder


@pytest.fixture
async def served(oncall_settings: Settings, clock: FakeClock) -> AsyncIterator[str]:
    """nself-oncall over real HTTP (uvicorn in this loop), on the tests' fake clock."""
    port = free_port()
    config = uvicorn.Config(
        create_app(oncall_settings, clock=clock),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    async def started() -> bool | None:
        return server.started or None

    await until(started)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(task, 30)


@pytest.mark.parametrize("carry", ["url", "bearer"])
async def test_alertmanager_pages_through_the_webhook_receiver_and_resolves(
    client: httpx.AsyncClient,
    worker: Worker,
    sink: HttpSink,
    clock: FakeClock,
    served: str,
    am_api: Callable[..., Awaitable[httpx.AsyncClient]],
    carry: str,
) -> None:
    """The key in the receiver's URL, or as the bearer of its http_config."""
    H = auth_headers(f"acct-alertmanager-{carry}")
    await responder(client, sink, f"am-{carry}", H)
    made = await key(client, H, "alertmanager", f"am-{carry}")
    if carry == "url":
        am = await am_api(made["url"].replace("http://testserver", served))
    else:
        am = await am_api(f"{served}/api/v1/integrations/alertmanager", made["token"])
    try:
        posted = await am.post("/api/v2/alerts", json=am_alert())
        assert posted.status_code == 200, posted.text

        async def opened() -> dict[str, Any] | None:
            found = [a for a in await alerts(client, H) if a["integration_id"] == made["id"]]
            return found[0] if found else None

        alert = await until(opened)
        assert alert["summary"] == "Disk full on db1" and alert["status"] == "triggered"
        assert alert["severity"] == "critical"
        assert alert["details"]["labels"]["instance"] == "db1:9100"
        assert alert["details"]["fingerprint"]  # Alertmanager's own, the dedup key
        assert alert["dedup_key"] == f"{made['id']}:fp:{alert['details']['fingerprint']}"

        await worker.deliver(clock())
        [page] = sink.to(f"/am-{carry}")
        assert page.json()["alert"]["id"] == alert["id"]
        assert page.json()["alert"]["summary"] == "Disk full on db1"

        # the same alert again (Prometheus re-sends it every evaluation): one alert
        assert (await am.post("/api/v2/alerts", json=am_alert())).status_code == 200
        resolved = await am.post("/api/v2/alerts", json=am_alert(ends=datetime.now(UTC)))
        assert resolved.status_code == 200

        async def closed() -> dict[str, Any] | None:
            detail = await alert_detail(client, H, alert["id"])
            return detail if detail["status"] == "resolved" else None

        detail = await until(closed)
        assert detail["resolved_by"] == f"integration:{made['id']}"
        assert kinds(detail).count("triggered") == 1
        await worker.deliver(clock.advance(minutes=30))
        await worker.tick(clock())
        await worker.deliver(clock())
        assert len(sink.to(f"/am-{carry}")) == 1  # nothing more after the resolve
        assert len([a for a in await alerts(client, H) if a["integration_id"] == made["id"]]) == 1
    finally:
        await am.aclose()
