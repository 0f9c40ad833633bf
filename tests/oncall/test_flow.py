"""Escalation and delivery end to end: real Postgres, a real HTTP sink, a real SMTP server.

The engine is driven with `tick(now)` and explicit `deliver(now)` calls on a
fake clock; nothing sleeps.
"""

from __future__ import annotations

import email
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import httpx

from services.oncall.worker import Worker
from tests.conftest import auth_headers
from tests.oncall.helpers import SIGNING_SECRET, FakeClock, HttpSink, SmtpSink

ACCOUNT = "acct-flow"
H = auth_headers(ACCOUNT)


async def post(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], status: int = 201
) -> Any:
    response = await client.post(path, json=body, headers=H)
    assert response.status_code == status, response.text
    return response.json()


def valid_signature(received: Any) -> bool:
    expected = (
        "sha256=" + hmac.new(SIGNING_SECRET.encode(), received.body, hashlib.sha256).hexdigest()
    )
    return hmac.compare_digest(received.headers.get("x-signature", ""), expected)


async def timeline(client: httpx.AsyncClient, alert_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/alerts/{alert_id}", headers=H)
    assert response.status_code == 200, response.text
    return response.json()


async def test_escalates_to_step_two_then_ack_stops_everything(
    client: httpx.AsyncClient, worker: Worker, sink: HttpSink, clock: FakeClock
) -> None:
    await post(
        client,
        "/api/v1/people",
        {
            "id": "ada",
            "name": "Ada",
            "contact_methods": [{"type": "webhook", "url": sink.url("/ada")}],
        },
    )
    await post(
        client,
        "/api/v1/people",
        {
            "id": "bob",
            "name": "Bob",
            "contact_methods": [
                {"type": "webhook", "url": sink.url("/bob")},
                {"type": "email", "address": "bob@example.com", "delay_minutes": 5},
            ],
        },
    )
    await post(
        client,
        "/api/v1/schedules",
        {
            "id": "primary",
            "name": "Primary",
            "timezone": "Europe/Berlin",
            "layers": [
                {
                    "name": "week",
                    "rotation": {
                        "type": "weekly",
                        "handoff": "2026-11-23T09:00",
                        "participants": ["ada"],
                    },
                }
            ],
        },
    )
    await post(
        client,
        "/api/v1/policies",
        {
            "id": "two-step",
            "name": "Two steps",
            "steps": [
                {"delay_minutes": 15, "targets": [{"type": "schedule", "id": "primary"}]},
                {"delay_minutes": 15, "targets": [{"type": "person", "id": "bob"}]},
            ],
            "repeat": 1,
        },
    )
    t0 = clock()
    alert = await post(
        client,
        "/api/v1/alerts",
        {
            "policy_id": "two-step",
            "summary": "disk full on db-1",
            "details": {"host": "db-1", "used": 0.99},
            "severity": "critical",
            "dedup_key": "disk:db-1",
            "source": "test",
        },
    )
    assert alert["status"] == "triggered"

    report = await worker.deliver(clock())
    assert report.by_status == {"sent": 1}
    [first] = sink.to("/ada")
    assert valid_signature(first)
    assert first.headers["content-type"] == "application/json"
    body = first.json()
    assert body["alert"]["id"] == alert["id"] and body["alert"]["summary"] == "disk full on db-1"
    assert body["person"] == {"id": "ada", "name": "Ada"}
    assert first.headers["idempotency-key"] == body["idempotency_key"]

    # the same dedup key while open: the same alert, nobody notified again
    again = await post(
        client,
        "/api/v1/alerts",
        {"policy_id": "two-step", "summary": "disk full again", "dedup_key": "disk:db-1"},
        status=200,
    )
    assert again["id"] == alert["id"] and again["dedup_count"] == 1
    assert (await worker.deliver(clock())).claimed == 0

    # before the step delay nothing escalates
    clock.now = t0 + timedelta(minutes=14, seconds=59)
    assert await worker.tick(clock()) == 0
    assert (await worker.deliver(clock())).claimed == 0
    assert sink.to("/bob") == []

    # past the delay without an ack: step two fires
    clock.now = t0 + timedelta(minutes=15)
    assert await worker.tick(clock()) == 1
    assert (await worker.deliver(clock())).by_status == {"sent": 1}
    [second] = sink.to("/bob")
    assert valid_signature(second)
    assert second.json()["escalation"] == {"step": 1, "loop": 0}

    # ack: bob's delayed email is cancelled and the repeat loop never starts
    clock.now = t0 + timedelta(minutes=16)
    acked = (await client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=H)).json()
    assert acked["status"] == "acknowledged"
    before = len(sink.received)
    for minutes in (20, 31, 45, 90, 600):
        clock.now = t0 + timedelta(minutes=minutes)
        assert await worker.tick(clock()) == 0
        assert (await worker.deliver(clock())).claimed == 0
    assert len(sink.received) == before

    detail = await timeline(client, alert["id"])
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds[0] == "triggered"
    assert kinds.count("escalated") == 2
    assert "deduplicated" in kinds and "acknowledged" in kinds
    assert "notification_cancelled" in kinds
    statuses = sorted((n["person_id"], n["channel"], n["status"]) for n in detail["notifications"])
    assert statuses == [
        ("ada", "webhook", "sent"),
        ("bob", "email", "cancelled"),
        ("bob", "webhook", "sent"),
    ]
    # a new alert with the same key after resolve is a new alert
    await client.post(f"/api/v1/alerts/{alert['id']}/resolve", headers=H)
    fresh = await post(
        client,
        "/api/v1/alerts",
        {"policy_id": "two-step", "summary": "again", "dedup_key": "disk:db-1"},
    )
    assert fresh["id"] != alert["id"]
    await client.post(f"/api/v1/alerts/{fresh['id']}/resolve", headers=H)
    assert (await worker.deliver(clock())).by_status.get("sent", 0) == 0


async def test_email_reaches_a_real_smtp_server(
    client: httpx.AsyncClient, worker: Worker, smtp: SmtpSink, clock: FakeClock
) -> None:
    await post(
        client,
        "/api/v1/people",
        {
            "id": "eve",
            "name": "Eve",
            "contact_methods": [{"type": "email", "address": "eve@example.com"}],
        },
    )
    await post(
        client,
        "/api/v1/policies",
        {
            "id": "eve-only",
            "name": "Eve",
            "steps": [{"targets": [{"type": "person", "id": "eve"}]}],
        },
    )
    alert = await post(
        client,
        "/api/v1/alerts",
        {"policy_id": "eve-only", "summary": "queue backlog", "severity": "warning"},
    )
    assert (await worker.deliver(clock())).by_status == {"sent": 1}
    [mail] = smtp.messages
    assert mail["to"] == ["eve@example.com"]
    assert mail["from"] == "oncall@nsentry.test"
    parsed = email.message_from_bytes(mail["data"])
    assert parsed["Subject"] == "[WARNING] queue backlog"
    assert alert["id"] in parsed.get_payload()
    assert parsed["Idempotency-Key"]


async def test_retry_then_sent_and_4xx_is_permanent(
    client: httpx.AsyncClient, worker: Worker, sink: HttpSink, clock: FakeClock
) -> None:
    sink.script("/flaky", 500, 200)
    sink.script("/broken", 400)
    for pid in ("flaky", "broken"):
        await post(
            client,
            "/api/v1/people",
            {
                "id": pid,
                "name": pid,
                "contact_methods": [{"type": "webhook", "url": sink.url(f"/{pid}")}],
            },
        )
    await post(
        client,
        "/api/v1/policies",
        {
            "id": "flaky-broken",
            "name": "Both",
            "steps": [
                {"targets": [{"type": "person", "id": "flaky"}, {"type": "person", "id": "broken"}]}
            ],
        },
    )
    alert = await post(
        client, "/api/v1/alerts", {"policy_id": "flaky-broken", "summary": "retry me"}
    )
    first = await worker.deliver(clock())
    assert first.by_status == {"failed": 1, "failed_permanent": 1}
    # not due again until the backoff passes
    assert (await worker.deliver(clock.advance(seconds=10))).claimed == 0
    later = await worker.deliver(clock.advance(hours=1))
    assert later.by_status == {"sent": 1}
    assert len(sink.to("/flaky", None)) == 2 and len(sink.to("/flaky", 200)) == 1
    assert len(sink.to("/broken", None)) == 1
    keys = {r.headers["idempotency-key"] for r in sink.to("/flaky", None)}
    assert len(keys) == 1  # the retry carries the same key

    detail = await timeline(client, alert["id"])
    by_person = {n["person_id"]: n for n in detail["notifications"]}
    assert by_person["flaky"]["status"] == "sent" and by_person["flaky"]["attempts"] == 2
    assert by_person["broken"]["status"] == "failed_permanent"
    assert by_person["broken"]["last_status_code"] == 400
    events = [(e["kind"], e["details"].get("status_code")) for e in detail["timeline"]]
    assert ("notification_failed", 500) in events
    assert ("notification_sent", 200) in events
    assert ("notification_failed_permanent", 400) in events
    failed = next(e for e in detail["timeline"] if e["kind"] == "notification_failed")
    assert "retry_at" in failed["details"]
    assert json.dumps(detail)  # serialisable as returned


async def test_rate_limit_spreads_a_flood_and_ack_cancels_the_backlog(
    client: httpx.AsyncClient, worker: Worker, sink: HttpSink, clock: FakeClock
) -> None:
    await post(
        client,
        "/api/v1/people",
        {
            "id": "flooded",
            "name": "Flooded",
            "contact_methods": [
                {
                    "type": "webhook",
                    "url": sink.url("/flood"),
                    "rate_limit": {"max": 2, "per_seconds": 60},
                }
            ],
        },
    )
    await post(
        client,
        "/api/v1/policies",
        {
            "id": "flood",
            "name": "Flood",
            "steps": [{"targets": [{"type": "person", "id": "flooded"}]}],
        },
    )
    alerts = [
        await post(client, "/api/v1/alerts", {"policy_id": "flood", "summary": f"f{i}"})
        for i in range(5)
    ]
    t0 = clock()
    first = await worker.deliver(t0)
    assert first.by_status == {"sent": 2} and len(sink.to("/flood")) == 2
    assert (await worker.deliver(t0 + timedelta(seconds=29))).claimed == 0  # waiting for a token
    assert (await worker.deliver(t0 + timedelta(seconds=30))).by_status == {"sent": 1}
    # an ack cancels what is still waiting
    waiting = []
    for alert in alerts:
        detail = await timeline(client, alert["id"])
        if detail["notifications"][0]["status"] == "pending":
            waiting.append(alert["id"])
    assert len(waiting) == 2
    clock.now = t0 + timedelta(seconds=31)
    await client.post(f"/api/v1/alerts/{waiting[0]}/ack", headers=H)
    assert (await worker.deliver(t0 + timedelta(minutes=10))).by_status == {"sent": 1}
    assert len(sink.to("/flood")) == 4
    kinds = [e["kind"] for e in (await timeline(client, waiting[0]))["timeline"]]
    assert "notification_rate_limited" in kinds and kinds[-1] == "notification_cancelled"


async def test_slack_webhook_gets_text(
    client: httpx.AsyncClient, worker: Worker, sink: HttpSink, clock: FakeClock
) -> None:
    await post(
        client,
        "/api/v1/people",
        {
            "id": "chat",
            "name": "Chat",
            "contact_methods": [{"type": "slack", "url": sink.url("/slack")}],
        },
    )
    await post(
        client,
        "/api/v1/policies",
        {"id": "chat", "name": "Chat", "steps": [{"targets": [{"type": "person", "id": "chat"}]}]},
    )
    alert = await post(
        client,
        "/api/v1/alerts",
        {"policy_id": "chat", "summary": "p99 latency", "details": "over 2 s"},
    )
    assert (await worker.deliver(clock())).by_status == {"sent": 1}
    [message] = sink.to("/slack")
    text = message.json()["text"]
    assert "[CRITICAL]" in text and "p99 latency" in text and alert["id"] in text
    assert message.headers["idempotency-key"] and valid_signature(message)


async def test_destination_refused_at_send_time_is_permanent(
    client: httpx.AsyncClient, make_worker: Any, sink: HttpSink, clock: FakeClock, database_url: str
) -> None:
    from contextlib import aclosing

    from services.oncall.delivery.http import Connections
    from services.oncall.worker import default_channels
    from tests.conftest import make_settings

    await post(
        client,
        "/api/v1/people",
        {
            "id": "inside",
            "name": "Inside",
            "contact_methods": [{"type": "webhook", "url": sink.url("/inside")}],
        },
    )
    await post(
        client,
        "/api/v1/policies",
        {
            "id": "inside",
            "name": "Inside",
            "steps": [{"targets": [{"type": "person", "id": "inside"}]}],
        },
    )
    alert = await post(client, "/api/v1/alerts", {"policy_id": "inside", "summary": "ssrf?"})
    async with aclosing(Connections()) as http:
        strict = default_channels(make_settings(database_url, oncall_allowed_destinations=""), http)
        guarded: Worker = await make_worker(channels=strict)
        assert (await guarded.deliver(clock())).by_status == {"failed_permanent": 1}
    assert sink.to("/inside", None) == []
    [notification] = (await timeline(client, alert["id"]))["notifications"]
    assert notification["status"] == "failed_permanent"
    assert "ONCALL_ALLOWED_DESTINATIONS" in notification["last_error"]
    assert notification["destination"] == sink.base  # the path is not shown


async def test_refused_email_address_is_permanent(
    client: httpx.AsyncClient, worker: Worker, smtp: SmtpSink, clock: FakeClock
) -> None:
    smtp.handler.refuse.add("gone@example.com")
    await post(
        client,
        "/api/v1/people",
        {
            "id": "gone",
            "name": "Gone",
            "contact_methods": [{"type": "email", "address": "gone@example.com"}],
        },
    )
    await post(
        client,
        "/api/v1/policies",
        {"id": "gone", "name": "Gone", "steps": [{"targets": [{"type": "person", "id": "gone"}]}]},
    )
    alert = await post(client, "/api/v1/alerts", {"policy_id": "gone", "summary": "to nobody"})
    assert (await worker.deliver(clock())).by_status == {"failed_permanent": 1}
    [notification] = (await timeline(client, alert["id"]))["notifications"]
    assert notification["status"] == "failed_permanent" and notification["last_status_code"] == 550
