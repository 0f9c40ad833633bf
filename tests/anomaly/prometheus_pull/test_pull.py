"""Prometheus pull against a real Prometheus (Debian's 2.42) scraping a tiny exporter
every second: a poller restarted mid-stream skips and repeats nothing, two replicas
never poll one detector at once, and an outage of Prometheus is shown and caught up."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from services.common.settings import Settings
from tests.anomaly.conftest import create_detector
from tests.anomaly.prometheus_pull.support import (
    QUERY,
    Replica,
    compare_with_prometheus,
    detector,
    now,
    poll_until,
    pull_settings,
    replica,
    source,
)
from tests.anomaly.remote_write.prometheus import PrometheusServer

pytestmark = pytest.mark.db
ACCOUNT = "pull"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return pull_settings(database_url)


async def pull_detector(
    client: httpx.AsyncClient, detector_id: str, prometheus: PrometheusServer, lookback: int
) -> None:
    """An ewma detector per instance of the exporter's series, one-second steps,
    backfilling ``lookback`` seconds."""
    await create_detector(
        client,
        detector_id,
        account=ACCOUNT,
        metric_source=source(prometheus, step_seconds=1, lookback_seconds=lookback),
        group_by=["instance"],
        algorithm="ewma",
    )


def _polls(replicas: list[Replica], detector_id: str) -> list[Any]:
    return sorted(
        (p for r in replicas for p in r.polls if p.detector_id == detector_id and p.start),
        key=lambda p: p.start,
    )


async def test_a_restarted_poller_skips_and_repeats_nothing(
    prometheus: PrometheusServer, settings: Settings, database_url: str
) -> None:
    async with replica(settings, lease=timedelta(seconds=2)) as first:
        await pull_detector(first.client, "restart", prometheus, 10)

        async def some() -> bool:
            d = await detector(first.client, "restart", ACCOUNT)
            return d["counts"]["points"] >= 3 * 15

        await poll_until([first], some, seconds=60, what="15 points per series")
        # a poll cut off at every stage it can be in (claim, query, ingest, commit):
        # whatever it had done is rolled back or committed whole, with its position
        for loops in (0, 1, 2, 3, 5, 8, 13, 21, 34):
            task = asyncio.create_task(first.run_once())
            for _ in range(loops):
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    # a new replica (a fresh process: nothing cached) carries on from the stored position,
    # once the lease of a poll cut off mid-way ran out
    async with replica(settings, lease=timedelta(seconds=2)) as second:
        before = (await detector(second.client, "restart", ACCOUNT))["source_status"]

        async def moved() -> bool:
            status = (await detector(second.client, "restart", ACCOUNT))["source_status"]
            return status["position"] is not None and datetime.fromisoformat(
                status["position"]
            ) >= datetime.fromisoformat(before["position"]) + timedelta(seconds=8)

        await poll_until([second], moved, seconds=60, what="8 more seconds polled")
        final = await detector(second.client, "restart", ACCOUNT)
    points = await compare_with_prometheus(prometheus, database_url, ACCOUNT, "restart", 1)
    assert points == final["counts"]["points"] and points >= 3 * 23
    # each stored point was learned once: no duplicate, none late, none learned twice
    assert final["counts"]["duplicates"] == 0 and final["counts"]["late"] == 0
    assert final["n_seen"] == points
    assert final["source_status"]["last_error"] is None
    print(f"restart: {points} points stored, equal to Prometheus' answer; n_seen {points}")


async def test_two_replicas_never_poll_one_detector_at_once(
    prometheus: PrometheusServer, settings: Settings, database_url: str
) -> None:
    ids = [f"replicas-{i}" for i in range(4)]
    async with replica(settings, batch=2) as a, replica(settings, batch=2) as b:
        for detector_id in ids:
            await pull_detector(a.client, detector_id, prometheus, 5)

        async def enough() -> bool:
            return all(len(_polls([a, b], i)) >= 8 for i in ids)

        await poll_until([a, b], enough, seconds=90, what="8 polls of each detector")
        statuses = {i: (await detector(a.client, i, ACCOUNT))["source_status"] for i in ids}
    assert a.polls and b.polls and {p.detector_id for p in a.polls} & set(ids)
    assert {p.detector_id for p in b.polls} & set(ids), "replica b never got a detector"
    for detector_id in ids:
        polls = _polls([a, b], detector_id)
        assert all(p.outcome == "ok" for p in polls), [p.outcome for p in polls]
        # one replica at a time: the polls of a detector never overlap in time...
        spans = sorted((p.began, p.ended) for p in polls)
        for (_, end), (begin, _) in zip(spans, spans[1:], strict=False):
            assert end <= begin, f"{detector_id}: two polls at once"
        # ...nor in what they asked for: each instant once, none left out
        for before, after in zip(polls, polls[1:], strict=False):
            assert after.start == before.last + timedelta(seconds=1), detector_id
        # the database counted the same polls as the replicas made
        assert statuses[detector_id]["polls"] == len(polls), detector_id
        await compare_with_prometheus(prometheus, database_url, ACCOUNT, detector_id, 1)
    print(
        "polls per detector:",
        {
            i: (sum(p.detector_id == i for p in a.polls), sum(p.detector_id == i for p in b.polls))
            for i in ids
        },
    )


async def test_prometheus_down_is_shown_and_caught_up_when_it_returns(
    prometheus: PrometheusServer, settings: Settings, database_url: str
) -> None:
    errors_before = (
        REGISTRY.get_sample_value("nsentry_prometheus_polls_total", {"outcome": "error"}) or 0.0
    )
    async with replica(settings) as r:
        await pull_detector(r.client, "outage", prometheus, 300)

        async def status() -> dict[str, Any]:
            return (await detector(r.client, "outage", ACCOUNT))["source_status"]

        async def polled() -> bool:
            return (await status())["polls"] >= 3

        await poll_until([r], polled, seconds=60, what="3 polls")
        prometheus.stop()
        stopped = now()

        async def failing() -> dict[str, Any] | None:
            s = await status()
            return s if s["last_error"] is not None else None

        down = await poll_until([r], failing, seconds=30, what="the error in source_status")
        shown = datetime.fromisoformat(down["last_error_at"])
        # within one poll interval (1 s) of the poll that was due next
        assert shown - stopped <= timedelta(seconds=2.5), (shown, stopped)
        print(f"outage: error shown {(shown - stopped).total_seconds():.2f} s after the stop")
        assert "cannot reach Prometheus" in down["last_error"], down["last_error"]
        position = down["position"]

        async def lagging() -> dict[str, Any] | None:
            s = await status()
            return s if s["errors"] >= 3 and s["lag_seconds"] >= 4 else None

        down = await poll_until([r], lagging, seconds=30, what="3 failed polls")
        assert down["position"] == position  # nothing stored, nothing skipped
        errors = REGISTRY.get_sample_value("nsentry_prometheus_polls_total", {"outcome": "error"})
        assert errors is not None and errors - errors_before >= 3
        metrics = (await r.client.get("/metrics")).text
        assert 'nsentry_prometheus_polls_total{outcome="error"}' in metrics

        prometheus.start()  # the same data, the same port

        async def caught_up() -> dict[str, Any] | None:
            s = await status()
            if s["last_success_at"] is None or s["last_success_at"] <= s["last_error_at"]:
                return None
            return s if s["lag_seconds"] <= 3 else None

        back = await poll_until([r], caught_up, seconds=60, what="the poller caught up")
        final = await detector(r.client, "outage", ACCOUNT)
    assert datetime.fromisoformat(back["position"]) > datetime.fromisoformat(position)
    # the first poll that worked again asked from the position stored before the outage
    polls = _polls([r], "outage")
    failed = [p for p in polls if p.outcome == "error"]
    recovered = next(p for p in polls if p.outcome == "ok" and p.start >= failed[0].start)
    assert recovered.start == datetime.fromisoformat(position) + timedelta(seconds=1)
    assert all(p.start == recovered.start for p in failed), "a failed poll moved on"
    # every instant of the outage is stored: Prometheus' own answer over the whole range
    points = await compare_with_prometheus(prometheus, database_url, ACCOUNT, "outage", 1)
    assert points == final["counts"]["points"]
    assert final["counts"]["duplicates"] == 0 and final["n_seen"] == points
    gap = (recovered.last - recovered.start).total_seconds() + 1
    print(
        f"outage: {len(failed)} failed polls, then one poll of {gap:.0f} instants from the "
        f"stored position; {points} points, equal to Prometheus' answer"
    )


async def test_query_errors_are_shown_and_nan_values_skipped_and_counted(
    prometheus: PrometheusServer, settings: Settings
) -> None:
    async with replica(settings) as r:
        await create_detector(
            r.client,
            "bad-query",
            account=ACCOUNT,
            metric_source=source(prometheus, query="rate(rwtest_latency_ms[", step_seconds=1),
        )
        await create_detector(
            r.client,
            "nan-query",
            account=ACCOUNT,
            metric_source=source(
                prometheus, query=f"{QUERY} * 0 / 0", step_seconds=1, lookback_seconds=5
            ),
            group_by=["instance"],
        )

        async def both() -> tuple[dict[str, Any], dict[str, Any]] | None:
            bad = await detector(r.client, "bad-query", ACCOUNT)
            nan = await detector(r.client, "nan-query", ACCOUNT)
            done = bad["source_status"]["errors"] >= 1 and nan["source_status"]["skipped"] >= 3
            return (bad, nan) if done else None

        bad, nan = await poll_until([r], both, seconds=30, what="a failed and a NaN poll")
    assert "HTTP 400: bad_data" in bad["source_status"]["last_error"], bad["source_status"]
    assert bad["source_status"]["last_success_at"] is None and bad["counts"]["points"] == 0
    status = nan["source_status"]
    assert status["last_error"] is None and status["skipped"] >= 3, status
    assert nan["counts"]["points"] == 0 and nan["series_count"] == 0


async def test_a_long_backfill_is_fetched_in_chunks_prometheus_accepts(
    prometheus: PrometheusServer, settings: Settings, database_url: str
) -> None:
    # 25,000 one-second instants: over Prometheus' 11,000 points per series, so in 3 polls
    async with replica(settings) as r:
        await pull_detector(r.client, "long-backfill", prometheus, 25_000)

        async def caught_up() -> dict[str, Any] | None:
            d = await detector(r.client, "long-backfill", ACCOUNT)
            lag = d["source_status"]["lag_seconds"]
            return d if lag is not None and lag <= 3 and d["counts"]["points"] else None

        final = await poll_until([r], caught_up, seconds=60, what="the backfill done")
    polls = _polls([r], "long-backfill")
    assert all(p.outcome == "ok" for p in polls), [(p.outcome, p.error) for p in polls]
    sizes = [int((p.last - p.start).total_seconds()) + 1 for p in polls]
    assert sizes[:2] == [11_000, 11_000] and sum(sizes) >= 25_000 - 1, sizes
    assert final["source_status"]["errors"] == 0
    points = await compare_with_prometheus(prometheus, database_url, ACCOUNT, "long-backfill", 1)
    print(f"backfill polls of {sizes} instants; {points} points, as Prometheus answers")
