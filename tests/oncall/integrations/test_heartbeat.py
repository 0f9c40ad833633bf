"""Heartbeat keys with the worker on a fake clock: a missed interval opens one alert
that pages; the next ping resolves it. No sleeping: the clock is moved."""

from __future__ import annotations

import httpx

from services.oncall.worker import Worker
from tests.conftest import auth_headers
from tests.oncall.helpers import FakeClock, HttpSink
from tests.oncall.integrations.helpers import alert_detail, alerts, key, responder

H = auth_headers("acct-heartbeat")


async def ping(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/integrations/heartbeat", params={"token": token})


async def test_missed_heartbeat_opens_one_alert_and_the_next_ping_resolves_it(
    client: httpx.AsyncClient, worker: Worker, sink: HttpSink, clock: FakeClock
) -> None:
    await responder(client, sink, "beat-ada", H)
    made = await key(client, H, "heartbeat", "beat-ada", interval_seconds=300)

    # never pinged: not watched, however long it stays quiet
    await worker.tick(clock.advance(hours=1))
    assert await alerts(client, H) == []

    first = await ping(client, made["token"])
    assert first.status_code == 200, first.text
    assert first.json()["results"] == [{"action": "ping", "dedup_key": None, "alert": None}]
    pinged_at = clock()
    shown = (await client.get(f"/api/v1/integrations/{made['id']}", headers=H)).json()
    assert shown["last_ping_at"] is not None and shown["heartbeat_due_at"] is not None

    await worker.tick(clock.advance(seconds=299))  # still within the interval
    assert await alerts(client, H) == []

    await worker.tick(clock.advance(seconds=1))  # the deadline: missed
    [alert] = await alerts(client, H)
    assert alert["summary"] == "Heartbeat missed: heartbeat key"
    assert alert["integration_id"] == made["id"] and alert["status"] == "triggered"
    assert alert["details"]["last_ping_at"] == pinged_at.isoformat()
    await worker.deliver(clock())
    assert [p.json()["alert"]["id"] for p in sink.to("/beat-ada")] == [alert["id"]]

    for _ in range(3):  # still quiet: no second alert, nobody paged again
        await worker.tick(clock.advance(minutes=10))
        await worker.deliver(clock())
    assert len(await alerts(client, H)) == 1 and len(sink.to("/beat-ada")) == 1

    back = await ping(client, made["token"])
    results = back.json()["results"]
    assert [r["action"] for r in results] == ["ping", "closed"]
    detail = await alert_detail(client, H, alert["id"])
    assert detail["status"] == "resolved"

    # watched again from this ping: the next miss is a new alert
    await worker.tick(clock.advance(seconds=301))
    opened = await alerts(client, H, status="triggered")
    assert len(opened) == 1 and opened[0]["id"] != alert["id"]


async def test_a_deleted_heartbeat_stops_being_watched(
    client: httpx.AsyncClient, worker: Worker, sink: HttpSink, clock: FakeClock
) -> None:
    headers = auth_headers("acct-heartbeat-gone")
    await responder(client, sink, "beat-bob", headers)
    made = await key(client, headers, "heartbeat", "beat-bob", interval_seconds=60)
    assert (await ping(client, made["token"])).status_code == 200
    assert (
        await client.delete(f"/api/v1/integrations/{made['id']}", headers=headers)
    ).status_code == 204
    assert (await ping(client, made["token"])).status_code == 401
    await worker.tick(clock.advance(minutes=5))
    assert await alerts(client, headers) == []
