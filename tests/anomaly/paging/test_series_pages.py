"""Pages of a multi-series detector: an anomaly in one series opens one alert that names
that series (summary, details.labels, dedup key); the others stay quiet; the episode's
end resolves that alert only, by a normal point or by the quiet-episode pass.

The on-call side is the stand-in HTTP server (tests/anomaly/oncall_standin.py); time
is injected (the ingest's clock, the worker's `now`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import numpy as np

from services.anomaly.paging.episodes import close_quiet_episodes
from tests.anomaly.conftest import T0, create_detector, ingest, send_pages, stamp
from tests.anomaly.oncall_standin import OncallStandIn
from tests.conftest import auth_headers

INSTANCES = ("a", "b", "c")


def points(detector_id: str, spikes: dict[str, list[int]], n: int, first: int = 0) -> list[dict]:
    """n points of each instance, a smooth daily-free signal; `spikes` per instance."""
    out: list[dict[str, Any]] = []
    for k, instance in enumerate(INSTANCES):
        rng = np.random.default_rng(100 + k)
        values = 100.0 + rng.normal(0.0, 1.0, first + n)[first:]
        for i in spikes.get(instance, []):
            if first <= i < first + n:
                values[i - first] = 200.0
        out += [
            {
                "detector_id": detector_id,
                "value": float(v),
                "timestamp": stamp(first + i),
                "labels": {"instance": instance, "pod": f"{instance}-1"},
            }
            for i, v in enumerate(values)
        ]
    return out


async def test_an_anomaly_in_one_series_pages_once_naming_it(
    anomaly: httpx.AsyncClient, worker_pool: asyncpg.Pool, standin: OncallStandIn
) -> None:
    await create_detector(
        anomaly,
        "fleet",
        name="API latency",
        algorithm="mad",
        group_by=["instance"],
        thresholds={"score": 0.999, "direction": "up", "cooldown_seconds": 600},
        escalation_policy_id="ops",
    )
    first = await ingest(anomaly, points("fleet", {"b": [100]}, 105))
    assert first.status_code == 200, first.text
    found = first.json()["anomalies"]
    assert [(a["labels"], a["timestamp"]) for a in found] == [({"instance": "b"}, stamp(100))]

    now = T0 + timedelta(hours=3)
    await send_pages(worker_pool, standin, now)
    (page,) = standin.opened()
    key = f'anomaly:primary:fleet:{{"instance":"b"}}:{stamp(100)}'
    assert page.body["dedup_key"] == key
    assert page.body["summary"].startswith('Anomaly on API latency {instance="b"}: value 200')
    assert page.body["details"]["labels"] == {"instance": "b"}
    assert page.body["details"]["detector_id"] == "fleet"

    # normal points past the cooldown end b's episode: its alert, and only it, resolves
    await ingest(anomaly, points("fleet", {}, 20, first=105))
    await send_pages(worker_pool, standin, now)
    (resolve,) = standin.resolved()
    assert resolve.path == "/api/v1/alerts/1/resolve"
    assert len(standin.opened()) == 1  # a and c never paged

    for instance, expected in (("a", 0), ("b", 1), ("c", 0)):
        listed = await anomaly.get(
            "/api/v1/anomalies",
            params={"detector_id": "fleet", "label": f"instance={instance}"},
            headers=auth_headers(),
        )
        assert len(listed.json()["data"]) == expected, instance
    series = (await anomaly.get("/api/v1/detectors/fleet/series", headers=auth_headers())).json()
    assert [(s["labels"]["instance"], s["counts"]["anomalies"]) for s in series["data"]] == [
        ("a", 0),
        ("b", 1),
        ("c", 0),
    ]


async def test_a_quiet_series_episode_is_resolved_by_the_worker(
    anomaly: httpx.AsyncClient, worker_pool: asyncpg.Pool, standin: OncallStandIn
) -> None:
    await create_detector(
        anomaly,
        "quiet",
        name="Queue depth",
        algorithm="mad",
        group_by=["instance"],
        thresholds={"score": 0.999, "direction": "up", "cooldown_seconds": 600},
        escalation_policy_id="ops",
    )
    await ingest(anomaly, points("quiet", {"c": [104]}, 105))  # c ends on an anomaly
    now = T0 + timedelta(hours=3)
    await send_pages(worker_pool, standin, now)
    (page,) = standin.opened()
    assert page.body["details"]["labels"] == {"instance": "c"}

    closed = await close_quiet_episodes(worker_pool, now)
    assert (closed.closed, closed.resolves) == (1, 1)
    await send_pages(worker_pool, standin, now)
    (resolve,) = standin.resolved()
    rows = await worker_pool.fetch(
        "SELECT kind, dedup_key, summary, details FROM np_anomaly_page_outbox "
        "WHERE detector_id = 'quiet' ORDER BY id"
    )
    assert [r["kind"] for r in rows] == ["open", "resolve"]
    assert rows[1]["dedup_key"] == rows[0]["dedup_key"]
    assert rows[1]["details"]["labels"] == {"instance": "c"}
    assert '{"instance":"c"}' in rows[1]["summary"]
    # nothing else is left to end
    assert (await close_quiet_episodes(worker_pool, now)).closed == 0


async def test_new_thresholds_move_the_end_of_each_series_episode(
    anomaly: httpx.AsyncClient, worker_pool: asyncpg.Pool
) -> None:
    await create_detector(
        anomaly,
        "moved",
        algorithm="mad",
        group_by=["instance"],
        thresholds={"score": 0.999, "direction": "up", "cooldown_seconds": 600},
        escalation_policy_id="ops",
    )
    await ingest(anomaly, points("moved", {"a": [104], "c": [104]}, 105))

    async def episodes() -> dict[str, tuple[str | None, Any]]:
        rows = await worker_pool.fetch(
            "SELECT series_key, episode_key, episode_ends_at FROM np_anomaly_series "
            "WHERE detector_id = 'moved' ORDER BY series_key"
        )
        return {r["series_key"]: (r["episode_key"], r["episode_ends_at"]) for r in rows}

    before = await episodes()
    spike = T0 + timedelta(minutes=104)
    for instance in ("a", "c"):
        key = f'{{"instance":"{instance}"}}'
        assert before[key] == (
            f"anomaly:primary:moved:{key}:{stamp(104)}",
            spike + timedelta(minutes=10),
        )
    assert before['{"instance":"b"}'] == (None, None)
    patched = await anomaly.patch(
        "/api/v1/detectors/moved",
        json={"thresholds": {"score": 0.999, "direction": "up", "cooldown_seconds": 1800}},
        headers=auth_headers(),
    )
    assert patched.status_code == 200, patched.text
    after = await episodes()
    for instance in ("a", "c"):
        key = f'{{"instance":"{instance}"}}'
        assert after[key] == (before[key][0], spike + timedelta(minutes=30))
    assert after['{"instance":"b"}'] == (None, None)
