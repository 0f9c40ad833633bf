"""Remote write's inbox: a request is answered once stored, and scored by the drain,
in order, exactly once, across replicas and restarts; past the backlog, 503."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from services.anomaly.app import create_app
from services.anomaly.remote_write.inbox import take
from tests.anomaly.conftest import T0, create_detector, stored_points
from tests.anomaly.remote_write.support import HEADERS, body, scored
from tests.conftest import auth_headers, make_settings, serve_app

RW = "/api/v1/write"
LOCK = "SELECT pg_advisory_lock(hashtextextended('nsentry.remote_write:' || $1, 0))"
UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('nsentry.remote_write:' || $1, 0))"


def test_a_batch_takes_the_oldest_bodies_that_fit_and_at_least_one() -> None:
    assert take([(1, 500), (2, 500), (3, 500)], limit=1000) == [1, 2]
    assert take([(1, 500), (2, 501)], limit=1000) == [1]
    assert take([(7, 5000), (8, 1)], limit=1000) == [7]  # a body over the limit alone
    assert take([(1, 0), (2, 0), (3, 1000)], limit=1000) == [1, 2, 3]
    assert take([], limit=1000) == []


def series_body(first: int, count: int, instance: str = "a") -> bytes:
    samples = [(T0 + timedelta(minutes=first + i), float(first + i)) for i in range(count)]
    return body([({"__name__": "up", "instance": instance}, samples)])


@pytest.fixture
async def replicas(database_url: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two apps on one database (two replicas), the second with a backlog of 10."""
    async with (
        serve_app(create_app(make_settings(database_url), background=False)) as one,
        serve_app(
            create_app(
                make_settings(database_url, anomaly_remote_write_backlog=10), background=False
            )
        ) as two,
    ):
        yield [one, two]


async def detector(client: httpx.AsyncClient, account: str) -> None:
    await create_detector(
        client,
        "up",
        account=account,
        metric_source={"type": "remote_write", "match": "up"},
        group_by=["instance"],
    )


async def series_row(database_url: str, account: str) -> dict[str, Any]:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT n_seen, points_count, late_count, duplicates_count FROM np_anomaly_series"
            " WHERE source_account_id = $1 AND detector_id = 'up'",
            account,
        )
        waiting = await conn.fetchval(
            "SELECT count(*) FROM np_anomaly_write_inbox WHERE source_account_id = $1", account
        )
    finally:
        await conn.close()
    return {**(dict(row) if row is not None else {}), "waiting": waiting}


async def test_requests_accepted_while_another_replica_drains_are_scored_in_order_once(
    replicas: list[httpx.AsyncClient], database_url: str
) -> None:
    acct = "inbox-order"
    one, two = replicas
    await detector(one, acct)
    headers = {**auth_headers(acct), **HEADERS}
    holder = await asyncpg.connect(database_url)  # as if a third replica were draining
    try:
        await holder.fetchval(LOCK, acct)
        # requests of one series in time order, to both replicas, answered at once
        for k, client in enumerate([one, two, one, two, one]):
            response = await client.post(RW, content=series_body(3 * k, 3), headers=headers)
            assert response.status_code == 204, response.text
        assert await series_row(database_url, acct) == {"waiting": 5}
        assert await stored_points(database_url, "up", acct) == []  # not scored yet
        await holder.fetchval(UNLOCK, acct)
    finally:
        await holder.close()
    for client in replicas:
        await scored(client)
    stored = await stored_points(database_url, "up", acct)
    assert [value for _, _, value in stored] == [float(i) for i in range(15)]
    # learned in the order sent: nothing late, nothing twice, the inbox empty
    assert await series_row(database_url, acct) == {
        "n_seen": 15,
        "points_count": 15,
        "late_count": 0,
        "duplicates_count": 0,
        "waiting": 0,
    }


async def test_past_the_backlog_a_request_is_a_503_to_retry_and_nothing_is_lost(
    replicas: list[httpx.AsyncClient], database_url: str
) -> None:
    acct = "inbox-full"
    _, two = replicas  # backlog: 10 samples
    await detector(two, acct)
    headers = {**auth_headers(acct), **HEADERS}
    holder = await asyncpg.connect(database_url)
    try:
        await holder.fetchval(LOCK, acct)
        assert (await two.post(RW, content=series_body(0, 6), headers=headers)).status_code == 204
        assert (await two.post(RW, content=series_body(6, 6), headers=headers)).status_code == 204
        full = await two.post(RW, content=series_body(12, 6), headers=headers)
        assert full.status_code == 503, full.text
        assert full.json()["error"]["code"] == "backlogged"
        assert "over 10 remote-write samples" in full.json()["error"]["message"]
        assert full.headers["retry-after"] == "1"
        assert await series_row(database_url, acct) == {"waiting": 2}  # the 503 kept nothing
        await holder.fetchval(UNLOCK, acct)
    finally:
        await holder.close()
    await scored(two)
    retried = await two.post(RW, content=series_body(12, 6), headers=headers)  # the retry
    assert retried.status_code == 204
    await scored(two)
    values = [value for _, _, value in await stored_points(database_url, "up", acct)]
    assert values == [float(i) for i in range(18)]


async def test_an_account_whose_drain_waits_holds_up_no_other(
    replicas: list[httpx.AsyncClient], database_url: str
) -> None:
    one, _ = replicas
    stuck, free = "inbox-stuck", "inbox-free"
    for acct in (stuck, free):
        await detector(one, acct)
    holder = await asyncpg.connect(database_url)
    try:
        await holder.fetchval(LOCK, stuck)  # its drain cannot start
        for k in range(3):
            for acct in (stuck, free):
                content = series_body(3 * k, 3)
                headers = {**auth_headers(acct), **HEADERS}
                assert (await one.post(RW, content=content, headers=headers)).status_code == 204
        await scored(one, free)
        assert len(await stored_points(database_url, "up", free)) == 9
        assert await series_row(database_url, stuck) == {"waiting": 3}
        await holder.fetchval(UNLOCK, stuck)
    finally:
        await holder.close()
    await scored(one, stuck)
    assert len(await stored_points(database_url, "up", stuck)) == 9


async def test_bodies_left_by_a_stopped_replica_are_drained_at_start_exactly_once(
    database_url: str, settings: Any
) -> None:
    acct = "inbox-restart"
    async with serve_app(create_app(settings, background=False)) as client:
        await detector(client, acct)
        headers = {**auth_headers(acct), **HEADERS}
        first = await client.post(RW, content=series_body(0, 4), headers=headers)
        assert first.status_code == 204
        await scored(client)
    # bodies stored, not drained: a replica that stopped between the answer and the
    # drain; the first of them was scored already (its retry, say)
    conn = await asyncpg.connect(database_url)
    try:
        for content, samples in ((series_body(0, 4), 4), (series_body(4, 4), 4)):
            await conn.execute(
                "INSERT INTO np_anomaly_write_inbox (source_account_id, samples, body) "
                "VALUES ($1, $2, $3)",
                acct,
                samples,
                content,
            )
    finally:
        await conn.close()
    async with serve_app(create_app(settings, background=False)) as client:
        await scored(client)  # the drains the start-up sweep began
    values = [value for _, _, value in await stored_points(database_url, "up", acct)]
    assert values == [float(i) for i in range(8)]
    assert await series_row(database_url, acct) == {
        "n_seen": 8,
        "points_count": 8,
        "late_count": 0,
        "duplicates_count": 4,
        "waiting": 0,
    }


async def test_a_body_that_cannot_be_stored_is_dropped_alone_and_logged(
    client: httpx.AsyncClient, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    acct = "inbox-poison"
    await detector(client, acct)
    headers = {**auth_headers(acct), **HEADERS}
    before = (
        REGISTRY.get_sample_value("nsentry_remote_write_samples_total", {"outcome": "dropped"})
        or 0.0
    )
    holder = await asyncpg.connect(database_url)
    try:
        await holder.fetchval(LOCK, acct)
        ok = await client.post(RW, content=series_body(0, 2), headers=headers)
        assert ok.status_code == 204
        # a body no check let in (written behind the service's back), between two good ones
        await holder.execute(
            "INSERT INTO np_anomaly_write_inbox (source_account_id, samples, body) "
            "VALUES ($1, 7, $2)",
            acct,
            b"\xff\xff\xff\xff\xff",
        )
        ok = await client.post(RW, content=series_body(2, 2), headers=headers)
        assert ok.status_code == 204
        await holder.fetchval(UNLOCK, acct)
    finally:
        await holder.close()
    await scored(client, acct)
    values = [value for _, _, value in await stored_points(database_url, "up", acct)]
    assert values == [0.0, 1.0, 2.0, 3.0]  # both good bodies, in order
    assert await series_row(database_url, acct) == {
        "n_seen": 4,
        "points_count": 4,
        "late_count": 0,
        "duplicates_count": 0,
        "waiting": 0,
    }
    after = REGISTRY.get_sample_value("nsentry_remote_write_samples_total", {"outcome": "dropped"})
    assert after == before + 7
    [dropped] = [r for r in caplog.records if "cannot be stored" in r.getMessage()]
    assert dropped.levelname == "ERROR" and acct in dropped.getMessage()
