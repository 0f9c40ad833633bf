"""Database outages, against a real PostgreSQL that is SIGKILLed and started again.

These tests run their own embedded Postgres (the session's is shared by every
other test module): it is killed as a crash would kill it (the postmaster and
every backend, `kill -9`), and started again on the same data and socket. While
it is down every request answers 503 ``service_unavailable`` with the envelope
and ``Retry-After``, never 500; once it is back the same apps answer 200 without
a restart; the log holds one line per kind of failure per interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from services.anomaly.app import create_app as create_anomaly
from services.common.embedded import EmbeddedPostgres
from services.common.errors import DatabaseUnavailable
from services.common.outage import OutageLog, outage_kind, outages, redact
from services.oncall.app import create_app as create_oncall
from tests.conftest import auth_headers, create_database, make_settings, own_postgres, serve_app

pytestmark = pytest.mark.db

H = auth_headers()
START = datetime(2026, 11, 1, tzinfo=UTC)
GRAPHQL = {"query": "{ schedules(limit: 5) { id name } }"}


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedPostgres]:
    """A Postgres of this module's own, free to be killed."""
    with own_postgres("outage") as pg:
        yield pg


@pytest.fixture(scope="module")
async def dsn(server: EmbeddedPostgres) -> str:
    return await create_database(server, "outage")


@pytest.fixture(scope="module")
async def anomaly(dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(create_anomaly(make_settings(dsn)), raise_app_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
async def oncall(dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(create_oncall(make_settings(dsn)), raise_app_exceptions=False) as c:
        yield c


@pytest.fixture(autouse=True)
def fresh_outage_log() -> Iterator[None]:
    outages.reset()
    yield
    outages.reset()


async def kill(server: EmbeddedPostgres) -> None:
    await asyncio.to_thread(server.kill)


async def start(server: EmbeddedPostgres) -> None:
    await asyncio.to_thread(server.start)


def points(detector: str, first: int, n: int) -> list[dict[str, Any]]:
    """``n`` points of ``detector`` at seconds ``first`` .. ``first + n - 1`` after START."""
    return [
        {
            "detector_id": detector,
            "value": 100.0 + (i % 7),
            "timestamp": (START + timedelta(seconds=first + i)).isoformat(),
        }
        for i in range(n)
    ]


async def create_detector(client: httpx.AsyncClient, detector_id: str) -> None:
    body = {"id": detector_id, "name": detector_id, "algorithm": "ewma"}
    response = await client.post("/api/v1/detectors", json=body, headers=H)
    assert response.status_code == 201, response.text


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert error["message"].startswith("the database ")
    assert error["message"].endswith("; retry later")
    assert int(response.headers["retry-after"]) > 0
    assert "Traceback" not in response.text


async def requests_of_every_kind(
    anomaly: httpx.AsyncClient, oncall: httpx.AsyncClient, detector: str, first: int
) -> dict[str, httpx.Response]:
    return {
        "ingest batch": await anomaly.post(
            "/api/v1/ingest", json={"points": points(detector, first, 5)}, headers=H
        ),
        "ingest one": await anomaly.post(
            "/api/v1/ingest", json=points(detector, first + 5, 1)[0], headers=H
        ),
        "detector list": await anomaly.get("/api/v1/detectors", headers=H),
        "anomaly list": await anomaly.get("/api/v1/anomalies", headers=H),
        "people list": await oncall.get("/api/v1/people", headers=H),
        "graphql": await oncall.post("/graphql", json=GRAPHQL, headers=H),
    }


async def test_an_outage_answers_503_and_the_apps_recover_without_a_restart(
    server: EmbeddedPostgres,
    anomaly: httpx.AsyncClient,
    oncall: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await create_detector(anomaly, "down-up")
    before = await requests_of_every_kind(anomaly, oncall, "down-up", 0)
    assert {name: r.status_code for name, r in before.items()} == dict.fromkeys(before, 200)

    await kill(server)
    try:
        with caplog.at_level(logging.INFO):
            during = await requests_of_every_kind(anomaly, oncall, "down-up", 100)
            for response in during.values():
                assert_unavailable(response)
            for client in (anomaly, oncall):
                ready = await client.get("/ready")
                assert ready.status_code == 503
                assert ready.json()["status"] == "not_ready"
                health = await client.get("/health")
                assert (health.status_code, health.json()["db"]) == (503, "unreachable")
        assert not [r for r in caplog.records if r.exc_info], "no traceback during an outage"
        assert all(r.levelno < logging.ERROR for r in caplog.records)
    finally:
        await start(server)

    after = await requests_of_every_kind(anomaly, oncall, "down-up", 200)
    assert {name: r.status_code for name, r in after.items()} == dict.fromkeys(after, 200)
    assert after["graphql"].json() == {"data": {"schedules": []}}
    for client in (anomaly, oncall):
        assert (await client.get("/ready")).json() == {"status": "ready"}
    # the 503s stored nothing: 6 points before, 6 after
    detector = (await anomaly.get("/api/v1/detectors/down-up", headers=H)).json()
    assert detector["counts"]["points"] == 12
    metrics = (await anomaly.get("/metrics")).text
    assert "nsentry_db_unavailable_total{" in metrics


async def test_outage_logs_one_line_per_kind_of_failure_per_interval(
    server: EmbeddedPostgres,
    anomaly: httpx.AsyncClient,
    oncall: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await create_detector(anomaly, "log-lines")
    requests = 0
    await kill(server)
    try:
        with caplog.at_level(logging.DEBUG):
            for round_ in range(20):
                answers = await asyncio.gather(
                    *(
                        anomaly.post(
                            "/api/v1/ingest",
                            json={"points": points("log-lines", 10 * (round_ * 5 + k), 10)},
                            headers=H,
                        )
                        for k in range(5)
                    ),
                    anomaly.get("/api/v1/detectors", headers=H),
                    oncall.get("/api/v1/schedules", headers=H),
                    oncall.post("/graphql", json=GRAPHQL, headers=H),
                )
                for response in answers:
                    assert_unavailable(response)
                requests += len(answers)
    finally:
        await start(server)

    assert requests == 160
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    outage_lines = [r for r in warnings if r.name == "nsentry.outage"]
    kinds = {r.args[0] for r in outage_lines}  # type: ignore[index]
    # one line per distinct failure (a connection closed under a query, then refused)
    assert len(outage_lines) == len(kinds) <= 3, [r.getMessage() for r in outage_lines]
    assert warnings == outage_lines, [r.getMessage() for r in warnings]
    assert not [r for r in caplog.records if r.exc_info]
    # nothing about the credentials or the socket's path beyond what the error says
    assert all("password" not in r.getMessage() for r in caplog.records)


async def test_killed_mid_ingest_every_batch_is_200_and_stored_or_503_and_not(
    server: EmbeddedPostgres, dsn: str, anomaly: httpx.AsyncClient
) -> None:
    """The fault test: a stream of batches from 4 clients while Postgres is SIGKILLed
    and started again. Every answer is 200 (all its points stored) or 503 (none),
    never 500; the detectors' counters equal the rows and the ingest metric the rows
    answered 200. The one exception is a batch whose COMMIT was on its way when the
    server died: its 503 says ``"stored": "unknown"``, and it is stored whole or not
    at all (a retry is safe: duplicates are ignored)."""
    writers, size = 4, 50
    detectors = [f"fault-{w}" for w in range(writers)]
    for detector in detectors:
        await create_detector(anomaly, detector)
    accepted_before = _accepted_metric()
    answers: list[tuple[str, int, int]] = []  # (detector, first second, status)
    in_doubt: set[tuple[str, int]] = set()
    ok_after_restart = 0
    phase = "before"
    stop = asyncio.Event()

    async def writer(detector: str) -> None:
        nonlocal ok_after_restart
        batch = 0
        while not stop.is_set():
            first = batch * size
            batch += 1
            response = await anomaly.post(
                "/api/v1/ingest", json={"points": points(detector, first, size)}, headers=H
            )
            assert response.status_code in (200, 503), response.text
            if response.status_code == 503:
                assert_unavailable(response)
                if response.json()["error"]["details"].get("stored") == "unknown":
                    in_doubt.add((detector, first))
                await asyncio.sleep(0.01)  # a client backing off (Retry-After, shortened)
            else:
                assert response.json()["accepted"] == size
                if phase == "after":
                    ok_after_restart += 1
            answers.append((detector, first, response.status_code))

    async def wait_for(condition: Any, what: str) -> None:
        for _ in range(2000):  # bounded: 20 s at most
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}")

    tasks = [asyncio.create_task(writer(d)) for d in detectors]
    try:
        await wait_for(lambda: len(answers) >= 20, "20 batches before the kill")
        await kill(server)  # while batches are in flight
        phase = "down"
        await wait_for(lambda: sum(s == 503 for *_, s in answers) >= 20, "503s")
        await start(server)
        phase = "after"
        await wait_for(lambda: ok_after_restart >= 20, "20 batches stored after the restart")
    finally:
        stop.set()
        await asyncio.gather(*tasks)

    statuses = Counter(status for *_, status in answers)
    assert set(statuses) == {200, 503}, statuses
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT detector_id, floor(extract(epoch FROM ts - $1) / $2)::int AS batch,"
            " count(*) AS n FROM np_anomaly_data_points"
            " WHERE detector_id LIKE 'fault-%' GROUP BY 1, 2",
            START,
            size,
        )
        stored = {(r["detector_id"], r["batch"] * size): r["n"] for r in rows}
        counters = dict(
            await conn.fetch(
                "SELECT detector_id, points_count FROM np_anomaly_series "
                "WHERE detector_id LIKE 'fault-%'"
            )
        )
    finally:
        await conn.close()
    doubtful_stored = 0
    for detector, first, status in answers:
        rows_of_batch = stored.get((detector, first), 0)
        if (detector, first) in in_doubt:
            assert rows_of_batch in (0, size)  # whole or nothing
            doubtful_stored += rows_of_batch // size
        else:
            assert rows_of_batch == (size if status == 200 else 0), (detector, first, status)
    # no rows from batches nobody was answered for
    assert len(stored) == statuses[200] + doubtful_stored
    total = sum(stored.values())
    for detector in detectors:
        rows_of = sum(n for (d, _), n in stored.items() if d == detector)
        assert counters[detector] == rows_of
    assert _accepted_metric() - accepted_before == statuses[200] * size
    print(  # noqa: T201
        f"fault test: {dict(statuses)} answers, {len(in_doubt)} in doubt"
        f" ({doubtful_stored} of them stored), {total} rows"
    )


def _accepted_metric() -> float:
    value = REGISTRY.get_sample_value("nsentry_points_ingested_total", {"outcome": "accepted"})
    return value or 0.0


async def test_connections_the_server_closed_are_replaced(
    dsn: str, anomaly: httpx.AsyncClient, oncall: httpx.AsyncClient
) -> None:
    """A backend terminated by an administrator (57P01) leaves a dead pooled
    connection: the pool replaces it, the next requests answer 200."""
    await create_detector(anomaly, "terminated")
    assert (await anomaly.get("/api/v1/detectors", headers=H)).status_code == 200
    assert (await oncall.post("/graphql", json=GRAPHQL, headers=H)).status_code == 200
    admin = await asyncpg.connect(dsn)
    try:
        killed = await admin.fetchval(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()) t"
        )
    finally:
        await admin.close()
    assert killed >= 2
    for first in range(0, 50, 5):
        ingest = await anomaly.post(
            "/api/v1/ingest", json={"points": points("terminated", first, 5)}, headers=H
        )
        assert ingest.status_code in (200, 503), ingest.text
    listed = await anomaly.get("/api/v1/detectors", headers=H)
    assert listed.status_code == 200
    assert (await oncall.post("/graphql", json=GRAPHQL, headers=H)).status_code == 200


# -- the pieces, without a server ----------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "ConnectionRefusedError"),
        (FileNotFoundError(2, "No such file or directory"), "FileNotFoundError"),
        (TimeoutError(), "TimeoutError"),
        (
            asyncpg.ConnectionDoesNotExistError("connection was closed in the middle"),
            "ConnectionDoesNotExistError (08003)",
        ),
        (asyncpg.AdminShutdownError("terminating connection"), "AdminShutdownError (57P01)"),
        (
            asyncpg.CannotConnectNowError("the database system is starting up"),
            "CannotConnectNowError (57P03)",
        ),
        (asyncpg.TooManyConnectionsError("too many clients"), "TooManyConnectionsError (53300)"),
        (asyncpg.InterfaceError("connection is closed"), "InterfaceError (connection closed)"),
        (asyncpg.InterfaceError("cannot perform operation: another operation in progress"), None),
        (asyncpg.UniqueViolationError("duplicate key"), None),
        (asyncpg.DataError("bad value"), None),
        (PermissionError(13, "Permission denied"), None),
        (RuntimeError("bug"), None),
        (DatabaseUnavailable("ConnectionRefusedError"), "ConnectionRefusedError"),
    ],
)
def test_which_failures_are_an_outage(exc: BaseException, kind: str | None) -> None:
    assert outage_kind(exc) == kind


def test_an_outage_raised_from_another_error_is_still_one() -> None:
    try:
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except ConnectionResetError as cause:
            raise RuntimeError("query failed") from cause
    except RuntimeError as exc:
        assert outage_kind(exc) == "ConnectionResetError"


def test_the_outage_log_says_each_kind_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    logger = logging.getLogger("nsentry.test.outage")
    outage_log = OutageLog(logger, interval=30.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger=logger.name):
        for second in range(60):
            now[0] = float(second)
            for _ in range(100):
                outage_log.report("ConnectionRefusedError", "GET /x")
            outage_log.report("AdminShutdownError (57P01)", "POST /y")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "database unavailable (ConnectionRefusedError) at GET /x",
        "database unavailable (AdminShutdownError (57P01)) at POST /y",
        "database unavailable (ConnectionRefusedError) at GET /x (2999 more since the last line)",
        "database unavailable (AdminShutdownError (57P01)) at POST /y"
        " (29 more since the last line)",
    ]


def test_credentials_never_reach_the_log() -> None:
    text = "cannot connect to postgresql://app:s3cret@db.internal:5432/nsentry"
    assert redact(text) == "cannot connect to postgresql://***@db.internal:5432/nsentry"
