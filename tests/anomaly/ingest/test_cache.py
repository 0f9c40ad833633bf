"""The model kept in memory, the checkpoint and the journal: whatever serves an ingest
(a warm replica, another replica, a fresh process), the results are the same bits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from services.anomaly.app import create_app
from services.anomaly.ingest import statecodec
from services.anomaly.ingest.cache import DetectorCache
from services.anomaly.ingest.scoring import build_detector
from services.anomaly.ingest.transaction import CHECKPOINT_CHUNKS
from services.common.settings import Settings
from tests.anomaly.conftest import T0, create_detector, noise, series
from tests.conftest import auth_headers, make_settings, serve_app

POINT_COLUMNS = "ts, value, score, expected, lower, upper, is_anomaly, severity, late, status"
DETECTOR_COLUMNS = (
    "state, journal, policy_state, n_seen, warmup, points_count, anomalies_count, late_count, "
    "duplicates_count, last_ts, last_value, last_score, last_anomaly_at"
)


class Replicas:
    """Several app instances (each with its own pool and model cache) on one database."""

    def __init__(self, settings: Settings, stack: AsyncExitStack) -> None:
        self.settings = settings
        self.stack = stack
        self.apps: list[FastAPI] = []
        self.clients: list[httpx.AsyncClient] = []

    async def start(self) -> int:
        app = create_app(self.settings, background=False)
        client = await self.stack.enter_async_context(serve_app(app))
        self.apps.append(app)
        self.clients.append(client)
        return len(self.apps) - 1

    def cache(self, k: int) -> DetectorCache:
        cache: DetectorCache = self.apps[k].state.ingestor.cache
        return cache


@pytest.fixture
async def replicas(settings: Settings) -> AsyncIterator[Replicas]:
    async with AsyncExitStack() as stack:
        yield Replicas(settings, stack)


async def send(
    client: httpx.AsyncClient, detector_id: str, points: list[dict[str, Any]]
) -> dict[str, Any]:
    mine = [{**p, "detector_id": detector_id} for p in points]
    body: dict[str, Any] = mine[0] if len(mine) == 1 else {"points": mine}
    response = await client.post("/api/v1/ingest", json=body, headers=auth_headers())
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    for anomaly in result["anomalies"]:
        anomaly.pop("id"), anomaly.pop("ingested_at"), anomaly.pop("detector_id")
    return result


async def stored(settings: Settings, detector_id: str) -> tuple[list[Any], dict[str, Any]]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        points = await conn.fetch(
            f"SELECT {POINT_COLUMNS} FROM np_anomaly_data_points "  # noqa: S608
            "WHERE detector_id = $1 ORDER BY ts",
            detector_id,
        )
        row = await conn.fetchrow(
            f"SELECT {DETECTOR_COLUMNS} FROM np_anomaly_series "  # noqa: S608
            "WHERE detector_id = $1 AND series_key = '{}'",
            detector_id,
        )
    finally:
        await conn.close()
    assert row is not None
    return [tuple(p) for p in points], dict(row)


def requests_of(n: int, *, seed: int) -> list[list[dict[str, Any]]]:
    """Batches and single points, some late (held back, sent later), some repeated."""
    values = noise(n, seed=seed)
    values[n // 3] += 60.0
    values[2 * n // 3] -= 45.0
    points = series("x", values)
    out: list[list[dict[str, Any]]] = [points[:150]]
    at = 150
    held: list[dict[str, Any]] = []
    rng = np.random.default_rng(seed)
    while at < n:
        size = 1 if rng.random() < 0.9 else int(rng.integers(2, 13))
        chunk = points[at : at + size]
        at += size
        if size > 1 and rng.random() < 0.3:
            held.append(chunk.pop(0))  # sent later: late
        if held and rng.random() < 0.1:
            chunk = [*chunk, held.pop(0), points[at - size - 1]]  # late, and a repeat
        out.append(chunk)
    out += [[p] for p in held]
    return out


@pytest.mark.parametrize("algorithm", ["auto", "ewma"])
async def test_any_replica_and_a_cold_start_give_the_same_bits(
    replicas: Replicas, settings: Settings, algorithm: str
) -> None:
    """'a' is served by a changing replica (two warm ones taking turns, then fresh
    processes with an empty cache); its twin 'b' always by the same one. Every stored
    score, band and flag, every answer, and the stored model are identical."""
    first, second = await replicas.start(), await replicas.start()
    a, b = f"rep-a-{algorithm}", f"rep-b-{algorithm}"
    for detector_id in (a, b):
        await create_detector(replicas.clients[first], detector_id, algorithm=algorithm)
    plan = requests_of(800, seed=5 if algorithm == "auto" else 6)
    assert len(plan) > 360 > 2 * CHECKPOINT_CHUNKS  # checkpoints are crossed
    for k, points in enumerate(plan):
        if k in (200, 320):
            await replicas.start()  # a cold process takes over from here
        if k < 120:
            serving = first if k % 7 else second  # both warm, the other one catches up
        else:
            serving = len(replicas.apps) - 1 if k % 5 else first
        got_a = await send(replicas.clients[serving], a, points)
        got_b = await send(replicas.clients[first], b, points)
        assert got_a == got_b, k
    points_a, model_a = await stored(settings, a)
    points_b, model_b = await stored(settings, b)
    assert points_a == points_b
    assert model_a == model_b
    assert model_a["points_count"] == 800 and model_a["late_count"] > 0
    assert model_a["state"] is not None  # a checkpoint was written
    assert len(model_a["journal"]) < CHECKPOINT_CHUNKS * statecodec.journal_size(30)
    warm = replicas.cache(first)
    assert warm.hits > 0 and warm.caught_up > 0  # reused after another replica's ingests
    assert replicas.cache(len(replicas.apps) - 1).misses >= 1  # the cold one rebuilt it


async def test_the_model_in_the_row_is_the_live_model(
    replicas: Replicas, settings: Settings
) -> None:
    """Checkpoint + journal replayed chunk by chunk equal the model that served."""
    k = await replicas.start()
    client = replicas.clients[k]
    await create_detector(client, "row-model")
    for points in requests_of(400, seed=9):
        await send(client, "row-model", points)
    entry = replicas.cache(k).take("primary", ("row-model", "{}"))
    assert entry is not None
    _, row = await stored(settings, "row-model")
    rebuilt = build_detector("auto", entry.params)
    if row["state"] is not None:
        rebuilt.set_state(statecodec.unpack(json.loads(row["state"])["model"]))
    chunks = list(statecodec.journal_chunks(row["journal"]))
    for epoch, values in chunks:
        rebuilt.score(epoch, values)
    assert len(chunks) == entry.chunks and entry.position == len(row["journal"])
    assert rebuilt.get_state() == entry.detector.get_state()
    assert rebuilt.n_seen == row["n_seen"]


async def test_new_params_are_a_new_model_everywhere(
    replicas: Replicas, settings: Settings
) -> None:
    """A PATCH of params on one replica restarts learning; another replica holding the
    old model in memory does not use it."""
    one, two = await replicas.start(), await replicas.start()
    h = auth_headers()
    await create_detector(replicas.clients[one], "renew", algorithm="ewma")
    await create_detector(replicas.clients[one], "fresh", algorithm="ewma", params={"alpha": 0.2})
    old = series("renew", noise(80, seed=2))
    await send(replicas.clients[one], "renew", old)
    assert ("primary", ("renew", "{}")) in replicas.cache(one)  # the old model, warm
    await send(replicas.clients[one], "renew", series("renew", [100.0], first=80))
    patched = await replicas.clients[two].patch(
        "/api/v1/detectors/renew", json={"params": {"alpha": 0.2}}, headers=h
    )
    assert patched.json()["n_seen"] == 0
    later = series("x", noise(60, seed=3), first=100)
    for i in range(0, 60, 6):
        got = await send(replicas.clients[one], "renew", later[i : i + 6])
        twin = await send(replicas.clients[one], "fresh", later[i : i + 6])
        scores = [(p["timestamp"], p["score"]) for p in got["anomalies"]]
        assert scores == [(p["timestamp"], p["score"]) for p in twin["anomalies"]]
    renewed, _ = await stored(settings, "renew")
    fresh, _ = await stored(settings, "fresh")
    band = slice(2, 6)  # score, expected, lower, upper
    assert [p[band] for p in renewed[-60:]] == [p[band] for p in fresh]


async def test_a_failed_transaction_leaves_no_trace_in_memory(
    replicas: Replicas, settings: Settings
) -> None:
    """A call rolled back after scoring (a row stored behind the lock) is redone; the
    model it had moved is not reused."""
    from tests.anomaly.conftest import insert_unscored

    k = await replicas.start()
    client = replicas.clients[k]
    await create_detector(client, "undo", algorithm="ewma")
    await create_detector(client, "undo-twin", algorithm="ewma")
    first = series("x", noise(50, seed=4))
    await send(client, "undo", first)
    await send(client, "undo-twin", first)
    await insert_unscored(
        settings.database_url or "", "primary", "undo", [(T0 + timedelta(minutes=51), 5.0)]
    )
    more = series("x", noise(5, seed=6), first=50)
    result = await send(client, "undo", more)  # collides at 51, rolls back, redone
    assert result["accepted"] == 4 and result["duplicates"] == 1
    await send(client, "undo-twin", [p for i, p in enumerate(more) if i != 1])
    tail = series("x", noise(20, seed=7), first=60)
    for p in tail:
        assert await send(client, "undo", [p]) == await send(client, "undo-twin", [p])
    _, undo = await stored(settings, "undo")
    _, twin = await stored(settings, "undo-twin")
    for column in ("state", "journal", "policy_state", "n_seen"):
        assert undo[column] == twin[column], column


async def test_the_model_does_not_depend_on_the_stored_points(
    replicas: Replicas, settings: Settings
) -> None:
    """Retention, or a Hasura user deleting points, cannot change a model: a cold process
    rebuilds it from the detector row alone."""
    warm = await replicas.start()
    for name in ("kept", "pruned"):
        await create_detector(replicas.clients[warm], name)
    plan = requests_of(500, seed=12)
    for points in plan[:200]:
        assert await send(replicas.clients[warm], "kept", points) == await send(
            replicas.clients[warm], "pruned", points
        )
    conn = await asyncpg.connect(settings.database_url)
    try:
        deleted = await conn.execute(
            "DELETE FROM np_anomaly_data_points WHERE detector_id = 'pruned'"
        )
    finally:
        await conn.close()
    assert int(deleted.split()[-1]) > 300
    cold = await replicas.start()
    latest = max(p["timestamp"] for points in plan[:200] for p in points)  # same format
    for points in plan[200:]:
        new = [p for p in points if p["timestamp"] > latest]
        if not new:
            continue  # late or repeated points would now be new rows for 'pruned' only
        kept = await send(replicas.clients[warm], "kept", new)
        pruned = await send(replicas.clients[cold], "pruned", new)
        assert kept == pruned
    assert replicas.cache(cold).misses >= 1
    _, kept_row = await stored(settings, "kept")
    _, pruned_row = await stored(settings, "pruned")
    for column in ("state", "journal", "policy_state", "n_seen", "last_ts", "last_score"):
        assert kept_row[column] == pruned_row[column], column


async def test_the_cache_is_emptied_when_the_app_stops(settings: Settings) -> None:
    app = create_app(settings, background=False)
    async with serve_app(app) as client:
        await create_detector(client, "shutdown-cache")
        await send(client, "shutdown-cache", requests_of(30, seed=3)[0])
        assert len(app.state.ingestor.cache) == 1
    assert len(app.state.ingestor.cache) == 0


async def test_the_model_cache_size_is_a_setting(database_url: str) -> None:
    """ANOMALY_MODEL_CACHE bounds the models kept, one per series (here 5 series, 3 kept)."""
    app = create_app(make_settings(database_url, anomaly_model_cache=3), background=False)
    async with serve_app(app) as c:
        await create_detector(c, "sized", algorithm="ewma")
        for k in range(5):
            points = [{**p, "labels": {"host": f"h{k}"}} for p in series("sized", [1.0, 2.0])]
            got = await c.post("/api/v1/ingest", json={"points": points}, headers=auth_headers())
            assert got.status_code == 200 and got.json()["accepted"] == 2
        cache: DetectorCache = app.state.ingestor.cache
        assert cache.capacity == 3 and len(cache) == 3
        assert ("primary", ("sized", '{"host":"h4"}')) in cache  # the latest used stay
        assert ("primary", ("sized", '{"host":"h0"}')) not in cache
        # /metrics counts the models found live and those rebuilt from the database
        before = cache_counts((await c.get("/metrics")).text)
        for host in ("h4", "h0"):  # kept, then evicted
            points = [{**p, "labels": {"host": host}} for p in series("sized", [3.0], first=10)]
            got = await c.post("/api/v1/ingest", json={"points": points}, headers=auth_headers())
            assert got.status_code == 200 and got.json()["accepted"] == 1
        after = cache_counts((await c.get("/metrics")).text)
        assert after["hit"] - before["hit"] == 1 and after["miss"] - before["miss"] == 1


def cache_counts(metrics: str) -> dict[str, float]:
    """``nsentry_model_cache_total`` by result, as ``/metrics`` shows it."""
    found = {"hit": 0.0, "miss": 0.0}
    for line in metrics.splitlines():
        for result in found:
            if line.startswith(f'nsentry_model_cache_total{{result="{result}"}} '):
                found[result] = float(line.split()[1])
    return found
