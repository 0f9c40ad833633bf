"""Batched writes and pipelined delivery: one statement per batch of outcomes, one per
escalation; claims go on while sends are in flight; several workers still send once."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.common.db import tenant_transaction
from services.oncall.delivery import outbox
from services.oncall.delivery.channels import Message, Result
from services.oncall.escalation import engine, runner
from services.oncall.worker import Worker
from tests.conftest import auth_headers
from tests.oncall.helpers import FakeClock, HttpSink, webhook_responders

ACCOUNT = "acct-batching"
H = auth_headers(ACCOUNT)
LEASE = timedelta(minutes=2)


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Any:
    response = await client.post(path, json=body, headers=H)
    assert response.status_code == 201, response.text
    return response.json()


async def detail(client: httpx.AsyncClient, alert_id: str) -> Any:
    response = await client.get(f"/api/v1/alerts/{alert_id}", headers=H)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
async def people(client: httpx.AsyncClient, sink: HttpSink) -> None:
    await webhook_responders(client, sink, ("batch", "slow", "fast", "pair"), H)


async def test_one_batch_of_outcomes_records_each_and_skips_lost_leases(
    people: None, client: httpx.AsyncClient, make_worker: Callable[..., Any], clock: FakeClock
) -> None:
    first: Worker = await make_worker(lease=LEASE)
    second: Worker = await make_worker(lease=LEASE)
    alerts = [
        await post(client, "/api/v1/alerts", {"policy_id": "batch", "summary": f"b{i}"})
        for i in range(4)
    ]
    claimed = await first.claim(clock())
    assert len(claimed) == 4
    # the lease of one runs out and the second worker takes it over
    [taken] = await second.claim(clock() + LEASE + timedelta(seconds=1), limit=1)
    assert taken.attempts == 2
    [lost] = [c for c in claimed if c.id == taken.id]
    sent, flaky, refused = [c for c in claimed if c.id != taken.id]

    statuses = await outbox.finish_many(
        first.pool,
        [
            (sent, Result("sent", 200)),
            (flaky, Result("retry", 503, "HTTP 503", retry_after=120)),
            (refused, Result("permanent", 404, "HTTP 404")),
            (lost, Result("sent", 200)),
        ],
        now=clock(),
        retry=outbox.RetryPolicy(),
        rng=random.Random(1),
    )
    assert statuses == ["sent", "failed", "failed_permanent", None]
    assert {str(c.alert_id) for c in claimed} == {a["id"] for a in alerts}

    async def one(item: outbox.Claimed) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        found = await detail(client, str(item.alert_id))
        return found["notifications"][0], found["timeline"]

    notification, events = await one(sent)
    assert notification["status"] == "sent" and events[-1]["kind"] == "notification_sent"
    notification, events = await one(flaky)
    assert notification["status"] == "failed" and notification["last_status_code"] == 503
    assert events[-1]["kind"] == "notification_failed"
    assert events[-1]["details"]["retry_at"] == (clock() + timedelta(seconds=120)).isoformat()
    notification, events = await one(refused)
    assert notification["status"] == "failed_permanent" and notification["last_error"] == "HTTP 404"
    assert events[-1]["kind"] == "notification_failed_permanent"
    # the late report of the first worker changed nothing: the row is the second's
    notification, events = await one(lost)
    kinds = [e["kind"] for e in events]
    assert notification["status"] == "sending" and notification["attempts"] == 2
    assert "notification_sent" not in kinds and kinds[-1] == "notification_reclaimed"
    assert await second.finish(taken, Result("sent", 200), clock()) == "sent"


async def test_an_escalation_written_twice_queues_and_records_once(
    people: None, client: httpx.AsyncClient, make_worker: Callable[..., Any], clock: FakeClock
) -> None:
    alert = await post(client, "/api/v1/alerts", {"policy_id": "pair", "summary": "again"})
    worker: Worker = await make_worker()
    policy = {"steps": [{"delay_minutes": 15, "targets": [{"type": "person", "id": "pair"}]}]}
    async with tenant_transaction(worker.pool, ACCOUNT) as conn:
        row = await conn.fetchrow(
            "SELECT id, policy_id, summary, details, severity, dedup_key, source, created_at "
            "FROM np_oncall.alerts WHERE id = $1::uuid",
            alert["id"],
        )
        state = await runner.escalate(
            conn,
            account=ACCOUNT,
            alert=row,
            policy={**policy, "repeat": 0},
            state=engine.start(clock()),
            now=clock(),
        )
    assert state is None  # one step, no repeat: exhausted, no state row kept
    found = await detail(client, alert["id"])
    assert len(found["notifications"]) == 1
    kinds = [e["kind"] for e in found["timeline"]]
    assert kinds == [
        "triggered",
        "escalated",
        "notification_queued",
        "escalation_exhausted",
        "escalated",
        "escalation_exhausted",
    ]
    async with worker.pool.acquire() as conn:
        kept = await conn.fetchval(
            "SELECT count(*) FROM np_oncall.escalations WHERE alert_id = $1::uuid", alert["id"]
        )
    assert kept == 0
    assert (await worker.deliver(clock())).by_status == {"sent": 1}


class _Gated:
    """A webhook channel whose one slow path is held until every fast send has started
    (no wall-clock sleep): a worker that waited for the slow send before claiming more
    would never start them, and the slow send would give up after ``patience``."""

    name = "webhook"

    def __init__(self, slow_path: str, fast: int, patience: float = 30.0) -> None:
        self.slow_path = slow_path
        self.fast = fast
        self.patience = patience
        self.release = asyncio.Event()
        self.fast_started: list[str] = []
        self.order: list[str] = []  # ends, in order
        self.slow: str | None = None

    async def send(self, message: Message) -> Result:
        if message.destination.endswith(self.slow_path):
            self.slow = message.notification_id
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), self.patience)
        else:
            self.fast_started.append(message.notification_id)
            if len(self.fast_started) == self.fast:
                self.release.set()
        self.order.append(message.notification_id)
        return Result("sent", 200)


async def test_a_slow_destination_does_not_hold_up_the_next_claims(
    people: None, client: httpx.AsyncClient, make_worker: Callable[..., Any], clock: FakeClock
) -> None:
    await post(client, "/api/v1/alerts", {"policy_id": "slow", "summary": "slow first"})
    for i in range(9):
        await post(client, "/api/v1/alerts", {"policy_id": "fast", "summary": f"fast {i}"})
    channel = _Gated("/slow", fast=9)
    worker: Worker = await make_worker(channels={"webhook": channel}, batch=2, concurrency=2)
    report = await worker.deliver(clock())
    assert report.claimed == 10 and report.by_status == {"sent": 10}
    # the nine fast ones of later claims were all sent while the slow one was in flight
    assert channel.release.is_set() and channel.slow is not None
    assert channel.order[-1] == channel.slow and len(channel.fast_started) == 9


async def test_two_pipelined_workers_with_small_batches_send_each_once(
    people: None,
    client: httpx.AsyncClient,
    make_worker: Callable[..., Any],
    sink: HttpSink,
    clock: FakeClock,
) -> None:
    alerts = [
        await post(client, "/api/v1/alerts", {"policy_id": "fast", "summary": f"storm {i}"})
        for i in range(30)
    ]
    one: Worker = await make_worker(batch=3, concurrency=2, lease=LEASE)
    two: Worker = await make_worker(batch=3, concurrency=2, lease=LEASE)
    first, second = await asyncio.gather(one.deliver(clock()), two.deliver(clock()))
    assert first.claimed > 0 and second.claimed > 0
    assert first.claimed + second.claimed == 30
    assert first.by_status["sent"] + second.by_status["sent"] == 30
    mine = {a["id"] for a in alerts}
    keys = Counter(
        r.headers["idempotency-key"] for r in sink.to("/fast") if r.json()["alert"]["id"] in mine
    )
    assert len(keys) == 30 and set(keys.values()) == {1}
    for alert in alerts[:5]:
        kinds = [e["kind"] for e in (await detail(client, alert["id"]))["timeline"]]
        assert kinds.count("notification_sent") == 1
