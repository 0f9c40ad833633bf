"""Paging that operators trust, over HTTP against the real Postgres and the real
nself-oncall (served in-process; the page sender's HTTP client speaks to it).

* a backfill of a week of history opens no alert, but its anomalies are listed;
* a detector's first day (its first seasonal cycle, while it says it is learning)
  opens none, except for a static bound;
* an episode that ends resolves the alert it opened: by normal points past the
  cooldown, or, when no point comes, by the paging worker's quiet-episode pass;
  `auto_resolve: false` leaves it open;
* a flapping incident opens one alert.

Time is injected: the anomaly app's clock (`clock`, when points are scored) and the
`now` of each worker pass; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

import asyncpg
import httpx
import numpy as np
import pytest

from services.anomaly import detectors
from services.anomaly.app import create_app, wake_pager
from services.anomaly.detectors.base import Scores
from services.anomaly.detectors.ewma import EwmaDetector
from services.anomaly.detectors.state import OPTIONAL_FLOAT, Codec
from services.anomaly.paging.episodes import close_quiet_episodes
from services.anomaly.paging.sender import PageSender
from services.common import db
from services.common.settings import Settings
from services.oncall.app import create_app as create_oncall
from tests.anomaly.conftest import T0, FakeClock, create_detector, ingest, noise
from tests.anomaly.oncall_standin import OncallStandIn, free_port
from tests.conftest import PLUGIN_SECRET, auth_headers, make_settings, serve_app

DAY = 86400.0
FIVE_MINUTES = timedelta(minutes=5)


# -- a detector whose learning we control: its first day, in time (as auto's first season)
class FirstDayEwma(EwmaDetector):
    """EWMA that says it is learning until it has seen a day of the series, whatever
    its warm-up: scores (and anomalies) come after `warmup` points, pages after a day."""

    name: ClassVar[str] = "ewma_first_day"
    state_fields: ClassVar[dict[str, Codec]] = {
        **EwmaDetector.state_fields,
        "first": OPTIONAL_FLOAT,
        "last": OPTIONAL_FLOAT,
    }

    def reset(self) -> None:
        super().reset()
        self._first: float | None = None
        self._last: float | None = None

    @property
    def is_learning(self) -> bool:
        return self._first is None or self._last is None or self._last - self._first < DAY

    def _score(self, timestamps: np.ndarray, values: np.ndarray, learn: bool) -> Scores:
        result = super()._score(timestamps, values, learn)
        n = values.shape[0]
        if not learn or n == 0:
            return replace(result, learning=np.full(n, self.is_learning))
        first = float(timestamps[0]) if self._first is None else self._first
        self._first, self._last = first, float(timestamps[-1])
        return replace(result, learning=timestamps - first < DAY)


@pytest.fixture(scope="module", autouse=True)
def first_day_algorithm() -> Iterator[None]:
    detectors.ALGORITHMS[FirstDayEwma.name] = FirstDayEwma
    yield
    del detectors.ALGORITHMS[FirstDayEwma.name]


# -- the on-call side and the paging worker ------------------------------------------------
@pytest.fixture(scope="module")
async def oncall(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """nself-oncall on the same database, over ASGI."""
    async with serve_app(create_oncall(settings, clock=FakeClock(T0))) as c:
        yield c


@dataclass
class Pager:
    """The paging worker's two passes, with an injected `now`."""

    pool: asyncpg.Pool
    sender: PageSender

    async def run(self, now: datetime) -> None:
        """One worker cycle: quiet episodes ended, then the outbox sent until nothing is
        due (a resolve goes once its page has an alert id)."""
        await close_quiet_episodes(self.pool, now)
        for _ in range(5):
            if not (await self.sender.run_once(now)).claimed:
                return
        raise AssertionError("the outbox never drained")

    async def outbox(self, account: str) -> list[tuple[str, str, str]]:
        rows = await self.pool.fetch(
            "SELECT kind, dedup_key, status FROM np_anomaly_page_outbox "
            "WHERE source_account_id = $1 ORDER BY id",
            account,
        )
        return [(r["kind"], r["dedup_key"], r["status"]) for r in rows]


@pytest.fixture(scope="module")
async def pager(settings: Settings, oncall: httpx.AsyncClient) -> AsyncIterator[Pager]:
    pool = await db.create_pool(settings.database_url or "", role=db.WORKER_ROLE, min_size=0)
    sender = PageSender(
        pool,
        oncall_url=str(oncall.base_url),
        secret=PLUGIN_SECRET,
        client=oncall,
        rng=random.Random(0),
    )
    yield Pager(pool, sender)
    await pool.close()


async def policy(oncall: httpx.AsyncClient, account: str) -> str:
    """An escalation policy `ops` in the account (paging someone)."""
    h = auth_headers(account)
    person = {"id": "sre", "name": "SRE", "contact_methods": []}
    assert (await oncall.post("/api/v1/people", json=person, headers=h)).status_code == 201
    body = {"id": "ops", "name": "Ops", "steps": [{"targets": [{"type": "person", "id": "sre"}]}]}
    assert (await oncall.post("/api/v1/policies", json=body, headers=h)).status_code == 201
    return "ops"


async def alerts(oncall: httpx.AsyncClient, account: str) -> list[dict[str, Any]]:
    """The account's on-call alerts, in the order of their episodes (on-call's own clock
    stands still here: its creation times tie)."""
    response = await oncall.get("/api/v1/alerts", headers=auth_headers(account))
    assert response.status_code == 200, response.text
    return sorted(response.json()["data"], key=lambda a: str(a["dedup_key"]))


def points(detector_id: str, start: datetime, values: Any) -> list[dict[str, Any]]:
    """Five-minute points from `start`."""
    return [
        {
            "detector_id": detector_id,
            "value": float(v),
            "timestamp": (start + i * FIVE_MINUTES).isoformat().replace("+00:00", "Z"),
        }
        for i, v in enumerate(values)
    ]


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def push(
    client: httpx.AsyncClient, clock: FakeClock, batch: list[dict[str, Any]], account: str
) -> dict[str, Any]:
    """Ingest a batch as it arrives live: the clock is at its last point."""
    clock.set(datetime.fromisoformat(batch[-1]["timestamp"]))
    response = await ingest(client, batch, account=account)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


# -- 1. a backfill pages nobody ---------------------------------------------------------------
async def test_a_week_of_backfill_opens_no_alert_but_lists_its_anomalies(
    client: httpx.AsyncClient, clock: FakeClock, oncall: httpx.AsyncClient, pager: Pager
) -> None:
    account = "acct-backfill"
    ops = await policy(oncall, account)
    await create_detector(
        client,
        "checkout",
        account=account,
        algorithm="ewma",
        # only the obvious: noise reaches about 0.9999, the spike 0.9999999
        thresholds={"score": 0.999999, "critical": 0.999999, "upper": 2000.0},
        escalation_policy_id=ops,
    )
    now = T0 + timedelta(days=30)
    start = now - timedelta(days=7, hours=6)
    values = noise(int((now - start) / FIVE_MINUTES), seed=7)
    spike_at = now - timedelta(days=7)  # an obvious anomaly a week ago
    bound_at = now - timedelta(days=6)  # and a static bound crossed the day after
    values[int((spike_at - start) / FIVE_MINUTES)] = 1000.0
    values[int((bound_at - start) / FIVE_MINUTES)] = 5000.0
    history = points("checkout", start, values)

    clock.set(now)  # the whole week arrives now, in one batch
    response = await ingest(client, history, account=account)
    assert response.status_code == 200, response.text
    found = {a["timestamp"]: a["severity"] for a in response.json()["anomalies"]}
    assert found == {iso(spike_at): "critical", iso(bound_at): "critical"}
    await pager.run(now)
    assert await pager.outbox(account) == []
    assert await alerts(oncall, account) == []

    listed = await client.get(
        "/api/v1/anomalies?detector_id=checkout", headers=auth_headers(account)
    )
    assert [a["timestamp"] for a in listed.json()["data"]] == [iso(bound_at), iso(spike_at)]
    detector = await client.get("/api/v1/detectors/checkout", headers=auth_headers(account))
    assert detector.json()["status"] == "active"

    # the same spike arriving fresh pages: it is the age that kept the backfill quiet
    fresh = await push(client, clock, points("checkout", now, [100.0, 1000.0]), account)
    assert len(fresh["anomalies"]) == 1
    await pager.run(clock())
    [alert] = await alerts(oncall, account)
    assert alert["dedup_key"] == f"anomaly:{account}:checkout:{iso(now + FIVE_MINUTES)}"
    assert alert["status"] == "triggered"


# -- 2. the first seasonal cycle pages nobody ----------------------------------------------------
async def test_the_first_day_opens_no_alert_except_for_a_static_bound(
    client: httpx.AsyncClient, clock: FakeClock, oncall: httpx.AsyncClient, pager: Pager
) -> None:
    account = "acct-learning"
    ops = await policy(oncall, account)
    created = await create_detector(
        client,
        "signups",
        account=account,
        algorithm="ewma_first_day",
        params={"warmup": 10},
        thresholds={"score": 0.999999, "critical": 0.999999, "upper": 2000.0},
        escalation_policy_id=ops,
    )
    assert created["status"] == "learning"
    start = T0 + timedelta(days=40)
    values = noise(int(2 * DAY / 300), seed=11)
    spike, bound, later = 6 * 12, 12 * 12, 30 * 12  # hours 6 and 12 of day one; hour 30
    values[spike], values[bound], values[later] = 600.0, 5000.0, 600.0
    series_points = points("signups", start, values)

    statuses: list[str] = []
    anomalies: list[dict[str, Any]] = []
    for hour in range(48):  # pushed live, an hour at a time, the worker running
        body = await push(client, clock, series_points[hour * 12 : hour * 12 + 12], account)
        anomalies += body["anomalies"]
        await pager.run(clock())
        detector = await client.get("/api/v1/detectors/signups", headers=auth_headers(account))
        statuses.append(detector.json()["status"])
        if hour == 23:
            # a day of data is far beyond the warm-up, yet the detector says it is learning
            assert detector.json()["n_seen"] > detector.json()["warmup"]
            assert [a["timestamp"] for a in anomalies] == [
                series_points[spike]["timestamp"],
                series_points[bound]["timestamp"],
            ]
            # the learning spike is a warning and paged nobody; the bound paged
            assert [a["severity"] for a in anomalies] == ["warning", "critical"]
            assert [a["dedup_key"] for a in await alerts(oncall, account)] == [
                f"anomaly:{account}:signups:{series_points[bound]['timestamp']}"
            ]
    # learning until the detector has seen a day (after hour 24's points), then active
    assert statuses == ["learning"] * 24 + ["active"] * 24
    # after the first day the same spike is critical and pages
    assert anomalies[-1]["timestamp"] == series_points[later]["timestamp"]
    assert anomalies[-1]["severity"] == "critical"
    assert [a["dedup_key"] for a in await alerts(oncall, account)] == [
        f"anomaly:{account}:signups:{series_points[bound]['timestamp']}",
        f"anomaly:{account}:signups:{series_points[later]['timestamp']}",
    ]


async def test_status_follows_the_warm_up_for_the_other_algorithms(
    client: httpx.AsyncClient, clock: FakeClock, oncall: httpx.AsyncClient, pager: Pager
) -> None:
    account = "acct-warmup"
    ops = await policy(oncall, account)
    h = auth_headers(account)
    await create_detector(
        client,
        "queue",
        account=account,
        algorithm="ewma",
        params={"warmup": 5},
        thresholds={"upper": 500.0},
        escalation_policy_id=ops,
    )
    start = T0 + timedelta(days=50)
    first = await push(client, clock, points("queue", start, [100, 101, 900, 99]), account)
    assert [a["severity"] for a in first["anomalies"]] == ["critical"]  # a bound, learning
    got = (await client.get("/api/v1/detectors/queue", headers=h)).json()
    assert (got["status"], got["n_seen"], got["warmup"]) == ("learning", 4, 5)
    await push(client, clock, points("queue", start + 4 * FIVE_MINUTES, [100]), account)
    assert (await client.get("/api/v1/detectors/queue", headers=h)).json()["status"] == "active"
    await pager.run(clock())
    assert len(await alerts(oncall, account)) == 1  # the bound crossed while learning paged
    # new params restart learning; the status says so at once
    patched = await client.patch("/api/v1/detectors/queue", json={"params": {}}, headers=h)
    assert patched.json()["status"] == "learning"


async def test_the_default_algorithm_pages_nobody_in_its_first_day(
    client: httpx.AsyncClient, clock: FakeClock, oncall: httpx.AsyncClient, pager: Pager
) -> None:
    """The issue's case: a 5-minute series with a daily cycle, pushed live from scratch;
    each new daily low of the first day used to page."""
    account = "acct-auto"
    ops = await policy(oncall, account)
    await create_detector(client, "traffic", account=account, escalation_policy_id=ops)
    start = T0 + timedelta(days=60)
    t = np.arange(int(DAY / 300)) * 300.0
    values = 100.0 + 40.0 * np.sin(2 * math.pi * t / DAY) + noise(t.shape[0], seed=5, level=0)
    values[100] = 400.0  # and an outlier in its first hours
    day = points("traffic", start, values)
    severities: list[str] = []
    for hour in range(24):
        body = await push(client, clock, day[hour * 12 : hour * 12 + 12], account)
        severities += [a["severity"] for a in body["anomalies"]]
        await pager.run(clock())
    got = await client.get("/api/v1/detectors/traffic", headers=auth_headers(account))
    assert got.json()["status"] == "learning"
    assert "critical" not in severities
    assert await pager.outbox(account) == [] and await alerts(oncall, account) == []


# -- 3. an episode that ends resolves its alert --------------------------------------------------
async def test_normal_points_past_the_cooldown_resolve_the_alert(
    client: httpx.AsyncClient, clock: FakeClock, oncall: httpx.AsyncClient, pager: Pager
) -> None:
    account = "acct-recover"
    ops = await policy(oncall, account)
    await create_detector(
        client,
        "api",
        account=account,
        algorithm="static",
        params={"upper": 10.0},
        escalation_policy_id=ops,
    )
    start = T0 + timedelta(days=70)
    await push(client, clock, points("api", start, [1, 1, 50]), account)  # anomaly at 00:10
    await pager.run(clock())
    [alert] = await alerts(oncall, account)
    assert alert["status"] == "triggered"

    # normal points up to 30 minutes after the anomaly: the episode is still on
    await push(client, clock, points("api", start + 3 * FIVE_MINUTES, [1] * 6), account)
    await pager.run(clock())
    assert [a["status"] for a in await alerts(oncall, account)] == ["triggered"]
    # the first point past the cooldown ends it: the alert is resolved
    await push(client, clock, points("api", start + 9 * FIVE_MINUTES, [1]), account)
    key = f"anomaly:{account}:api:{iso(start + 2 * FIVE_MINUTES)}"
    assert await pager.outbox(account) == [("open", key, "sent"), ("resolve", key, "pending")]
    await pager.run(clock())
    assert [a["status"] for a in await alerts(oncall, account)] == ["resolved"]
    assert await pager.outbox(account) == [("open", key, "sent"), ("resolve", key, "sent")]
    detail = (
        await oncall.get(f"/api/v1/alerts/{alert['id']}", headers=auth_headers(account))
    ).json()
    assert [e["kind"] for e in detail["timeline"]].count("resolved") == 1

    # a later anomaly is a new episode: a new alert
    await push(client, clock, points("api", start + 10 * FIVE_MINUTES, [60]), account)
    await pager.run(clock())
    assert [a["status"] for a in await alerts(oncall, account)] == ["resolved", "triggered"]


async def test_the_worker_resolves_an_episode_whose_series_went_quiet(
    client: httpx.AsyncClient,
    clock: FakeClock,
    oncall: httpx.AsyncClient,
    pager: Pager,
    settings: Settings,
) -> None:
    accounts = ("acct-quiet", "acct-busy")  # same detector id in both; only one goes quiet
    for account in accounts:
        ops = await policy(oncall, account)
        await create_detector(
            client,
            "jobs",
            account=account,
            algorithm="static",
            params={"upper": 10.0},
            escalation_policy_id=ops,
        )
    start = T0 + timedelta(days=80)
    for account in accounts:
        await push(client, clock, points("jobs", start, [1, 1, 50]), account)
    anomaly_at = start + 2 * FIVE_MINUTES
    await pager.run(anomaly_at)
    for account in accounts:
        assert [a["status"] for a in await alerts(oncall, account)] == ["triggered"]

    # the busy account keeps anomalous: still within the cooldown of its last anomaly
    busy = await push(
        client, clock, points("jobs", anomaly_at + 5 * FIVE_MINUTES, [50]), accounts[1]
    )
    assert len(busy["anomalies"]) == 1
    await pager.run(anomaly_at + timedelta(minutes=30))  # exactly the cooldown: still on
    assert [a["status"] for a in await alerts(oncall, accounts[0])] == ["triggered"]

    # no point at all for more than the cooldown: the worker ends the quiet one only
    quiet_end = anomaly_at + timedelta(minutes=31)
    await pager.run(quiet_end)
    assert [a["status"] for a in await alerts(oncall, accounts[0])] == ["resolved"]
    assert [a["status"] for a in await alerts(oncall, accounts[1])] == ["triggered"]
    key = f"anomaly:{accounts[0]}:jobs:{iso(anomaly_at)}"
    assert await pager.outbox(accounts[0]) == [("open", key, "sent"), ("resolve", key, "sent")]

    # at least once, idempotent: a second pass, a late point, a resend all resolve nothing more
    await pager.run(quiet_end + timedelta(hours=1))
    await push(client, clock, points("jobs", quiet_end + FIVE_MINUTES, [1, 1]), accounts[0])
    owner = await asyncpg.connect(settings.database_url)
    try:  # as if the sender died after POSTing the resolve, before recording it
        await owner.execute(
            "UPDATE np_anomaly_page_outbox SET status = 'pending' "
            "WHERE source_account_id = $1 AND kind = 'resolve'",
            accounts[0],
        )
    finally:
        await owner.close()
    await pager.run(quiet_end + timedelta(hours=2))
    assert await pager.outbox(accounts[0]) == [("open", key, "sent"), ("resolve", key, "sent")]
    [alert] = await alerts(oncall, accounts[0])
    detail = await oncall.get(f"/api/v1/alerts/{alert['id']}", headers=auth_headers(accounts[0]))
    assert [e["kind"] for e in detail.json()["timeline"]].count("resolved") == 1

    # the episode was closed: a new anomaly opens a new alert
    await push(client, clock, points("jobs", quiet_end + 3 * FIVE_MINUTES, [70]), accounts[0])
    await pager.run(clock())
    assert [a["status"] for a in await alerts(oncall, accounts[0])] == ["resolved", "triggered"]


async def test_auto_resolve_false_leaves_the_alert_open(
    client: httpx.AsyncClient, clock: FakeClock, oncall: httpx.AsyncClient, pager: Pager
) -> None:
    account = "acct-manual"
    ops = await policy(oncall, account)
    for detector_id in ("manual", "manual-quiet"):
        await create_detector(
            client,
            detector_id,
            account=account,
            algorithm="static",
            params={"upper": 10.0},
            thresholds={"auto_resolve": False},
            escalation_policy_id=ops,
        )
    start = T0 + timedelta(days=90)
    await push(client, clock, points("manual", start, [1, 50] + [1] * 10), account)
    await push(client, clock, points("manual-quiet", start, [1, 50]), account)
    await pager.run(start + timedelta(hours=3))
    assert [a["status"] for a in await alerts(oncall, account)] == ["triggered", "triggered"]
    assert [kind for kind, _, _ in await pager.outbox(account)] == ["open", "open"]


async def test_new_thresholds_apply_to_the_open_episode(
    client: httpx.AsyncClient, clock: FakeClock, oncall: httpx.AsyncClient, pager: Pager
) -> None:
    account = "acct-patch"
    ops = await policy(oncall, account)
    h = auth_headers(account)
    for detector_id in ("longer", "kept"):
        await create_detector(
            client,
            detector_id,
            account=account,
            algorithm="static",
            params={"upper": 10.0},
            escalation_policy_id=ops,
        )
    start = T0 + timedelta(days=95)
    for detector_id in ("longer", "kept"):
        await push(client, clock, points(detector_id, start, [1, 50]), account)
    await pager.run(clock())
    # mid-episode: a two-hour cooldown for one, no auto-resolve for the other
    for detector_id, change in (
        ("longer", {"cooldown_seconds": 7200}),
        ("kept", {"auto_resolve": False}),
    ):
        patched = await client.patch(
            f"/api/v1/detectors/{detector_id}", json={"thresholds": change}, headers=h
        )
        assert patched.status_code == 200, patched.text
    await pager.run(start + timedelta(hours=1))
    assert [a["status"] for a in await alerts(oncall, account)] == ["triggered", "triggered"]
    await pager.run(start + timedelta(hours=2, minutes=6))
    statuses = {a["dedup_key"].split(":")[2]: a["status"] for a in await alerts(oncall, account)}
    assert statuses == {"longer": "resolved", "kept": "triggered"}


# -- 4. a flapping incident is one alert ----------------------------------------------------------
async def test_a_flapping_incident_opens_one_alert(
    client: httpx.AsyncClient, clock: FakeClock, oncall: httpx.AsyncClient, pager: Pager
) -> None:
    account = "acct-flap"
    ops = await policy(oncall, account)
    created = await create_detector(
        client,
        "errors",
        account=account,
        algorithm="static",
        params={"upper": 10.0},
        escalation_policy_id=ops,
    )
    assert created["thresholds"]["cooldown_seconds"] == 1800  # the default
    start = T0 + timedelta(days=100)
    # over and under the bound for an hour: anomalies 10, 15, 25 and 10 minutes apart
    flapping = [1, 50, 1, 50, 1, 1, 50, 1, 1, 1, 1, 50, 1, 50]
    anomalies: list[dict[str, Any]] = []
    for i, value in enumerate(flapping):  # one point at a time, the worker running
        batch = points("errors", start + i * FIVE_MINUTES, [value])
        anomalies += (await push(client, clock, batch, account))["anomalies"]
        await pager.run(clock())
    assert len(anomalies) == 5
    assert {a["episode_start"] for a in anomalies} == {iso(start + FIVE_MINUTES)}
    [alert] = await alerts(oncall, account)
    assert alert["status"] == "triggered"
    # quiet afterwards: the one alert is resolved
    await pager.run(clock() + timedelta(minutes=31))
    assert [a["status"] for a in await alerts(oncall, account)] == ["resolved"]


async def until(standin: OncallStandIn, seen: Callable[[], list[Any]]) -> None:
    """Wait (20 s at most) until the stand-in has received what `seen` lists."""
    async with asyncio.timeout(20):
        while True:
            standin.received.clear()
            if seen():
                return
            await standin.received.wait()


# -- the worker in the app's own loop -------------------------------------------------------------
async def test_the_paging_loop_ends_quiet_episodes_by_its_clock(database_url: str) -> None:
    standin = OncallStandIn(free_port())
    await standin.start()
    clock = FakeClock(T0)
    try:
        settings = make_settings(database_url, oncall_url=standin.url)
        app = create_app(settings, clock=clock)
        async with serve_app(app) as c:
            await create_detector(
                c,
                "looped",
                account="acct-loop",
                algorithm="static",
                params={"upper": 1},
                escalation_policy_id="ops",
            )
            await ingest(c, points("looped", T0, [9.0]), account="acct-loop")
            await until(standin, standin.opened)
            clock.advance(minutes=31)  # no point since: the loop's next pass ends the episode
            wake_pager(app)
            await until(standin, standin.resolved)
    finally:
        await standin.stop()
    assert [r.path for r in standin.requests] == ["/api/v1/alerts", "/api/v1/alerts/1/resolve"]
    assert standin.requests[1].headers["x-hasura-source-account-id"] == "acct-loop"
    key = f"anomaly:acct-loop:looped:{iso(T0)}"
    assert standin.requests[1].headers["idempotency-key"] == f"resolve:{key}"
