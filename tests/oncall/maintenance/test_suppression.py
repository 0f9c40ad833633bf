"""Must-show: a maintenance window suppresses new alerts (recorded, nobody notified),
cancels the pending notifications of alerts in its scope as an ack does, and releases
what still fires at its end, whose escalation starts then. The worker is driven on a
fake clock (`tick(now)`, `deliver(now)`); nothing sleeps."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from services.common import db
from services.oncall.worker import Worker
from tests.conftest import auth_headers
from tests.oncall.helpers import FakeClock, HttpSink, created
from tests.oncall.integrations.helpers import alert_detail, key, kinds, responder


async def maintenance(
    client: httpx.AsyncClient, headers: dict[str, str], start: Any, end: Any, **scope: str
) -> Any:
    body = {"start": start.isoformat(), "end": end.isoformat(), **scope}
    return await created(client, "/api/v1/maintenance", body, headers)


async def alert(
    client: httpx.AsyncClient, headers: dict[str, str], policy: str, **extra: Any
) -> Any:
    return await created(
        client, "/api/v1/alerts", {"policy_id": policy, "summary": "disk", **extra}, headers
    )


async def delayed_responder(
    client: httpx.AsyncClient, sink: HttpSink, pid: str, headers: dict[str, str]
) -> None:
    """A person paged 5 minutes after the step fires (so a notification stays pending)."""
    await created(
        client,
        "/api/v1/people",
        {
            "id": pid,
            "name": pid,
            "contact_methods": [
                {"type": "webhook", "url": sink.url(f"/{pid}"), "delay_minutes": 5}
            ],
        },
        headers,
    )
    steps = [{"delay_minutes": 60, "targets": [{"type": "person", "id": pid}]}]
    await created(client, "/api/v1/policies", {"id": pid, "name": pid, "steps": steps}, headers)


async def test_alerts_in_a_window_are_suppressed_and_released_at_its_end(
    client: httpx.AsyncClient, worker: Worker, sink: HttpSink, clock: FakeClock
) -> None:
    H = auth_headers("acct-maint-1")
    await responder(client, sink, "sup-ada", H)
    start = clock()
    end = start + timedelta(hours=1)
    window = await maintenance(client, H, start, end, policy_id="sup-ada")

    firing = await alert(client, H, "sup-ada", dedup_key="disk")
    assert firing["status"] == "suppressed" and firing[
        "suppressed_at"
    ] == start.isoformat().replace("+00:00", "Z")
    detail = await alert_detail(client, H, firing["id"])
    assert kinds(detail) == ["triggered", "suppressed"]
    assert detail["timeline"][1]["details"] == {"window_id": window["id"]}
    assert detail["notifications"] == []
    # a repeat is deduplicated into the suppressed alert
    repeat = await client.post(
        "/api/v1/alerts",
        json={"policy_id": "sup-ada", "summary": "disk", "dedup_key": "disk"},
        headers=H,
    )
    assert repeat.status_code == 200 and repeat.json()["id"] == firing["id"]
    gone = await alert(client, H, "sup-ada", summary="resolved during the window")
    acked = await alert(client, H, "sup-ada", summary="acked during the window")
    assert (await client.post(f"/api/v1/alerts/{gone['id']}/resolve", headers=H)).status_code == 200
    acking = await client.post(f"/api/v1/alerts/{acked['id']}/ack", headers=H)
    assert acking.status_code == 200 and acking.json()["status"] == "acknowledged"

    for minutes in (10, 30, 59):  # the worker runs throughout: nobody is paged
        await worker.tick(start + timedelta(minutes=minutes))
        await worker.deliver(start + timedelta(minutes=minutes))
    assert sink.to("/sup-ada") == []
    assert (await alert_detail(client, H, firing["id"]))["status"] == "suppressed"

    released_at = clock.set(end)
    await worker.tick(released_at)  # the window's end: released, escalation starts now
    await worker.deliver(released_at)
    detail = await alert_detail(client, H, firing["id"])
    assert detail["status"] == "triggered" and detail["suppressed_at"] is None
    assert kinds(detail)[:5] == ["triggered", "suppressed", "deduplicated", "released", "escalated"]
    released = [e for e in detail["timeline"] if e["kind"] == "released"][0]
    assert released["at"].startswith(end.isoformat()[:19])
    [page] = sink.to("/sup-ada")
    assert page.json()["alert"]["id"] == firing["id"]
    [notification] = detail["notifications"]
    assert notification["status"] == "sent" and notification["not_before"].startswith(
        end.isoformat()[:19]
    )
    # resolved and acknowledged alerts stay as they are
    assert (await alert_detail(client, H, gone["id"]))["status"] == "resolved"
    assert (await alert_detail(client, H, acked["id"]))["status"] == "acknowledged"

    after = await alert(client, H, "sup-ada", summary="after the window")
    assert after["status"] == "triggered"


async def test_a_window_that_begins_cancels_pending_notifications_as_ack_does(
    client: httpx.AsyncClient, worker: Worker, sink: HttpSink, clock: FakeClock
) -> None:
    H = auth_headers("acct-maint-2")
    await delayed_responder(client, sink, "sup-bob", H)
    t0 = clock()
    firing = await alert(client, H, "sup-bob")
    [pending] = (await alert_detail(client, H, firing["id"]))["notifications"]
    assert pending["status"] == "pending"  # due at t0 + 5 min
    # a window from t0 + 2 min to t0 + 30 min, created ahead of time
    await maintenance(
        client, H, t0 + timedelta(minutes=2), t0 + timedelta(minutes=30), policy_id="sup-bob"
    )
    await worker.tick(t0 + timedelta(minutes=1))
    assert (await alert_detail(client, H, firing["id"]))["status"] == "triggered"

    await worker.tick(t0 + timedelta(minutes=2))  # it begins
    detail = await alert_detail(client, H, firing["id"])
    assert detail["status"] == "suppressed"
    assert [n["status"] for n in detail["notifications"]] == ["cancelled"]
    assert kinds(detail)[-2:] == ["suppressed", "notification_cancelled"]
    await worker.tick(t0 + timedelta(minutes=3))  # applied once per occurrence
    assert kinds(await alert_detail(client, H, firing["id"])).count("suppressed") == 1
    await worker.deliver(t0 + timedelta(minutes=6))
    await worker.tick(t0 + timedelta(minutes=20))
    assert sink.to("/sup-bob") == []

    end = t0 + timedelta(minutes=30)
    clock.set(end)
    await worker.tick(end)
    await worker.deliver(end + timedelta(minutes=4))
    assert sink.to("/sup-bob") == []  # its new notification waits its 5 minutes
    await worker.deliver(end + timedelta(minutes=5))
    [page] = sink.to("/sup-bob")
    assert page.json()["alert"]["id"] == firing["id"]
    statuses = [n["status"] for n in (await alert_detail(client, H, firing["id"]))["notifications"]]
    assert statuses == ["cancelled", "sent"]


async def test_a_recurring_window_suppresses_during_its_occurrences_only(
    client: httpx.AsyncClient, worker: Worker, sink: HttpSink, clock: FakeClock
) -> None:
    H = auth_headers("acct-maint-3")
    await responder(client, sink, "sup-cy", H)
    t0 = clock()
    await created(
        client,
        "/api/v1/maintenance",
        {
            "policy_id": "sup-cy",
            "start": (t0 + timedelta(hours=1)).isoformat(),
            "end": (t0 + timedelta(hours=2)).isoformat(),
            "rrule": "FREQ=DAILY",
        },
        H,
    )
    expected = {
        0: "triggered",
        90: "suppressed",
        180: "triggered",
        1530: "suppressed",
        1570: "triggered",
    }
    for minutes, status in expected.items():
        clock.set(t0 + timedelta(minutes=minutes))
        made = await alert(client, H, "sup-cy", summary=f"at +{minutes} min")
        assert made["status"] == status, (minutes, made)
        await worker.tick(clock())
    # each suppressed one was released when its occurrence ended
    listed = (await client.get("/api/v1/alerts", params={"limit": 100}, headers=H)).json()["data"]
    assert {a["status"] for a in listed} == {"triggered"}


async def test_windows_on_an_integration_and_on_a_detector(
    client: httpx.AsyncClient, sink: HttpSink, clock: FakeClock, database_url: str
) -> None:
    H = auth_headers("acct-maint-4")
    await responder(client, sink, "sup-dan", H)
    quiet = await key(client, H, "generic", "sup-dan")
    loud = await key(client, H, "generic", "sup-dan")
    owner = await db.connect(database_url)
    try:
        async with owner.transaction():
            await db.set_tenant(owner, "acct-maint-4")
            await owner.execute(
                "INSERT INTO public.np_anomaly_detectors (source_account_id, id, name) "
                "VALUES ('acct-maint-4', 'cpu', 'CPU')"
            )
    finally:
        await owner.close()
    now = clock()
    await maintenance(client, H, now, now + timedelta(hours=1), integration_id=quiet["id"])
    await maintenance(client, H, now, now + timedelta(hours=1), detector_id="cpu")

    async def generic(made: dict[str, Any]) -> Any:
        response = await client.post(
            "/api/v1/integrations/generic", params={"token": made["token"], "summary": "x"}
        )
        assert response.status_code == 201, response.text
        return response.json()

    assert (await generic(quiet))["action"] == "suppressed"
    assert (await generic(loud))["action"] == "opened"
    anomaly = {"source": "nself-anomaly", "summary": "Anomaly on CPU"}
    paged = await alert(client, H, "sup-dan", details={"detector_id": "cpu"}, **anomaly)
    assert paged["status"] == "suppressed"
    other = await alert(client, H, "sup-dan", details={"detector_id": "mem"}, **anomaly)
    assert other["status"] == "triggered"
    # a detector id in the details of an alert from elsewhere is no detector's page
    manual = await alert(client, H, "sup-dan", details={"detector_id": "cpu"}, source="me")
    assert manual["status"] == "triggered"


async def test_deleting_a_window_releases_what_it_alone_suppressed(
    client: httpx.AsyncClient, worker: Worker, sink: HttpSink, clock: FakeClock
) -> None:
    H = auth_headers("acct-maint-5")
    await responder(client, sink, "sup-eve", H)
    now = clock()
    one = await maintenance(client, H, now, now + timedelta(hours=1), policy_id="sup-eve")
    two = await maintenance(client, H, now, now + timedelta(hours=2), policy_id="sup-eve")
    firing = await alert(client, H, "sup-eve")
    assert firing["status"] == "suppressed"
    assert (await client.delete(f"/api/v1/maintenance/{one['id']}", headers=H)).status_code == 204
    assert (await alert_detail(client, H, firing["id"]))["status"] == "suppressed"  # two holds
    assert (await client.delete(f"/api/v1/maintenance/{two['id']}", headers=H)).status_code == 204
    detail = await alert_detail(client, H, firing["id"])
    assert detail["status"] == "triggered" and "released" in kinds(detail)
    await worker.deliver(clock())
    assert [p.json()["alert"]["id"] for p in sink.to("/sup-eve")] == [firing["id"]]


async def test_another_accounts_window_suppresses_nothing_here(
    client: httpx.AsyncClient, sink: HttpSink, clock: FakeClock
) -> None:
    mine, theirs = auth_headers("acct-maint-6"), auth_headers("acct-maint-7")
    for headers in (mine, theirs):
        await responder(client, sink, "sup-same", headers)
    now = clock()
    await maintenance(client, theirs, now, now + timedelta(hours=1), policy_id="sup-same")
    assert (await alert(client, mine, "sup-same"))["status"] == "triggered"
    assert (await alert(client, theirs, "sup-same"))["status"] == "suppressed"
