"""The REST resources: CRUD, validation (every field error at once), pagination, tenancy."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx
import pytest

from services.common.settings import Settings
from tests.conftest import auth_headers
from tests.media import JSON, NOT_JSON, check_415, chunked
from tests.oncall.helpers import FakeClock, HttpSink

A = auth_headers("acct-a")
B = auth_headers("acct-b")


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def locs(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"]["code"] == "validation_error"
    return {".".join(d["loc"]) for d in body["error"]["details"]}


WEEKLY = {
    "name": "week",
    "rotation": {
        "type": "daily",
        "length": 7,
        "handoff": "2026-11-23T09:00",
        "participants": ["ann", "ben"],
    },
}


@pytest.fixture(scope="module")
async def people(client: httpx.AsyncClient, sink: HttpSink) -> None:
    for pid in ("ann", "ben", "cat"):
        await ok(
            await client.post(
                "/api/v1/people",
                json={
                    "id": pid,
                    "name": pid.title(),
                    "email": f"{pid}@example.com",
                    "timezone": "Europe/Berlin",
                    "contact_methods": [{"type": "webhook", "url": sink.url(f"/{pid}")}],
                },
                headers=A,
            ),
            201,
        )


async def test_auth_is_required(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/people")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_people_crud_and_validation(client: httpx.AsyncClient, people: None) -> None:
    bad = await client.post(
        "/api/v1/people",
        json={
            "id": "Not A Slug",
            "email": "nope",
            "timezone": "Mars/Olympus",
            "contact_methods": [
                {"type": "pager", "address": "x"},
                {"type": "email", "address": "a@b.c", "delay_minutes": -1},
                {"type": "webhook", "url": "http://10.0.0.7/hook"},
            ],
        },
        headers=A,
    )
    assert {
        "body.id",
        "body.name",
        "body.email",
        "body.timezone",
        "body.contact_methods.0",
        "body.contact_methods.1.email.delay_minutes",
    } <= locs(bad)
    # destinations are checked once the body is well formed
    for url in ("http://10.0.0.7/hook", "http://169.254.169.254/latest", "http://localhost:9/x"):
        refused = await client.post(
            "/api/v1/people",
            json={"name": "X", "contact_methods": [{"type": "webhook", "url": url}]},
            headers=A,
        )
        assert locs(refused) == {"body.contact_methods.0.url"}
        assert "ONCALL_ALLOWED_DESTINATIONS" in refused.json()["error"]["message"]

    created = await ok(await client.post("/api/v1/people", json={"name": "Dee"}, headers=A), 201)
    assert created["timezone"] == "UTC" and created["contact_methods"] == []
    dup = await client.post("/api/v1/people", json={"id": "ann", "name": "Again"}, headers=A)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "conflict"

    patched = await ok(
        await client.patch(
            f"/api/v1/people/{created['id']}",
            json={
                "name": "Dee Dee",
                "contact_methods": [
                    {"type": "slack", "url": "https://hooks.slack.com/services/T/B/X"}
                ],
            },
            headers=A,
        )
    )
    assert patched["name"] == "Dee Dee" and patched["contact_methods"][0]["type"] == "slack"
    assert (
        await client.patch(f"/api/v1/people/{created['id']}", json={"name": None}, headers=A)
    ).status_code == 422
    await ok(await client.delete(f"/api/v1/people/{created['id']}", headers=A), 204)
    missing = await client.get(f"/api/v1/people/{created['id']}", headers=A)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"

    first = await ok(await client.get("/api/v1/people", params={"limit": 2}, headers=A))
    assert [p["id"] for p in first["data"]] == ["ann", "ben"] and first["next_cursor"]
    rest = await ok(
        await client.get(
            "/api/v1/people", params={"limit": 2, "cursor": first["next_cursor"]}, headers=A
        )
    )
    assert [p["id"] for p in rest["data"]] == ["cat"] and rest["next_cursor"] is None
    assert (await client.get("/api/v1/people", params={"limit": 0}, headers=A)).status_code == 422
    assert (
        await client.get("/api/v1/people", params={"cursor": "%%%"}, headers=A)
    ).status_code == 400


async def test_schedule_validation_reports_every_error(
    client: httpx.AsyncClient, people: None
) -> None:
    response = await client.post(
        "/api/v1/schedules",
        json={
            "timezone": "Mars/Olympus",
            "layers": [
                {"name": "a", "rotation": {"type": "daily", "handoff": "2026-11-23T09:00+01:00"}},
                {
                    "name": "b",
                    "rotation": {"type": "weekly", "handoff": "2026-11-23T09:00", "length": 0},
                    "restrictions": [{"days": ["funday"], "start": "9am", "end": "17:00"}],
                },
            ],
        },
        headers=A,
    )
    found = locs(response)
    assert {
        "body.name",
        "body.timezone",
        "body.layers.0.rotation.handoff",
        "body.layers.1.rotation.length",
        "body.layers.1.restrictions.0.days.0",
        "body.layers.1.restrictions.0.start",
    } <= found
    unknown = await client.post(
        "/api/v1/schedules",
        json={
            "name": "x",
            "timezone": "UTC",
            "layers": [
                {**WEEKLY, "rotation": {**WEEKLY["rotation"], "participants": ["ann", "zed"]}}
            ],
        },
        headers=A,
    )
    assert locs(unknown) == {"body.layers.0.rotation.participants.1"}


async def test_schedule_oncall_shifts_overrides_and_revisions(
    client: httpx.AsyncClient, people: None, clock: FakeClock
) -> None:
    created = await ok(
        await client.post(
            "/api/v1/schedules",
            json={"id": "ops", "name": "Ops", "timezone": "Europe/Berlin", "layers": [WEEKLY]},
            headers=A,
        ),
        201,
    )
    assert created["revision"] == 1 and created["layers"][0]["rotation"]["participants"] == [
        "ann",
        "ben",
    ]

    got = await ok(await client.get("/api/v1/schedules/ops", headers=A))
    assert got["oncall"]["person"]["id"] == "ann"  # 08:00Z is the 09:00 Berlin handoff
    oncall = await ok(
        await client.get(
            "/api/v1/schedules/ops/oncall", params={"at": "2026-11-24T12:00:00+01:00"}, headers=A
        )
    )
    assert oncall["person"] == {"id": "ann", "name": "Ann", "email": "ann@example.com"}
    assert oncall["source"] == "layer" and oncall["layer"] == "week"
    assert oncall["shift_start"] == "2026-11-23T08:00:00Z"
    assert oncall["next"]["person"]["id"] == "ben"
    naive = await client.get(
        "/api/v1/schedules/ops/oncall", params={"at": "2026-11-24T12:00:00"}, headers=A
    )
    assert naive.status_code == 422

    window = {"since": "2026-11-20T00:00:00Z", "until": "2026-12-10T00:00:00Z"}
    shifts = await ok(await client.get("/api/v1/schedules/ops/shifts", params=window, headers=A))
    segments = shifts["shifts"]
    assert (
        segments[0]["start"] == "2026-11-20T00:00:00Z"
        and segments[-1]["end"] == "2026-12-10T00:00:00Z"
    )
    assert all(a["end"] == b["start"] for a, b in zip(segments, segments[1:], strict=False))
    assert shifts["coverage"] == 1.0
    too_long = await client.get(
        "/api/v1/schedules/ops/shifts",
        params={"since": "2026-01-01T00:00:00Z", "until": "2027-06-01T00:00:00Z"},
        headers=A,
    )
    assert too_long.status_code == 422

    ics = await client.get("/api/v1/schedules/ops/calendar.ics", params=window, headers=A)
    assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
    assert ics.text.count("BEGIN:VEVENT") >= 3 and "SUMMARY:Ann" in ics.text

    # an override wins over the layer
    bad = await client.post(
        "/api/v1/overrides",
        json={
            "schedule_id": "nope",
            "person_id": "zed",
            "start": "2026-11-25T00:00:00Z",
            "end": "2026-11-26T00:00:00Z",
        },
        headers=A,
    )
    assert locs(bad) == {"body.schedule_id", "body.person_id"}
    backwards = await client.post(
        "/api/v1/overrides",
        json={
            "schedule_id": "ops",
            "person_id": "cat",
            "start": "2026-11-26T00:00:00Z",
            "end": "2026-11-25T00:00:00Z",
        },
        headers=A,
    )
    assert backwards.status_code == 422
    override = await ok(
        await client.post(
            "/api/v1/overrides",
            json={
                "schedule_id": "ops",
                "person_id": "cat",
                "start": "2026-11-25T00:00:00Z",
                "end": "2026-11-26T00:00:00Z",
                "reason": "swap",
            },
            headers=A,
        ),
        201,
    )
    during = await ok(
        await client.get(
            "/api/v1/schedules/ops/oncall", params={"at": "2026-11-25T12:00:00Z"}, headers=A
        )
    )
    assert during["person"]["id"] == "cat" and during["source"] == "override"
    assert during["override_id"] == override["id"]
    listed = await ok(
        await client.get(
            "/api/v1/overrides",
            params={
                "schedule_id": "ops",
                "since": "2026-11-24T00:00:00Z",
                "until": "2026-11-27T00:00:00Z",
            },
            headers=A,
        )
    )
    assert [o["id"] for o in listed["data"]] == [override["id"]]
    outside = await ok(
        await client.get("/api/v1/overrides", params={"since": "2026-12-01T00:00:00Z"}, headers=A)
    )
    assert outside["data"] == []
    # a person named by an override or a schedule cannot be deleted
    conflict = await client.delete("/api/v1/people/cat", headers=A)
    assert conflict.status_code == 409 and conflict.json()["error"]["details"]["overrides"] == [
        override["id"]
    ]
    await ok(await client.delete(f"/api/v1/overrides/{override['id']}", headers=A), 204)
    assert (
        await client.delete(f"/api/v1/overrides/{override['id']}", headers=A)
    ).status_code == 404
    assert (await client.get("/api/v1/overrides/not-a-uuid", headers=A)).status_code == 404

    # editing the rotation never rewrites past shifts
    clock.now = clock.now.replace(year=2026, month=12, day=1, hour=12)
    past = {"since": "2026-11-20T00:00:00Z", "until": "2026-12-01T00:00:00Z"}
    before = await ok(await client.get("/api/v1/schedules/ops/shifts", params=past, headers=A))
    edited = await ok(
        await client.patch(
            "/api/v1/schedules/ops",
            json={
                "layers": [{**WEEKLY, "rotation": {**WEEKLY["rotation"], "participants": ["cat"]}}]
            },
            headers=A,
        )
    )
    assert edited["revision"] == 2
    after = await ok(await client.get("/api/v1/schedules/ops/shifts", params=past, headers=A))
    assert after["shifts"] == before["shifts"]
    now = await ok(await client.get("/api/v1/schedules/ops/oncall", headers=A))
    assert now["person"]["id"] == "cat"
    renamed = await ok(
        await client.patch("/api/v1/schedules/ops", json={"name": "Ops 2"}, headers=A)
    )
    assert renamed["revision"] == 2 and renamed["name"] == "Ops 2"


async def test_policies_and_alert_rules(client: httpx.AsyncClient, people: None) -> None:
    bad = await client.post(
        "/api/v1/policies",
        json={"name": "p", "steps": [{"delay_minutes": 0, "targets": []}], "repeat": -1},
        headers=A,
    )
    assert {"body.steps.0.delay_minutes", "body.steps.0.targets", "body.repeat"} <= locs(bad)
    unknown = await client.post(
        "/api/v1/policies",
        json={
            "name": "p",
            "steps": [
                {"targets": [{"type": "person", "id": "zed"}, {"type": "schedule", "id": "none"}]}
            ],
        },
        headers=A,
    )
    assert locs(unknown) == {"body.steps.0.targets.0.id", "body.steps.0.targets.1.id"}
    policy = await ok(
        await client.post(
            "/api/v1/policies",
            json={
                "id": "pol",
                "name": "Pol",
                "steps": [{"targets": [{"type": "person", "id": "ann"}]}],
            },
            headers=A,
        ),
        201,
    )
    assert policy["steps"][0]["delay_minutes"] == 15 and policy["repeat"] == 0
    patched = await ok(await client.patch("/api/v1/policies/pol", json={"repeat": 2}, headers=A))
    assert patched["repeat"] == 2 and patched["steps"] == policy["steps"]
    assert (await client.delete("/api/v1/people/ann", headers=A)).status_code == 409

    no_policy = await client.post(
        "/api/v1/alerts", json={"policy_id": "nope", "summary": "x"}, headers=A
    )
    assert locs(no_policy) == {"body.policy_id"}
    invalid = await client.post(
        "/api/v1/alerts", json={"policy_id": "pol", "summary": "", "severity": "meh"}, headers=A
    )
    assert {"body.summary", "body.severity"} <= locs(invalid)
    alert = await ok(
        await client.post("/api/v1/alerts", json={"policy_id": "pol", "summary": "s"}, headers=A),
        201,
    )
    resolved = await ok(await client.post(f"/api/v1/alerts/{alert['id']}/resolve", headers=A))
    assert resolved["status"] == "resolved" and resolved["resolved_by"] == "role:admin"
    late_ack = await client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=A)
    assert late_ack.status_code == 409
    assert (
        await client.post(f"/api/v1/alerts/{alert['id']}/resolve", headers=A)
    ).status_code == 200
    assert (await client.get("/api/v1/alerts/123", headers=A)).status_code == 404
    listed = await ok(await client.get("/api/v1/alerts", params={"status": "resolved"}, headers=A))
    assert alert["id"] in [a["id"] for a in listed["data"]]
    open_only = await ok(
        await client.get("/api/v1/alerts", params={"status": "triggered"}, headers=A)
    )
    assert alert["id"] not in [a["id"] for a in open_only["data"]]

    # deleting a policy leaves its alerts readable
    await ok(await client.delete("/api/v1/policies/pol", headers=A), 204)
    assert (await client.get("/api/v1/policies/pol", headers=A)).status_code == 404
    await ok(await client.get(f"/api/v1/alerts/{alert['id']}", headers=A))


async def test_account_b_sees_nothing_of_account_a(client: httpx.AsyncClient, people: None) -> None:
    alert = await ok(
        await client.post(
            "/api/v1/policies",
            json={
                "id": "a-only",
                "name": "A",
                "steps": [{"targets": [{"type": "person", "id": "ben"}]}],
            },
            headers=A,
        ),
        201,
    )
    alert = await ok(
        await client.post(
            "/api/v1/alerts", json={"policy_id": "a-only", "summary": "A's"}, headers=A
        ),
        201,
    )
    for path in (
        "/api/v1/people",
        "/api/v1/schedules",
        "/api/v1/policies",
        "/api/v1/alerts",
        "/api/v1/overrides",
    ):
        assert (await ok(await client.get(path, headers=B)))["data"] == []
        assert (await ok(await client.get(path, headers=A)))[
            "data"
        ] != [] or path == "/api/v1/overrides"
    for path in (
        "/api/v1/people/ann",
        "/api/v1/schedules/ops",
        "/api/v1/schedules/ops/oncall",
        "/api/v1/schedules/ops/shifts",
        "/api/v1/schedules/ops/calendar.ics",
        "/api/v1/policies/a-only",
        f"/api/v1/alerts/{alert['id']}",
    ):
        assert (await client.get(path, headers=B)).status_code == 404, path
    assert (
        await client.patch("/api/v1/people/ann", json={"name": "hijack"}, headers=B)
    ).status_code == 404
    assert (await client.delete("/api/v1/schedules/ops", headers=B)).status_code == 404
    assert (await client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=B)).status_code == 404
    # B cannot reference A's rows either
    refs = await client.post(
        "/api/v1/policies",
        json={"name": "x", "steps": [{"targets": [{"type": "person", "id": "ann"}]}]},
        headers=B,
    )
    assert refs.status_code == 422
    theirs = await client.post(
        "/api/v1/alerts", json={"policy_id": "a-only", "summary": "x"}, headers=B
    )
    assert theirs.status_code == 422
    # ids are per account: B may use the same ones
    await ok(
        await client.post("/api/v1/people", json={"id": "ann", "name": "B's Ann"}, headers=B), 201
    )
    assert (await ok(await client.get("/api/v1/people/ann", headers=A)))["name"] == "Ann"


async def test_openapi_documents_every_route(client: httpx.AsyncClient) -> None:
    spec = await ok(await client.get("/openapi.json"))
    paths = spec["paths"]
    for path, method in [
        ("/api/v1/people", "post"),
        ("/api/v1/people/{person_id}", "patch"),
        ("/api/v1/schedules/{schedule_id}/oncall", "get"),
        ("/api/v1/schedules/{schedule_id}/shifts", "get"),
        ("/api/v1/schedules/{schedule_id}/calendar.ics", "get"),
        ("/api/v1/overrides/{override_id}", "delete"),
        ("/api/v1/policies/{policy_id}", "delete"),
        ("/api/v1/alerts", "post"),
        ("/api/v1/alerts/{alert_id}/ack", "post"),
        ("/api/v1/alerts/{alert_id}/resolve", "post"),
        ("/hasura/actions/currentOncall", "post"),
    ]:
        assert method in paths[path], (path, method)
        assert paths[path][method]["summary"]
    assert "422" in paths["/api/v1/people"]["post"]["responses"]


async def test_bodies_that_are_not_json_are_415_and_store_nothing(
    client: httpx.AsyncClient, oncall_settings: Settings
) -> None:
    headers = auth_headers("acct-ct")
    person = {"id": "dan", "name": "Dan", "email": "dan@example.com", "timezone": "UTC"}

    async def people() -> int:
        conn = await asyncpg.connect(oncall_settings.database_url)
        try:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM np_oncall.people WHERE source_account_id = 'acct-ct'"
            )
        finally:
            await conn.close()
        return count

    graphql = json.dumps({"query": "{ schedules { id } }"}).encode()
    for media in NOT_JSON:
        given = media.get("Content-Type")
        body = json.dumps(person).encode()
        for content in (body, chunked(body)):
            response = await client.post(
                "/api/v1/people", content=content, headers={**headers, **media}
            )
            check_415(response, given)
        patch = await client.patch(
            "/api/v1/people/ann", content=b'{"name": "x"}', headers={**A, **media}
        )
        check_415(patch, given)
        # GraphQL keeps its own rules for JSON; a form or text body is the same 415
        check_415(await client.post("/graphql", content=graphql, headers={**A, **media}), given)
    form = await client.post("/graphql", data={"query": "{ schedules { id } }"}, headers=A)
    check_415(form, "application/x-www-form-urlencoded")
    assert await people() == 0
    for media, pid in zip(JSON, ("dan", "eve"), strict=True):
        body = json.dumps({**person, "id": pid}).encode()
        created = await client.post("/api/v1/people", content=body, headers={**headers, **media})
        assert created.status_code == 201, created.text
        answer = await client.post("/graphql", content=graphql, headers={**headers, **media})
        assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    assert await people() == 2
    # a request without a body is not concerned, whatever it says its type is
    bodyless = await client.get(
        "/api/v1/people/dan", headers={**headers, "Content-Type": "text/plain"}
    )
    assert bodyless.status_code == 200, bodyless.text
    deleted = await client.delete(
        "/api/v1/people/eve", headers={**headers, "Content-Type": "text/plain"}
    )
    assert deleted.status_code in (200, 204), deleted.text


async def test_openapi_documents_the_415_on_every_route_with_a_body(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    bodies = [(m, p) for p, ops in paths.items() for m in ops if m in ("post", "put", "patch")]
    assert ("post", "/api/v1/people") in bodies and ("post", "/graphql") in bodies
    for method, path in bodies:
        assert "415" in paths[path][method]["responses"], (method, path)
    for method in paths["/api/v1/people"]:
        assert ("415" in paths["/api/v1/people"][method]["responses"]) == (method == "post")
