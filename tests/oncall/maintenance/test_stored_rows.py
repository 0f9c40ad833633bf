"""Rows the API would refuse, written with SQL (a rule or zone that does not parse, a
heartbeat without an interval), break nothing: not the alert, not the list, not the
worker's pass for the other rows."""

from __future__ import annotations

from datetime import timedelta

import httpx

from services.common import db
from services.oncall.integrations import tokens
from services.oncall.worker import Worker
from tests.conftest import auth_headers
from tests.oncall.helpers import FakeClock, HttpSink, created
from tests.oncall.integrations.helpers import alerts, key, responder

ACCOUNT = "acct-maint-stored"
H = auth_headers(ACCOUNT)


async def test_unreadable_windows_and_heartbeats_are_ignored(
    client: httpx.AsyncClient, worker: Worker, sink: HttpSink, clock: FakeClock, database_url: str
) -> None:
    await responder(client, sink, "stored", H)
    good = await key(client, H, "heartbeat", "stored", interval_seconds=60)
    now = clock()
    owner = await db.connect(database_url)
    try:
        async with owner.transaction():
            await db.set_tenant(owner, ACCOUNT)
            for rule, zone in (("FREQ=WEEKLY;BYDAY=XX", "UTC"), ("FREQ=DAILY", "Nowhere/Void")):
                await owner.execute(
                    "INSERT INTO np_oncall.maintenance_windows (source_account_id, name, "
                    "policy_id, start_at, end_at, rrule, timezone, created_at) "
                    "VALUES ($1, 'broken', 'stored', $2, $3, $4, $5, $2)",
                    ACCOUNT,
                    now - timedelta(hours=1),
                    now + timedelta(hours=1),
                    rule,
                    zone,
                )
            minted = tokens.mint()
            await owner.execute(
                "INSERT INTO np_oncall.integrations (source_account_id, name, type, policy_id, "
                "selector, token_hash, settings, last_ping_at, heartbeat_due_at, created_at) "
                "VALUES ($1, 'no interval', 'heartbeat', 'stored', $2, $3, '{}', $4, $4, $4)",
                ACCOUNT,
                minted.selector,
                minted.token_hash,
                now - timedelta(hours=1),
            )
    finally:
        await owner.close()

    listed = await client.get("/api/v1/maintenance", headers=H)
    assert listed.status_code == 200
    assert [w["active"] for w in listed.json()["data"]] == [None, None]
    firing = await created(client, "/api/v1/alerts", {"policy_id": "stored", "summary": "x"}, H)
    assert firing["status"] == "triggered"

    pinged = await client.post("/api/v1/integrations/heartbeat", params={"token": good["token"]})
    assert pinged.status_code == 200
    await worker.tick(clock.advance(minutes=2))  # the good heartbeat is missed
    missed = [a for a in await alerts(client, H) if a["integration_id"] == good["id"]]
    assert len(missed) == 1 and missed[0]["summary"].startswith("Heartbeat missed")
    await worker.deliver(clock())
    assert len(sink.to("/stored")) == 2  # the alert above and the missed heartbeat
