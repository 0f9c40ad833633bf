"""Concurrent single-point requests share transactions, each keeping its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.anomaly.app import create_app
from services.common.settings import Settings
from tests.anomaly.conftest import T0, create_detector, insert_unscored, noise, stamp
from tests.conftest import auth_headers, serve_app


@pytest.fixture(scope="module")
async def served(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings, background=False)
    async with serve_app(app) as client:
        yield app, client


async def post(client: httpx.AsyncClient, detector_id: str, i: int, value: float) -> httpx.Response:
    point = {"detector_id": detector_id, "value": value, "timestamp": stamp(i)}
    return await client.post("/api/v1/ingest", json=point, headers=auth_headers())


async def count(settings: Settings, detector_id: str) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM np_anomaly_data_points WHERE detector_id = $1", detector_id
            )
        )
    finally:
        await conn.close()


async def test_a_bad_request_fails_alone(
    served: tuple[FastAPI, httpx.AsyncClient], settings: Settings
) -> None:
    app, client = served
    ids = [f"gc-{k}" for k in range(12)]
    for detector_id in ids:
        await create_detector(client, detector_id, algorithm="ewma")
    await create_detector(client, "gc-off", algorithm="ewma", enabled=False)
    single = app.state.single_ingest
    groups, requests = single.groups, single.requests
    calls = [post(client, d, 0, 1.0) for d in ids]
    calls.insert(3, post(client, "gc-nope", 0, 1.0))  # unknown detector
    calls.insert(8, post(client, "gc-off", 0, 1.0))  # disabled detector
    calls.append(post(client, "gc-0", 0, 2.0))  # the same point again: a duplicate
    answers = await asyncio.gather(*calls)
    statuses = [r.status_code for r in answers]
    assert statuses == [200] * 3 + [404] + [200] * 4 + [409] + [200] * 6
    assert answers[3].json()["error"]["code"] == "not_found"
    assert answers[8].json()["error"]["code"] == "conflict"
    assert answers[-1].json() == {
        "accepted": 0,
        "duplicates": 1,
        "late": 0,
        "anomalies": [],
        "refused": 0,
        "errors": [],
    }
    assert all(
        r.json()
        == {
            "accepted": 1,
            "duplicates": 0,
            "late": 0,
            "anomalies": [],
            "refused": 0,
            "errors": [],
        }
        for r in answers[:-1]
        if r.status_code == 200
    )
    for detector_id in ids:
        assert await count(settings, detector_id) == 1
    assert await count(settings, "gc-off") == 0
    # fewer transactions than requests: they were grouped
    assert single.requests - requests == len(calls)
    assert single.groups - groups < len(calls)


async def test_grouped_points_are_scored_as_if_sent_one_by_one(
    served: tuple[FastAPI, httpx.AsyncClient], settings: Settings
) -> None:
    """Several detectors, interleaved, sent together: each point's answer and stored
    row equal those of a twin detector fed the same points one request at a time."""
    _, client = served
    names = ["gx-a", "gx-b", "gx-c"]
    for name in names:
        await create_detector(client, name, algorithm="ewma", params={"warmup": 5})
        await create_detector(client, f"{name}-seq", algorithm="ewma", params={"warmup": 5})
    values = {name: noise(60, seed=k) for k, name in enumerate(names)}
    for name in names:
        values[name][45] += 40.0
    for i in range(0, 60, 10):  # rounds of concurrent requests, in time order per detector
        batch = [(name, j) for j in range(i, i + 10) for name in names]
        grouped = await asyncio.gather(
            *(post(client, name, j, float(values[name][j])) for name, j in batch)
        )
        for (name, j), got in zip(batch, grouped, strict=True):
            alone = await post(client, f"{name}-seq", j, float(values[name][j]))
            assert _same(got.json()) == _same(alone.json())
    conn = await asyncpg.connect(settings.database_url)
    try:
        for name in names:
            rows = []
            for detector_id in (name, f"{name}-seq"):
                rows.append(
                    [
                        tuple(r)
                        for r in await conn.fetch(
                            "SELECT ts, score, expected, lower, upper, is_anomaly, late "
                            "FROM np_anomaly_data_points WHERE detector_id = $1 ORDER BY ts",
                            detector_id,
                        )
                    ]
                )
            assert rows[0] == rows[1] and len(rows[0]) == 60
            state = await conn.fetch(
                "SELECT state, journal, policy_state, n_seen FROM np_anomaly_series "
                "WHERE detector_id = ANY($1::text[]) ORDER BY detector_id",
                [name, f"{name}-seq"],
            )
            assert tuple(state[0]) == tuple(state[1])
    finally:
        await conn.close()


async def test_a_group_that_fails_as_a_whole_is_redone_request_by_request(
    served: tuple[FastAPI, httpx.AsyncClient], settings: Settings
) -> None:
    """One point meets a row stored behind the lock (a Hasura insert): the shared
    transaction rolls back, and every request is then answered on its own."""
    app, client = served
    for name in ("fail-a", "fail-b", "fail-c"):
        await create_detector(client, name, algorithm="ewma")
    for name in ("fail-a", "fail-b", "fail-c"):
        for i in range(3):
            assert (await post(client, name, i, 1.0 + i)).status_code == 200
    await insert_unscored(
        settings.database_url or "", "primary", "fail-b", [(T0 + timedelta(minutes=5), 9.0)]
    )
    answers = await asyncio.gather(
        post(client, "fail-a", 5, 3.0),
        post(client, "fail-b", 5, 3.0),  # collides with the Hasura row
        post(client, "fail-c", 5, 3.0),
        post(client, "fail-b", 6, 3.0),
    )
    assert [r.status_code for r in answers] == [200, 200, 200, 200]
    assert [r.json()["accepted"] for r in answers] == [1, 0, 1, 1]
    assert answers[1].json()["duplicates"] == 1
    assert await count(settings, "fail-b") == 5
    detector = await client.get("/api/v1/detectors/fail-b", headers=auth_headers())
    assert detector.json()["n_seen"] == 4  # 0, 1, 2 and 6; the Hasura row is not learned
    assert not app.state.single_ingest._accounts  # nothing left waiting


def _same(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without what differs between twin detectors."""
    strip = ("id", "ingested_at", "detector_id")
    anomalies = [{k: v for k, v in a.items() if k not in strip} for a in answer["anomalies"]]
    return {**answer, "anomalies": anomalies}
