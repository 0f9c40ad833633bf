"""Stored rows the API would refuse (written by SQL, Hasura, or before a validation)
break nothing for other schedules, alerts or accounts (issue 12, item 1).

An override ending in 2600 is read clamped to the API's range (1970 to 2200), so
every question the API can ask answers as stored. A row the resolver refuses
outright (here a revision with an unknown time zone) makes that schedule's reads
a 409 `invalid_stored_data` naming the row; an alert escalating to it records
`escalation_failed` on its timeline and is retried with backoff, while the
worker goes on with the other alerts in the same tick.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.common import db
from services.oncall.escalation import runner
from services.oncall.worker import Worker
from tests.conftest import auth_headers
from tests.oncall.helpers import FakeClock, HttpSink, created

A = "acct-stored-a"
B = "acct-stored-b"
HA = auth_headers(A)
HB = auth_headers(B)
READS = ("", "/oncall", "/shifts", "/calendar.ics")


def schedule(sid: str, person: str) -> dict[str, Any]:
    return {
        "id": sid,
        "name": sid,
        "timezone": "UTC",
        "layers": [
            {
                "name": "l",
                "rotation": {
                    "type": "daily",
                    "handoff": "2026-01-01T09:00",
                    "participants": [person],
                },
            }
        ],
    }


async def person(client: httpx.AsyncClient, sink: HttpSink, pid: str, h: dict[str, str]) -> None:
    await created(
        client,
        "/api/v1/people",
        {
            "id": pid,
            "name": pid,
            "contact_methods": [
                {
                    "type": "webhook",
                    "url": sink.url(f"/{pid}"),
                    "rate_limit": {"max": 1000, "per_seconds": 60},
                }
            ],
        },
        h,
    )


async def policy(client: httpx.AsyncClient, pid: str, steps: list[Any], h: dict[str, str]) -> None:
    await created(client, "/api/v1/policies", {"id": pid, "name": pid, "steps": steps}, h)


def then_schedule(first: str, sid: str) -> list[Any]:
    """Step 0 a person, step 1 (a minute later) the schedule: the issue's repro."""
    return [
        {"delay_minutes": 1, "targets": [{"type": "person", "id": first}]},
        {"targets": [{"type": "schedule", "id": sid}]},
    ]


@pytest.fixture(scope="module")
async def owner(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """The schema owner: writes rows around the API, as SQL or Hasura could."""
    conn = await db.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture(scope="module")
async def setup(
    client: httpx.AsyncClient, sink: HttpSink, owner: asyncpg.Connection, clock: FakeClock
) -> None:
    for pid in ("sd-a1", "sd-a2", "sd-a-over"):
        await person(client, sink, pid, HA)
    for pid in ("sd-b1", "sd-b2"):
        await person(client, sink, pid, HB)
    # account A: one schedule with a far-future override, one with a broken revision,
    # one healthy; account B: healthy, same ids
    for sid in ("far", "broken", "fine"):
        await created(client, "/api/v1/schedules", schedule(sid, "sd-a2"), HA)
    for sid in ("far", "fine"):
        await created(client, "/api/v1/schedules", schedule(sid, "sd-b2"), HB)
    await owner.execute(
        "INSERT INTO np_oncall.overrides "
        "(source_account_id, schedule_id, person_id, start_at, end_at, reason) "
        "VALUES ($1, 'far', 'sd-a-over', $2, '2600-01-01T00:00:00Z', 'before validation')",
        A,
        clock() - timedelta(days=1),
    )
    await owner.execute(
        "UPDATE np_oncall.schedule_revisions SET timezone = 'Mars/Olympus_Mons' "
        "WHERE source_account_id = $1 AND schedule_id = 'broken'",
        A,
    )
    await policy(client, "to-far", then_schedule("sd-a1", "far"), HA)
    await policy(client, "to-broken", then_schedule("sd-a1", "broken"), HA)
    await policy(client, "broken-first", [{"targets": [{"type": "schedule", "id": "broken"}]}], HA)
    await policy(client, "to-fine", then_schedule("sd-b1", "fine"), HB)


async def gql(client: httpx.AsyncClient, query: str, h: dict[str, str]) -> Any:
    response = await client.post("/graphql", json={"query": query}, headers=h)
    assert response.status_code == 200, response.text
    return response.json()


async def timeline(client: httpx.AsyncClient, alert_id: str, h: dict[str, str]) -> list[Any]:
    response = await client.get(f"/api/v1/alerts/{alert_id}", headers=h)
    assert response.status_code == 200, response.text
    return response.json()["timeline"]


async def test_far_future_override_is_read_clamped(
    setup: None, client: httpx.AsyncClient, clock: FakeClock, owner: asyncpg.Connection
) -> None:
    for path in READS:
        response = await client.get(f"/api/v1/schedules/far{path}", headers=HA)
        assert response.status_code == 200, (path, response.text)
    oncall = (await client.get("/api/v1/schedules/far/oncall", headers=HA)).json()
    assert oncall["person"]["id"] == "sd-a-over" and oncall["source"] == "override"
    late = await client.get(
        "/api/v1/schedules/far/oncall", params={"at": "2199-12-31T23:00:00Z"}, headers=HA
    )
    assert late.status_code == 200 and late.json()["person"]["id"] == "sd-a-over"
    shifts = (await client.get("/api/v1/schedules/far/shifts", headers=HA)).json()["shifts"]
    assert [s["person_id"] for s in shifts] == ["sd-a-over"]
    answer = await gql(client, '{ currentOncall(scheduleId: "far") { person { id } } }', HA)
    assert answer["data"]["currentOncall"]["person"]["id"] == "sd-a-over", answer
    # the same id in account B is untouched by A's row
    other = (await client.get("/api/v1/schedules/far/oncall", headers=HB)).json()
    assert other["person"]["id"] == "sd-b2"
    # an end at `infinity` (the column allows it) reads the same
    await owner.execute(
        "UPDATE np_oncall.overrides SET end_at = 'infinity' "
        "WHERE source_account_id = $1 AND schedule_id = 'far'",
        A,
    )
    for path in READS:
        response = await client.get(f"/api/v1/schedules/far{path}", headers=HA)
        assert response.status_code == 200, (path, response.text)
    oncall = (await client.get("/api/v1/schedules/far/oncall", headers=HA)).json()
    assert oncall["person"]["id"] == "sd-a-over"


async def test_broken_schedule_answers_409_for_itself_only(
    setup: None, client: httpx.AsyncClient
) -> None:
    for path in READS:
        response = await client.get(f"/api/v1/schedules/broken{path}", headers=HA)
        assert response.status_code == 409, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_stored_data"
        assert "Mars/Olympus_Mons" in error["details"][0]["message"]
        assert error["details"][0]["table"] == "schedule_revisions"
        assert error["details"][0]["revision"] == 1
        assert error["details"][0]["field"] == "timezone"
        assert "Traceback" not in response.text
    answer = await gql(client, '{ currentOncall(scheduleId: "broken") { person { id } } }', HA)
    assert answer["errors"][0]["extensions"]["code"] == "invalid_stored_data", answer
    for h in (HA, HB):
        for path in READS:
            response = await client.get(f"/api/v1/schedules/fine{path}", headers=h)
            assert response.status_code == 200, (path, response.text)
    listing = await client.get("/api/v1/schedules", headers=HA)
    assert listing.status_code == 200
    assert {s["id"] for s in listing.json()["data"]} == {"far", "broken", "fine"}


async def test_worker_isolates_a_failing_alert(
    setup: None, client: httpx.AsyncClient, worker: Worker, sink: HttpSink, clock: FakeClock
) -> None:
    start = clock()
    bad = await created(client, "/api/v1/alerts", {"policy_id": "to-broken", "summary": "a"}, HA)
    far = await created(client, "/api/v1/alerts", {"policy_id": "to-far", "summary": "f"}, HA)
    clock.advance(seconds=10)
    good = await created(client, "/api/v1/alerts", {"policy_id": "to-fine", "summary": "b"}, HB)
    await worker.deliver(clock())
    assert len(sink.to("/sd-a1")) == 2 and len(sink.to("/sd-b1")) == 1

    # one tick: A's broken alert is due first and fails; the others are advanced
    tick_at = clock.advance(seconds=60)
    assert await worker.tick(tick_at) == 3
    report = await worker.deliver(tick_at)
    assert report.by_status == {"sent": 2}, report
    [to_b] = sink.to("/sd-b2")
    assert to_b.json()["alert"]["id"] == good["id"]
    [to_over] = sink.to("/sd-a-over")
    assert to_over.json()["alert"]["id"] == far["id"]
    assert sink.to("/sd-a2") == []

    [failed] = [
        e for e in await timeline(client, bad["id"], HA) if e["kind"] == "escalation_failed"
    ]
    assert failed["details"]["attempt"] == 1 and failed["details"]["step"] == 1
    assert failed["details"]["error"]["code"] == "invalid_stored_data"
    first_retry = tick_at + runner.retry_delay(1)
    assert failed["details"]["retry_at"] == first_retry.isoformat()
    assert runner.retry_delay(1) < runner.retry_delay(2) <= runner.RETRY_MAX

    # not retried before its time, retried (and failing again, later still) after it
    assert await worker.tick(first_retry - timedelta(seconds=1)) == 0
    assert await worker.tick(clock.set(first_retry)) == 1
    kinds = [e for e in await timeline(client, bad["id"], HA) if e["kind"] == "escalation_failed"]
    assert [e["details"]["attempt"] for e in kinds] == [1, 2]
    second_retry = first_retry + runner.retry_delay(2)
    assert kinds[1]["details"]["retry_at"] == second_retry.isoformat()
    assert start < first_retry < second_retry


async def test_alert_whose_first_step_fails_is_stored_and_retried(
    setup: None,
    client: httpx.AsyncClient,
    worker: Worker,
    sink: HttpSink,
    clock: FakeClock,
    owner: asyncpg.Connection,
) -> None:
    alert = await created(
        client, "/api/v1/alerts", {"policy_id": "broken-first", "summary": "x"}, HA
    )
    [failed] = [
        e for e in await timeline(client, alert["id"], HA) if e["kind"] == "escalation_failed"
    ]
    assert failed["details"]["step"] == 0 and failed["details"]["attempt"] == 1
    # the operator repairs the row: the next retry pages the schedule's person
    await owner.execute(
        "UPDATE np_oncall.schedule_revisions SET timezone = 'UTC' "
        "WHERE source_account_id = $1 AND schedule_id = 'broken'",
        A,
    )
    before = len(sink.to("/sd-a2"))
    retry = clock() + runner.retry_delay(1)
    assert await worker.tick(clock.set(retry)) >= 1
    await worker.deliver(retry)
    assert len(sink.to("/sd-a2")) >= before + 1
    assert {r.json()["alert"]["id"] for r in sink.to("/sd-a2")} >= {alert["id"]}
    response = await client.get("/api/v1/schedules/broken/oncall", headers=HA)
    assert response.status_code == 200
