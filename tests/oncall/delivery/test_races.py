"""Outbox edge cases (issue 12, item 12), on the real Postgres with an injected clock.

* A notification whose worker dies on every attempt still ends: re-claimed once
  its lease ran out, it counts attempts, and past the limit it is
  `failed_permanent` instead of being sent again.
* An acknowledgement racing a claim: a notification claimed before the ack
  committed is not sent after it (the alert is read under a share lock right
  before the send; an ack in progress is waited for).

The interleavings are forced with hooks and database state, never with timers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from services.common.db import tenant_transaction
from services.common.settings import Settings
from services.oncall.alerts import service as alerts
from services.oncall.delivery import outbox
from services.oncall.delivery.channels import Result
from services.oncall.worker import Worker
from tests.conftest import auth_headers
from tests.oncall.helpers import FakeClock, HttpSink, webhook_responders

ACCOUNT = "acct-races"
H = auth_headers(ACCOUNT)
LEASE = timedelta(minutes=2)
PAST_LEASE = LEASE + timedelta(seconds=1)


@pytest.fixture(scope="module")
async def people(client: httpx.AsyncClient, sink: HttpSink) -> None:
    await webhook_responders(client, sink, ("doomed", "acked", "racing", "waiting", "rolled"), H)


async def trigger(client: httpx.AsyncClient, policy: str) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/alerts", json={"policy_id": policy, "summary": policy}, headers=H
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def detail(client: httpx.AsyncClient, alert_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/alerts/{alert_id}", headers=H)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def counted(status: str) -> float:
    value = REGISTRY.get_sample_value(
        "nsentry_notifications_total", {"channel": "webhook", "status": status}
    )
    return value or 0.0


async def test_a_notification_whose_worker_keeps_dying_ends_failed_permanent(
    people: None,
    client: httpx.AsyncClient,
    make_worker: Callable[..., Any],
    sink: HttpSink,
    clock: FakeClock,
) -> None:
    retry = outbox.RetryPolicy(max_attempts=2)
    workers: list[Worker] = [await make_worker(lease=LEASE, retry=retry) for _ in range(3)]
    alert = await trigger(client, "doomed")
    before = counted("failed_permanent")

    [first] = await workers[0].claim(clock())  # attempt 1; the worker dies before sending
    assert first.attempts == 1
    later = clock() + PAST_LEASE
    [second] = await workers[1].claim(later)  # attempt 2, the last; this worker dies too
    assert (second.attempts, second.idempotency_key) == (2, first.idempotency_key)

    last = later + PAST_LEASE
    report = await workers[2].deliver(last)
    assert report.claimed == 0  # not sent a third time
    assert sink.to("/doomed", status=None) == []
    [notification] = (found := await detail(client, alert["id"]))["notifications"]
    assert (notification["status"], notification["attempts"]) == ("failed_permanent", 2)
    assert notification["last_error"] == outbox.UNREPORTED
    event = found["timeline"][-1]
    assert event["kind"] == "notification_failed_permanent"
    assert event["details"]["gave_up_after"] == 2
    assert counted("failed_permanent") == before + 1
    # nothing is due any more, and the dead worker's late report changes nothing
    assert (await workers[2].deliver(last + timedelta(days=1))).claimed == 0
    assert await workers[1].finish(second, Result("sent", 200), last) is None


class AckAfterClaim(Worker):
    """A worker whose claims are followed, before any send starts, by `after_claim`:
    the acknowledgement commits between the claim and the send."""

    after_claim: Callable[[], Any] | None = None

    async def _claim(self, now: Any, limit: int) -> tuple[list[outbox.Claimed], int]:
        claimed = await super()._claim(now, limit)
        if claimed[0] and self.after_claim is not None:
            hook, self.after_claim = self.after_claim, None
            await hook()
        return claimed


async def test_an_ack_committed_after_the_claim_stops_the_send(
    people: None,
    client: httpx.AsyncClient,
    oncall_settings: Settings,
    sink: HttpSink,
    clock: FakeClock,
) -> None:
    worker = await AckAfterClaim.open(oncall_settings, lease=LEASE)
    try:
        alert = await trigger(client, "racing")

        async def ack() -> None:
            response = await client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=H)
            assert response.status_code == 200, response.text

        worker.after_claim = ack
        report = await worker.deliver(clock())
    finally:
        await worker.close()
    assert report.claimed == 1 and report.by_status == {"cancelled": 1}
    assert sink.to("/racing", status=None) == []
    found = await detail(client, alert["id"])
    [notification] = found["notifications"]
    assert (notification["status"], notification["attempts"]) == ("cancelled", 1)
    kinds = [e["kind"] for e in found["timeline"]]
    assert kinds.index("acknowledged") < kinds.index("notification_cancelled")
    assert "notification_sent" not in kinds
    [cancelled] = [e for e in found["timeline"] if e["kind"] == "notification_cancelled"]
    assert cancelled["details"] == {"alert_status": "acknowledged", "before_send": True}


async def test_a_claim_checked_after_a_resolve_is_not_sent(
    people: None,
    client: httpx.AsyncClient,
    make_worker: Callable[..., Any],
    sink: HttpSink,
    clock: FakeClock,
) -> None:
    worker: Worker = await make_worker(lease=LEASE)
    alert = await trigger(client, "acked")
    [item] = await worker.claim(clock())
    resolved = await client.post(f"/api/v1/alerts/{alert['id']}/resolve", headers=H)
    assert resolved.status_code == 200, resolved.text
    result = await worker.send(item)
    assert result.outcome == "cancelled"
    assert await worker.finish(item, result, clock()) == "cancelled"
    assert sink.to("/acked", status=None) == []
    [notification] = (await detail(client, alert["id"]))["notifications"]
    assert notification["status"] == "cancelled"


async def blocked_on_a_lock(pool: asyncpg.Pool, tries: int = 2000) -> None:
    """Until a backend waits for a row lock in the last check (a state, not a timer)."""
    for _ in range(tries):
        if await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE '%FOR SHARE%'"
        ):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the send never waited for the acknowledgement's lock")


@pytest.mark.parametrize("ack", ["commit", "rollback"])
async def test_the_last_check_waits_for_an_ack_in_progress(
    people: None,
    client: httpx.AsyncClient,
    make_worker: Callable[..., Any],
    sink: HttpSink,
    clock: FakeClock,
    ack: str,
) -> None:
    worker: Worker = await make_worker(lease=LEASE)
    other: Worker = await make_worker(lease=LEASE)  # a second pool for the ack
    policy = "waiting" if ack == "commit" else "rolled"
    alert = await trigger(client, policy)
    [item] = await worker.claim(clock())

    class Abort(Exception):
        pass

    send: asyncio.Task[Result] | None = None
    try:
        async with tenant_transaction(other.pool, ACCOUNT) as conn:
            await alerts.acknowledge(
                conn, account=ACCOUNT, alert_id=alert["id"], by="racer", now=clock()
            )
            # the ack holds the alert's row; the send's last check must wait for it
            send = asyncio.create_task(worker.send(item))
            await blocked_on_a_lock(other.pool)
            assert not send.done()
            if ack == "rollback":
                raise Abort
    except Abort:
        pass
    assert send is not None
    result = await send
    if ack == "commit":
        assert result.outcome == "cancelled"
        assert sink.to(f"/{policy}", status=None) == []
    else:
        assert result.outcome == "sent"
        [received] = sink.to(f"/{policy}")
        assert received.headers["idempotency-key"] == item.idempotency_key
    await worker.finish(item, result, clock())
    [notification] = (await detail(client, alert["id"]))["notifications"]
    assert notification["status"] == ("cancelled" if ack == "commit" else "sent")
