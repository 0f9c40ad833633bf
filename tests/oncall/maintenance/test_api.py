"""Maintenance windows over REST: create, read with the occurrence in force and the next,
keyset pages, delete; bad input is a 422 naming the field, with nothing written."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import auth_headers
from tests.oncall.helpers import FakeClock, HttpSink
from tests.oncall.integrations.helpers import key, responder

H = auth_headers("acct-maint-api")


async def window(
    client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str] = H
) -> Any:
    response = await client.post("/api/v1/maintenance", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_read_list_and_delete(
    client: httpx.AsyncClient, sink: HttpSink, clock: FakeClock
) -> None:
    await responder(client, sink, "mapi", H)
    now = clock()
    weekly = await window(
        client,
        {
            "name": "Sunday patching",
            "policy_id": "mapi",
            "start": "2026-11-22T02:00:00+01:00",
            "end": "2026-11-22T04:00:00+01:00",
            "rrule": "FREQ=WEEKLY;BYDAY=SU",
            "timezone": "Europe/Berlin",
        },
    )
    assert weekly["until"] is None and weekly["active"] is None
    assert weekly["next"] == {"start": "2026-11-29T01:00:00Z", "end": "2026-11-29T03:00:00Z"}
    clock.advance(seconds=1)  # lists go in creation order
    one_off = await window(
        client,
        {
            "policy_id": "mapi",
            "start": now.isoformat(),
            "end": "2026-11-23T12:00:00Z",
        },
    )
    assert one_off["active"] == {"start": "2026-11-23T08:00:00Z", "end": "2026-11-23T12:00:00Z"}
    assert one_off["name"] == "maintenance" and one_off["next"] is None

    fetched = (await client.get(f"/api/v1/maintenance/{weekly['id']}", headers=H)).json()
    assert fetched == weekly
    page = (await client.get("/api/v1/maintenance", params={"limit": 1}, headers=H)).json()
    assert [w["id"] for w in page["data"]] == [weekly["id"]] and page["next_cursor"]
    rest = await client.get(
        "/api/v1/maintenance", params={"limit": 1, "cursor": page["next_cursor"]}, headers=H
    )
    assert [w["id"] for w in rest.json()["data"]] == [one_off["id"]]
    none = await client.get("/api/v1/maintenance", params={"policy_id": "other"}, headers=H)
    assert none.json()["data"] == []

    assert (
        await client.delete(f"/api/v1/maintenance/{weekly['id']}", headers=H)
    ).status_code == 204
    assert (await client.get(f"/api/v1/maintenance/{weekly['id']}", headers=H)).status_code == 404
    assert (
        await client.get(f"/api/v1/maintenance/{one_off['id']}", headers=auth_headers("x"))
    ).status_code == 404


async def test_windows_on_an_integration_and_a_detector(
    client: httpx.AsyncClient, sink: HttpSink
) -> None:
    await responder(client, sink, "mapi-i", H)
    made = await key(client, H, "generic", "mapi-i")
    on_key = await window(
        client,
        {
            "integration_id": made["id"],
            "start": "2026-12-01T00:00:00Z",
            "end": "2026-12-01T01:00:00Z",
        },
    )
    assert on_key["integration_id"] == made["id"]
    listed = await client.get(
        "/api/v1/maintenance", params={"integration_id": made["id"]}, headers=H
    )
    assert [w["id"] for w in listed.json()["data"]] == [on_key["id"]]


async def test_bad_windows_are_422_with_nothing_written(
    client: httpx.AsyncClient, sink: HttpSink
) -> None:
    headers = auth_headers("acct-maint-bad")
    await responder(client, sink, "mbad", headers)
    base = {"start": "2026-12-01T00:00:00Z", "end": "2026-12-01T01:00:00Z"}
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({**base}, ["body"]),  # no scope
        ({**base, "policy_id": "mbad", "detector_id": "cpu"}, ["body"]),  # two scopes
        ({**base, "policy_id": "nope"}, ["body", "policy_id"]),
        ({**base, "detector_id": "no-such-detector"}, ["body", "detector_id"]),
        (
            {**base, "integration_id": "7d0b8a5e-5b7a-4d36-9a43-2c3d1f0e9b11"},
            ["body", "integration_id"],
        ),
        ({**base, "policy_id": "mbad", "end": "2026-11-30T00:00:00Z"}, ["body"]),
        ({**base, "policy_id": "mbad", "start": "2026-12-01T00:00:00"}, ["body", "start"]),
        ({**base, "policy_id": "mbad", "rrule": "FREQ=MINUTELY"}, ["body", "rrule"]),
        ({**base, "policy_id": "mbad", "rrule": "FREQ=WEEKLY;BYDAY=XX"}, ["body", "rrule"]),
        ({**base, "policy_id": "mbad", "timezone": "Mars/Olympus"}, ["body", "timezone"]),
        (
            {**base, "policy_id": "mbad", "rrule": "FREQ=YEARLY", "end": "2027-01-15T00:00:00Z"},
            ["body", "end"],
        ),
    ]
    for body, loc in cases:
        response = await client.post("/api/v1/maintenance", json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert error["details"][0]["loc"][: len(loc)] == loc, (body, error)
    listed = await client.get("/api/v1/maintenance", headers=headers)
    assert listed.json()["data"] == []
    assert (await client.get("/api/v1/maintenance/not-a-uuid", headers=headers)).status_code == 404
