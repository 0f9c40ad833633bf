"""Paging through the outbox: a down on-call service delays a page, never loses it."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from services.anomaly.app import create_app
from services.anomaly.paging.sender import PageSender
from services.common.settings import Settings
from tests.anomaly.conftest import T0, FakeClock, create_detector, ingest, series, stamp
from tests.anomaly.oncall_standin import OncallStandIn, free_port
from tests.conftest import PLUGIN_SECRET, make_settings, serve_app


async def _outbox(settings: Settings) -> list[dict[str, object]]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch(
            "SELECT source_account_id, detector_id, kind, dedup_key, status, attempts, "
            "response_status, alert_id FROM np_anomaly_page_outbox ORDER BY id"
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]


async def test_pages_arrive_once_per_episode_after_oncall_comes_back(
    client: httpx.AsyncClient, settings: Settings, worker_pool: asyncpg.Pool
) -> None:
    oncall = OncallStandIn(free_port())  # not started: on-call is down
    async with httpx.AsyncClient() as http:
        sender = PageSender(
            worker_pool,
            oncall_url=oncall.url,
            secret=PLUGIN_SECRET,
            client=http,
            rng=random.Random(0),
        )
        await create_detector(
            client,
            "pager",
            algorithm="static",
            params={"upper": 10},
            thresholds={"cooldown_seconds": 600},
            escalation_policy_id="ops",
        )
        values = [1.0] * 60
        for i in (10, 11, 12, 15, 40, 41):  # episodes: 10-15 (cooldown) and 40-41
            values[i] = 20.0
        first = (await ingest(client, series("pager", values[:30]))).json()
        assert len(first["anomalies"]) == 4
        assert {a["episode_start"] for a in first["anomalies"]} == {stamp(10)}

        now = datetime.now(UTC) + timedelta(seconds=1)
        report = await sender.run_once(now)
        assert (report.claimed, report.sent, report.retried) == (1, 0, 1)
        assert (await sender.run_once(now)).claimed == 0  # backing off
        assert (await sender.run_once(now + timedelta(seconds=2.5))).retried == 1

        second = (await ingest(client, series("pager", values[30:], first=30))).json()
        assert {a["episode_start"] for a in second["anomalies"]} == {stamp(40)}
        await ingest(client, series("pager", values[:30]))  # duplicates: nothing new

        await oncall.start()
        try:
            report = await sender.run_once(now + timedelta(seconds=10))
            assert (report.sent, report.retried, report.failed) == (2, 0, 0)
            # both episodes ended (normal points past the cooldown): their resolves were
            # waiting for the alert ids, and go now
            report = await sender.run_once(now + timedelta(seconds=11))
            assert (report.claimed, report.sent) == (2, 2)
            assert (await sender.run_once(now + timedelta(hours=1))).claimed == 0
        finally:
            await oncall.stop()

    keys = [r.body["dedup_key"] for r in oncall.opened()]
    assert keys == [f"anomaly:primary:pager:{stamp(10)}", f"anomaly:primary:pager:{stamp(40)}"]
    assert sorted(r.path for r in oncall.resolved()) == [
        "/api/v1/alerts/1/resolve",
        "/api/v1/alerts/2/resolve",
    ]
    assert oncall.status == {1: "resolved", 2: "resolved"}
    request = oncall.requests[0]
    assert request.method == "POST" and request.path == "/api/v1/alerts"
    assert request.headers["authorization"] == f"Bearer {PLUGIN_SECRET}"
    assert request.headers["x-hasura-source-account-id"] == "primary"
    assert set(request.body) == {
        "policy_id",
        "summary",
        "details",
        "severity",
        "dedup_key",
        "source",
    }
    assert request.body["policy_id"] == "ops" and request.body["source"] == "nself-anomaly"
    assert request.body["severity"] == "critical"
    assert request.body["details"]["detector_id"] == "pager"
    assert request.body["details"]["timestamp"] == stamp(10)
    outbox = await _outbox(settings)
    assert [(r["kind"], r["status"], r["attempts"], r["response_status"]) for r in outbox] == [
        ("open", "sent", 3, 201),
        ("resolve", "sent", 1, 200),
        ("open", "sent", 1, 201),
        ("resolve", "sent", 1, 200),
    ]
    assert [r["alert_id"] for r in outbox] == ["1", "1", "2", "2"]


async def test_refused_pages_fail_and_throttled_ones_retry(
    client: httpx.AsyncClient, settings: Settings, worker_pool: asyncpg.Pool
) -> None:
    verdicts = {"nobody": 404, "busy": 429}
    oncall = OncallStandIn(free_port(), respond=lambda r: verdicts.get(r.body["policy_id"]))
    await oncall.start()
    try:
        async with httpx.AsyncClient() as http:
            sender = PageSender(
                worker_pool,
                oncall_url=oncall.url,
                secret=PLUGIN_SECRET,
                client=http,
                rng=random.Random(0),
            )
            for policy in ("nobody", "busy"):
                await create_detector(
                    client,
                    f"p-{policy}",
                    algorithm="static",
                    params={"upper": 1},
                    escalation_policy_id=policy,
                    account="acct-x",
                )
                await ingest(client, series(f"p-{policy}", [5.0]), account="acct-x")
            now = datetime.now(UTC) + timedelta(seconds=1)
            report = await sender.run_once(now)
            assert (report.sent, report.failed, report.retried) == (0, 1, 1)
            verdicts.pop("busy")
            report = await sender.run_once(now + timedelta(seconds=5))
            assert (report.sent, report.failed, report.retried) == (1, 0, 0)
            assert (await sender.run_once(now + timedelta(days=1))).claimed == 0
    finally:
        await oncall.stop()
    mine = [r for r in await _outbox(settings) if r["source_account_id"] == "acct-x"]
    assert [(r["detector_id"], r["status"]) for r in mine] == [
        ("p-nobody", "failed_permanent"),
        ("p-busy", "sent"),
    ]
    assert {r.headers["x-hasura-source-account-id"] for r in oncall.requests} == {"acct-x"}


async def test_the_lifetime_hook_sends_when_an_ingest_pages(database_url: str) -> None:
    oncall = OncallStandIn(free_port())
    await oncall.start()
    try:
        settings = make_settings(database_url, oncall_url=oncall.url)
        async with serve_app(create_app(settings, clock=FakeClock(T0))) as c:
            await create_detector(
                c, "hooked", algorithm="static", params={"upper": 1}, escalation_policy_id="ops"
            )
            await ingest(c, series("hooked", [9.0]))
            await asyncio.wait_for(oncall.received.wait(), timeout=20)
    finally:
        await oncall.stop()
    assert [r.body["dedup_key"] for r in oncall.requests] == [f"anomaly:primary:hooked:{stamp(0)}"]
