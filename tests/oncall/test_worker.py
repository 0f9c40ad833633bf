"""Crash safety and concurrency of delivery: leases, reclaim, several workers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.oncall.worker import Worker
from tests.conftest import auth_headers
from tests.oncall.helpers import FakeClock, HttpSink, webhook_responders

ACCOUNT = "acct-workers"
H = auth_headers(ACCOUNT)
LEASE = timedelta(minutes=2)


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Any:
    response = await client.post(path, json=body, headers=H)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
async def setup(client: httpx.AsyncClient, sink: HttpSink) -> None:
    await webhook_responders(client, sink, ("crash", "late", "many", "second"), H)
    await post(
        client,
        "/api/v1/policies",
        {
            "id": "two-steps",
            "name": "then second",
            "steps": [
                {"delay_minutes": 5, "targets": [{"type": "person", "id": "many"}]},
                {"targets": [{"type": "person", "id": "second"}]},
            ],
        },
    )


async def test_worker_dying_after_claim_loses_nothing(
    setup: None,
    client: httpx.AsyncClient,
    make_worker: Callable[..., Any],
    sink: HttpSink,
    clock: FakeClock,
) -> None:
    doomed: Worker = await make_worker(lease=LEASE)
    survivor: Worker = await make_worker(lease=LEASE)
    alert = await post(client, "/api/v1/alerts", {"policy_id": "crash", "summary": "crash test"})
    [claimed] = await doomed.claim(clock())
    # the doomed worker dies here: it never sends and never reports

    assert (await survivor.deliver(clock())).claimed == 0  # still leased
    report = await survivor.deliver(clock() + LEASE + timedelta(seconds=1))
    assert report.by_status == {"sent": 1}
    [received] = sink.to("/crash")
    assert received.headers["idempotency-key"] == claimed.idempotency_key

    detail = (await client.get(f"/api/v1/alerts/{alert['id']}", headers=H)).json()
    [notification] = detail["notifications"]
    assert notification["status"] == "sent" and notification["attempts"] == 2
    assert "notification_reclaimed" in [e["kind"] for e in detail["timeline"]]


async def test_worker_dying_after_send_repeats_with_the_same_key(
    setup: None,
    client: httpx.AsyncClient,
    make_worker: Callable[..., Any],
    sink: HttpSink,
    clock: FakeClock,
) -> None:
    doomed: Worker = await make_worker(lease=LEASE)
    survivor: Worker = await make_worker(lease=LEASE)
    await post(client, "/api/v1/alerts", {"policy_id": "late", "summary": "sent, then crash"})
    [claimed] = await doomed.claim(clock())
    result = await doomed.send(claimed)  # delivered, but the worker dies before recording it
    assert result.outcome == "sent"

    report = await survivor.deliver(clock() + LEASE + timedelta(seconds=1))
    assert report.by_status == {"sent": 1}
    deliveries = sink.to("/late")
    assert len(deliveries) == 2  # at-least-once...
    assert {d.headers["idempotency-key"] for d in deliveries} == {claimed.idempotency_key}
    assert deliveries[0].body == deliveries[1].body  # ...with the same key and body
    # the first worker's late report is ignored: the lease went to the survivor
    assert await doomed.finish(claimed, result, clock()) is None


async def test_two_workers_deliver_every_notification_once(
    setup: None,
    client: httpx.AsyncClient,
    make_worker: Callable[..., Any],
    sink: HttpSink,
    clock: FakeClock,
) -> None:
    one: Worker = await make_worker(batch=4, lease=LEASE)
    two: Worker = await make_worker(batch=4, lease=LEASE)
    alerts = [
        await post(client, "/api/v1/alerts", {"policy_id": "two-steps", "summary": f"storm {i}"})
        for i in range(24)
    ]
    first, second = await asyncio.gather(one.deliver(clock()), two.deliver(clock()))
    assert first.claimed > 0 and second.claimed > 0
    assert first.claimed + second.claimed == 24
    keys = Counter(r.headers["idempotency-key"] for r in sink.to("/many"))
    assert len(keys) == 24 and set(keys.values()) == {1}

    # escalation is claimed the same way: each alert's second step fires once
    later = clock() + timedelta(minutes=5)
    advanced = await asyncio.gather(one.tick(later), two.tick(later))
    assert sum(advanced) == 24
    assert await one.tick(later) == 0
    await asyncio.gather(one.deliver(later), two.deliver(later))
    keys = Counter(r.headers["idempotency-key"] for r in sink.to("/second"))
    assert len(keys) == 24 and set(keys.values()) == {1}
    alert_ids = {r.json()["alert"]["id"] for r in sink.to("/second")}
    assert alert_ids == {a["id"] for a in alerts}


async def test_worker_resolves_targets_within_the_alerts_account(
    client: httpx.AsyncClient, worker: Worker, sink: HttpSink, clock: FakeClock
) -> None:
    """Two accounts use the same ids; escalation in the worker sees only the alert's account."""
    for account, path, participant in (("acct-x", "/x-dup", "dup"), ("acct-y", "/y-dup", "only-y")):
        headers = auth_headers(account)
        for pid in {"dup", participant}:
            response = await client.post(
                "/api/v1/people",
                json={
                    "id": pid,
                    "name": f"{account} {pid}",
                    "contact_methods": [{"type": "webhook", "url": sink.url(path)}],
                },
                headers=headers,
            )
            assert response.status_code == 201, response.text
        schedule = {
            "id": "s",
            "name": "S",
            "timezone": "UTC",
            "layers": [
                {
                    "name": "l",
                    "rotation": {
                        "type": "daily",
                        "handoff": "2026-01-01T00:00",
                        "participants": [participant],
                    },
                }
            ],
        }
        assert (
            await client.post("/api/v1/schedules", json=schedule, headers=headers)
        ).status_code == 201
        policy = {
            "id": "p",
            "name": "P",
            "steps": [
                {"delay_minutes": 1, "targets": [{"type": "person", "id": "dup"}]},
                {"targets": [{"type": "schedule", "id": "s"}]},
            ],
        }
        assert (
            await client.post("/api/v1/policies", json=policy, headers=headers)
        ).status_code == 201
    alert = await client.post(
        "/api/v1/alerts", json={"policy_id": "p", "summary": "x"}, headers=auth_headers("acct-x")
    )
    assert alert.status_code == 201
    await worker.deliver(clock())
    assert await worker.tick(clock() + timedelta(minutes=1)) == 1
    await worker.deliver(clock() + timedelta(minutes=1))
    assert len(sink.to("/x-dup")) == 2 and sink.to("/y-dup") == []
    assert {r.json()["source_account_id"] for r in sink.to("/x-dup")} == {"acct-x"}


async def test_two_workers_sharing_rate_limit_buckets(
    client: httpx.AsyncClient, make_worker: Callable[..., Any], sink: HttpSink, clock: FakeClock
) -> None:
    """Workers lock the buckets of many destinations in one order: no deadlock, no double send."""
    paths = [f"/fan{i}" for i in range(4)]
    for i, path in enumerate(paths):
        await post(
            client,
            "/api/v1/people",
            {
                "id": f"fan{i}",
                "name": f"Fan {i}",
                "contact_methods": [{"type": "webhook", "url": sink.url(path)}],
            },
        )
    targets = [{"type": "person", "id": f"fan{i}"} for i in reversed(range(4))]
    await post(
        client, "/api/v1/policies", {"id": "fan", "name": "Fan", "steps": [{"targets": targets}]}
    )
    for i in range(12):
        await post(client, "/api/v1/alerts", {"policy_id": "fan", "summary": f"fan {i}"})
    workers = [await make_worker(batch=5, lease=LEASE) for _ in range(3)]
    reports = await asyncio.gather(*(w.deliver(clock()) for w in workers))
    assert sum(r.claimed for r in reports) == 48
    for path in paths:
        keys = Counter(r.headers["idempotency-key"] for r in sink.to(path))
        assert len(keys) == 12 and set(keys.values()) == {1}
