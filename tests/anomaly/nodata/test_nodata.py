"""No-data alerts against the embedded Postgres and the on-call stand-in (a real HTTP
server): the no-data pass (`NoDataCheck.run_once(now)`, time injected) records one
`no_data` anomaly per silence and pages it; data coming back ends the silence and
resolves the alert; the lifetime hook does the same on the app's clock.

Each test has an account of its own (the pass and the page sender work across accounts,
so the stand-in's requests are told apart by the account header)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import httpx

from services.anomaly.app import create_app
from services.anomaly.nodata.worker import NoDataCheck
from tests.anomaly.conftest import T0, FakeClock, create_detector, ingest, send_pages, stamp
from tests.anomaly.oncall_standin import OncallStandIn, Received
from tests.conftest import auth_headers, make_settings, serve_app

MINUTE = timedelta(minutes=1)


def points(detector_id: str, instance: str, first: int, last: int) -> list[dict[str, Any]]:
    """One point a minute from minute `first` to `last` (inclusive), values near 100."""
    return [
        {
            "detector_id": detector_id,
            "value": 100.0 + (i % 3),
            "timestamp": stamp(i),
            "labels": {"instance": instance},
        }
        for i in range(first, last + 1)
    ]


def of(account: str, requests: list[Received]) -> list[Received]:
    return [r for r in requests if r.headers.get("x-hasura-source-account-id") == account]


async def anomalies(client: httpx.AsyncClient, account: str, **params: str) -> list[dict[str, Any]]:
    answer = await client.get("/api/v1/anomalies", params=params, headers=auth_headers(account))
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]  # type: ignore[no-any-return]


async def test_a_series_that_stops_records_one_no_data_anomaly_pages_once_and_resolves(
    anomaly: httpx.AsyncClient, worker_pool: asyncpg.Pool, standin: OncallStandIn
) -> None:
    account = "nd-one"
    await create_detector(
        anomaly,
        "fleet",
        account=account,
        name="API latency",
        algorithm="mad",
        group_by=["instance"],
        escalation_policy_id="ops",
        no_data_seconds=900,
    )
    # a and b report every minute from T0 to minute 29; then only a, until minute 50
    for body in (
        points("fleet", "a", 0, 29) + points("fleet", "b", 0, 29),
        points("fleet", "a", 30, 50),
    ):
        answer = await ingest(anomaly, body, account=account)
        assert answer.status_code == 200, answer.text
    check = NoDataCheck(worker_pool)

    # minute 43: b silent 14 min, short of 15: nothing yet
    await check.run_once(T0 + 43 * MINUTE)
    assert await anomalies(anomaly, account) == []

    # minute 45: b silent 16 min: one no_data anomaly for b
    now = T0 + 45 * MINUTE
    await check.run_once(now)
    (found,) = await anomalies(anomaly, account)
    assert found["kind"] == "no_data"
    assert found["labels"] == {"instance": "b"}
    assert found["timestamp"] == stamp(45)
    assert found["explanation"] == (
        "no data for 16 min since 2026-11-01T00:29:00Z; expected every ~60 s"
    )
    assert found["value"] == 100.0 + 29 % 3  # its last value
    assert found["severity"] == "critical"
    assert await anomalies(anomaly, account, label="instance=a") == []
    assert await anomalies(anomaly, account, kind="point") == []
    assert [a["id"] for a in await anomalies(anomaly, account, kind="no_data")] == [found["id"]]
    listed = await anomaly.get("/api/v1/detectors/fleet/series", headers=auth_headers(account))
    silent = {s["labels"]["instance"]: s["no_data_since"] for s in listed.json()["data"]}
    assert silent == {"a": None, "b": stamp(29)}

    # checks while b stays silent record nothing more: one anomaly per silence
    for minutes in (46, 50, 60):
        await check.run_once(T0 + minutes * MINUTE)
    assert len(await anomalies(anomaly, account)) == 1

    # the page: one alert naming b, its key including the series
    await send_pages(worker_pool, standin, now)
    (page,) = of(account, standin.opened())
    assert page.body["dedup_key"] == (
        f'anomaly:{account}:fleet:{{"instance":"b"}}:no_data:{stamp(45)}'
    )
    assert page.body["summary"].startswith('No data on API latency {instance="b"}: no data for')
    assert page.body["severity"] == "critical"
    assert page.body["details"]["labels"] == {"instance": "b"}
    assert page.body["details"]["kind"] == "no_data"
    assert page.body["details"]["last_point_at"] == stamp(29)
    alert_id = standin.alerts[page.body["dedup_key"]]

    # b reports again (minute 61): the silence ends at the next check, the alert resolves
    back = await ingest(anomaly, points("fleet", "b", 61, 62), account=account)
    assert back.status_code == 200, back.text
    await check.run_once(T0 + 63 * MINUTE)
    await send_pages(worker_pool, standin, T0 + 63 * MINUTE)
    (resolve,) = of(account, standin.resolved())
    assert resolve.path == f"/api/v1/alerts/{alert_id}/resolve"
    listed = await anomaly.get("/api/v1/detectors/fleet/series", headers=auth_headers(account))
    assert [s["no_data_since"] for s in listed.json()["data"]] == [None, None]
    assert len(of(account, standin.opened())) == 1
    detail = await anomaly.get(f"/api/v1/anomalies/{found['id']}", headers=auth_headers(account))
    assert detail.json()["context"]["ended_by"] == "data"
    assert detail.json()["context"]["ended_at"] == stamp(61)
    outbox = await worker_pool.fetch(
        "SELECT kind, summary, details FROM np_anomaly_page_outbox "
        "WHERE source_account_id = $1 ORDER BY id",
        account,
    )
    assert [r["kind"] for r in outbox] == ["open", "resolve"]
    assert outbox[1]["summary"] == (
        f'Recovered: API latency {{instance="b"}} reporting again at {stamp(61)}'
    )

    # a silence after that is a new one: a second anomaly and a second alert
    await check.run_once(T0 + 80 * MINUTE)
    found = await anomalies(anomaly, account, label="instance=b")
    assert [a["timestamp"] for a in found] == [stamp(80), stamp(45)]
    series = await anomaly.get("/api/v1/detectors/fleet/series", headers=auth_headers(account))
    counts = {s["labels"]["instance"]: s["counts"]["anomalies"] for s in series.json()["data"]}
    # a went quiet at minute 50 too: its own silence, recorded at minute 80
    assert counts == {"a": 1, "b": 2}


async def test_without_no_data_seconds_or_a_first_point_nothing_is_recorded(
    anomaly: httpx.AsyncClient, worker_pool: asyncpg.Pool
) -> None:
    account = "nd-off"
    await create_detector(
        anomaly, "plain", account=account, algorithm="mad", escalation_policy_id="ops"
    )
    await ingest(
        anomaly,
        [{"detector_id": "plain", "value": 1.0, "timestamp": stamp(i)} for i in range(5)],
        account=account,
    )
    # a watching detector with no points at all, and one whose series never reported (a
    # series row without a last point, as the series migration leaves for such detectors)
    for detector_id in ("empty", "legacy"):
        await create_detector(
            anomaly, detector_id, account=account, no_data_seconds=60, escalation_policy_id="ops"
        )
    await worker_pool.execute(
        "INSERT INTO np_anomaly_series (source_account_id, detector_id, series_key) "
        "VALUES ($1, 'legacy', '{}')",
        account,
    )
    check = NoDataCheck(worker_pool)
    for hours in (1, 24, 24 * 40):
        await check.run_once(T0 + timedelta(hours=hours))
    assert await anomalies(anomaly, account) == []
    # turning it on later: the series silent for days records its silence, paging nobody
    # though the detector pages: the silence began longer than page_max_age_seconds ago
    patched = await anomaly.patch(
        "/api/v1/detectors/plain", json={"no_data_seconds": 3600}, headers=auth_headers(account)
    )
    assert patched.json()["no_data_seconds"] == 3600
    report = await check.run_once(T0 + timedelta(days=41))
    (found,) = await anomalies(anomaly, account)
    assert (found["kind"], found["detector_id"]) == ("no_data", "plain")
    assert (
        found["explanation"] == "no data for 41 d since 2026-11-01T00:04:00Z; expected every ~60 s"
    )
    assert report.pages == 0
    queued = await worker_pool.fetchval(
        "SELECT count(*) FROM np_anomaly_page_outbox WHERE source_account_id = $1", account
    )
    assert queued == 0


async def test_auto_resolve_false_and_turning_it_off(
    anomaly: httpx.AsyncClient, worker_pool: asyncpg.Pool, standin: OncallStandIn
) -> None:
    account = "nd-keep"
    for detector_id, thresholds in (("kept", {"auto_resolve": False}), ("turned", {})):
        await create_detector(
            anomaly,
            detector_id,
            account=account,
            algorithm="mad",
            thresholds=thresholds,
            escalation_policy_id="ops",
            no_data_seconds=120,
        )
        await ingest(
            anomaly,
            [{"detector_id": detector_id, "value": 1.0, "timestamp": stamp(i)} for i in range(5)],
            account=account,
        )
    check = NoDataCheck(worker_pool)
    await check.run_once(T0 + 10 * MINUTE)
    await send_pages(worker_pool, standin, T0 + 10 * MINUTE)
    assert len(of(account, standin.opened())) == 2

    # kept: data back ends the silence, the alert stays for a person to resolve
    await ingest(
        anomaly, [{"detector_id": "kept", "value": 1.0, "timestamp": stamp(11)}], account=account
    )
    # turned: no_data_seconds off ends its silence and resolves its alert
    patched = await anomaly.patch(
        "/api/v1/detectors/turned", json={"no_data_seconds": None}, headers=auth_headers(account)
    )
    assert patched.json()["no_data_seconds"] is None
    report = await check.run_once(T0 + 12 * MINUTE)
    assert report.ended >= 2
    await send_pages(worker_pool, standin, T0 + 12 * MINUTE)
    (resolve,) = of(account, standin.resolved())
    rows = await worker_pool.fetch(
        "SELECT detector_id, kind, details FROM np_anomaly_page_outbox "
        "WHERE source_account_id = $1 AND kind = 'resolve'",
        account,
    )
    assert [(r["detector_id"], r["details"]["ended_by"]) for r in rows] == [("turned", "off")]
    open_silences = await worker_pool.fetchval(
        "SELECT count(*) FROM np_anomaly_series WHERE source_account_id = $1 "
        "AND no_data_at IS NOT NULL",
        account,
    )
    assert open_silences == 0
    # kept's silence is over: it stays quiet until it is silent again
    await check.run_once(T0 + 12 * MINUTE + timedelta(seconds=30))
    assert len(await anomalies(anomaly, account)) == 2


async def test_the_lifetime_hook_pages_and_resolves_on_the_apps_clock(
    database_url: str, standin: OncallStandIn
) -> None:
    account = "nd-hook"
    clock = FakeClock(T0)
    app = create_app(make_settings(database_url, oncall_url=standin.url), clock=clock)
    async with serve_app(app) as c:
        await create_detector(
            c,
            "hooked",
            account=account,
            algorithm="mad",
            escalation_policy_id="ops",
            no_data_seconds=300,
        )
        await ingest(
            c,
            [{"detector_id": "hooked", "value": 1.0, "timestamp": stamp(i)} for i in range(5)],
            account=account,
        )
        clock.set(T0 + 10 * MINUTE)
        app.state.nodata_wakeup.set()
        await until(standin, lambda: of(account, standin.opened()))
        (page,) = of(account, standin.opened())
        assert page.body["dedup_key"] == f"anomaly:{account}:hooked:no_data:{stamp(10)}"
        await ingest(
            c, [{"detector_id": "hooked", "value": 1.0, "timestamp": stamp(11)}], account=account
        )
        clock.set(T0 + 11 * MINUTE)
        app.state.nodata_wakeup.set()
        await until(standin, lambda: of(account, standin.resolved()))
    assert len(of(account, standin.opened())) == 1


async def until(standin: OncallStandIn, condition: Callable[[], Any]) -> None:
    """Wait for the stand-in's requests to satisfy `condition` (a deadline, no sleep)."""
    async with asyncio.timeout(20):
        while True:
            standin.received.clear()
            if condition():
                return
            await standin.received.wait()
