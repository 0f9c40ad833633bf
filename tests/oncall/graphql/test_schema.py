"""GraphQL (Hasura remote schema) and the Hasura action, against the REST answers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from services.oncall.graphql.schema import sdl
from tests.conftest import JWT_HS_KEY, PLUGIN_SECRET, REPO_ROOT, auth_headers

G = auth_headers("acct-g")
OTHER = auth_headers("acct-other")
SCHEMA_FILE = REPO_ROOT / "schema" / "oncall.graphql"

ONCALL_FIELDS = """
  scheduleId at source layer overrideId shiftStart shiftEnd
  person { id name email }
  next { start person { id name email } }
"""


def token(account: str) -> str:
    claims = {
        "sub": "u-1",
        "exp": int(time.time()) + 600,
        "https://hasura.io/jwt/claims": {
            "x-hasura-allowed-roles": ["user"],
            "x-hasura-default-role": "user",
            "x-hasura-user-id": "u-1",
            "x-hasura-source-account-id": account,
        },
    }
    return jwt.encode(claims, JWT_HS_KEY, algorithm="HS256")


async def gql(
    client: httpx.AsyncClient, query: str, headers: dict[str, str], **variables: Any
) -> dict[str, Any]:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def camel(rest: dict[str, Any]) -> dict[str, Any]:
    """The REST on-call answer with GraphQL's field names."""

    def conv(key: str) -> str:
        head, *tail = key.split("_")
        return head + "".join(t.title() for t in tail)

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {conv(k): walk(v) for k, v in value.items()}
        return value

    return walk(rest)


def same_instant(a: str | None, b: str | None) -> bool:
    from datetime import datetime

    if a is None or b is None:
        return a is b
    return datetime.fromisoformat(a.replace("Z", "+00:00")) == datetime.fromisoformat(
        b.replace("Z", "+00:00")
    )


def assert_same(graphql: dict[str, Any], rest: dict[str, Any]) -> None:
    expected = camel(rest)
    for key in ("at", "shiftStart", "shiftEnd"):
        assert same_instant(graphql.pop(key), expected.pop(key)), key
    g_next, r_next = graphql.pop("next"), expected.pop("next")
    assert (g_next is None) == (r_next is None)
    if g_next:
        assert same_instant(g_next["start"], r_next["start"])
        assert g_next["person"] == r_next["person"]
    assert graphql == expected


@pytest.fixture(scope="module")
async def world(client: httpx.AsyncClient) -> None:
    for pid in ("gus", "hal", "ivy"):
        response = await client.post(
            "/api/v1/people",
            json={"id": pid, "name": pid.title(), "email": f"{pid}@example.com"},
            headers=G,
        )
        assert response.status_code == 201, response.text
    schedule = {
        "id": "g-sched",
        "name": "G",
        "timezone": "America/New_York",
        "layers": [
            {
                "name": "business",
                "rotation": {
                    "type": "daily",
                    "handoff": "2026-11-01T09:00",
                    "participants": ["gus", "hal"],
                },
                "restrictions": [
                    {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
                ],
            },
            {
                "name": "backstop",
                "rotation": {
                    "type": "weekly",
                    "handoff": "2026-11-02T00:00",
                    "participants": ["ivy"],
                },
            },
        ],
    }
    assert (await client.post("/api/v1/schedules", json=schedule, headers=G)).status_code == 201
    override = {
        "schedule_id": "g-sched",
        "person_id": "ivy",
        "start": "2026-11-25T15:00:00Z",
        "end": "2026-11-25T18:00:00Z",
    }
    assert (await client.post("/api/v1/overrides", json=override, headers=G)).status_code == 201
    policy = {
        "id": "g-pol",
        "name": "G policy",
        "steps": [
            {"targets": [{"type": "schedule", "id": "g-sched"}, {"type": "person", "id": "hal"}]},
            {"targets": [{"type": "person", "id": "ivy"}]},
        ],
    }
    assert (await client.post("/api/v1/policies", json=policy, headers=G)).status_code == 201


INSTANTS = [
    "2026-11-23T08:00:00Z",  # Monday 03:00 in New York: backstop
    "2026-11-23T15:30:00Z",  # Monday 10:30: business hours
    "2026-11-25T16:00:00Z",  # the override
    "2026-11-28T16:00:00-05:00",  # Saturday
    "2027-03-08T14:30:00Z",  # the day after the DST change
]


async def test_graphql_oncall_equals_rest(client: httpx.AsyncClient, world: None) -> None:
    query = f"""
    query($id: ID!, $at: DateTime!) {{
      schedule(id: $id) {{ id name timezone revision oncall(at: $at) {{ {ONCALL_FIELDS} }} }}
      currentOncall(scheduleId: $id, at: $at) {{ {ONCALL_FIELDS} }}
    }}"""
    for instant in INSTANTS:
        rest = (
            await client.get("/api/v1/schedules/g-sched/oncall", params={"at": instant}, headers=G)
        ).json()
        data = (await gql(client, query, G, id="g-sched", at=instant))["data"]
        assert data["schedule"]["timezone"] == "America/New_York"
        assert_same(data["schedule"]["oncall"], rest)
        assert_same(data["currentOncall"], rest)


async def test_graphql_shifts_equal_rest(client: httpx.AsyncClient, world: None) -> None:
    window = {"since": "2026-11-22T00:00:00Z", "until": "2026-11-30T00:00:00Z"}
    rest = (await client.get("/api/v1/schedules/g-sched/shifts", params=window, headers=G)).json()
    query = """
    query($since: DateTime!, $until: DateTime!) {
      schedules { id shifts(since: $since, until: $until) {
        coverage shifts { start end personId source layer overrideId } } }
    }"""
    data = (await gql(client, query, G, **window))["data"]
    [schedule] = data["schedules"]
    got = schedule["shifts"]
    assert got["coverage"] == rest["coverage"]
    assert len(got["shifts"]) == len(rest["shifts"])
    for g, r in zip(got["shifts"], rest["shifts"], strict=True):
        assert same_instant(g["start"], r["start"]) and same_instant(g["end"], r["end"])
        assert (g["personId"], g["source"], g["layer"], g["overrideId"]) == (
            r["person_id"],
            r["source"],
            r["layer"],
            r["override_id"],
        )


async def test_policy_current_responders(client: httpx.AsyncClient, world: None) -> None:
    query = """query { policy(id: "g-pol") { id name steps { delayMinutes targets { type id } }
                     currentResponders { id name } } }"""
    data = (await gql(client, query, G))["data"]["policy"]
    rest = (await client.get("/api/v1/schedules/g-sched/oncall", headers=G)).json()
    expected = [rest["person"]["id"]] if rest["person"] else []
    expected += [] if "hal" in expected else ["hal"]
    assert [p["id"] for p in data["currentResponders"]] == expected
    assert data["steps"][0]["targets"] == [
        {"type": "schedule", "id": "g-sched"},
        {"type": "person", "id": "hal"},
    ]


async def test_graphql_errors_and_auth(client: httpx.AsyncClient, world: None) -> None:
    missing = await gql(
        client, 'query { schedule(id: "nope") { id } policy(id: "nope") { id } }', G
    )
    assert missing["data"] == {"schedule": None, "policy": None}
    error = await gql(client, 'query { currentOncall(scheduleId: "nope") { scheduleId } }', G)
    assert error["errors"][0]["extensions"]["code"] == "not_found"
    naive = await gql(
        client,
        'query { currentOncall(scheduleId: "g-sched", at: "2026-11-23T10:00:00") { at } }',
        G,
    )
    assert naive["errors"][0]["extensions"]["code"] == "validation_error"

    not_utf8 = await client.post(
        "/graphql",
        content=b'{"query": "{ schedules { id } }", "x": "\xff\xfe"}',
        headers={**G, "Content-Type": "application/json"},
    )
    assert not_utf8.status_code == 400, not_utf8.text
    unauthenticated = await client.post("/graphql", json={"query": "{ schedules { id } }"})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["code"] == "unauthorized"
    by_jwt = await gql(
        client, "{ schedules { id } }", {"Authorization": f"Bearer {token('acct-g')}"}
    )
    assert by_jwt["data"]["schedules"] == [{"id": "g-sched"}]


async def test_other_accounts_see_nothing_by_graphql(
    client: httpx.AsyncClient, world: None
) -> None:
    query = '{ schedules { id } schedule(id: "g-sched") { id } policy(id: "g-pol") { id } }'
    for headers in (OTHER, {"Authorization": f"Bearer {token('acct-other')}"}):
        data = (await gql(client, query, headers))["data"]
        assert data == {"schedules": [], "schedule": None, "policy": None}
        error = await gql(
            client, '{ currentOncall(scheduleId: "g-sched") { scheduleId } }', headers
        )
        assert error["errors"][0]["extensions"]["code"] == "not_found"


def test_committed_sdl_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text() == sdl(), (
        "schema/oncall.graphql is out of date: run `nsentry export-schema`"
    )


def test_export_schema_writes_the_sdl(tmp_path: Path) -> None:
    from services.cli import main

    out = tmp_path / "nested" / "oncall.graphql"
    assert main(["export-schema", "--out", str(out)]) == 0
    assert out.read_text() == sdl()


def action(
    schedule_id: str, at: str | None, account: str | None, role: str = "user"
) -> dict[str, Any]:
    """A Hasura action request body, as documented by Hasura."""
    session = {"x-hasura-role": role, "x-hasura-user-id": "u-1"}
    if account is not None:
        session["x-hasura-source-account-id"] = account
    return {
        "action": {"name": "currentOncall"},
        "input": {"scheduleId": schedule_id, **({"at": at} if at else {})},
        "session_variables": session,
        "request_query": f'query {{ currentOncall(scheduleId: "{schedule_id}") {{ scheduleId }} }}',
    }


async def test_hasura_action_current_oncall(client: httpx.AsyncClient, world: None) -> None:
    bearer = {"Authorization": f"Bearer {PLUGIN_SECRET}"}
    at = "2026-11-25T16:00:00Z"
    response = await client.post(
        "/hasura/actions/currentOncall", json=action("g-sched", at, "acct-g"), headers=bearer
    )
    assert response.status_code == 200, response.text
    body = response.json()
    rest = (
        await client.get("/api/v1/schedules/g-sched/oncall", params={"at": at}, headers=G)
    ).json()
    assert body["scheduleId"] == "g-sched" and body["person"] == rest["person"]
    assert body["source"] == "override" and body["overrideId"] == rest["override_id"]
    assert same_instant(body["shiftStart"], rest["shift_start"])
    assert same_instant(body["next"]["start"], rest["next"]["start"])

    def hasura_error(resp: httpx.Response, status: int, code: str) -> None:
        assert resp.status_code == status, resp.text
        assert set(resp.json()) == {"message", "extensions"}
        assert resp.json()["extensions"]["code"] == code

    url = "/hasura/actions/currentOncall"
    hasura_error(await client.post(url, json=action("g-sched", at, "acct-g")), 401, "unauthorized")
    jwt_only = {"Authorization": f"Bearer {token('acct-g')}"}
    hasura_error(
        await client.post(url, json=action("g-sched", at, "acct-g"), headers=jwt_only),
        401,
        "unauthorized",
    )
    hasura_error(
        await client.post(url, json=action("g-sched", at, "acct-other"), headers=bearer),
        404,
        "not_found",
    )
    hasura_error(
        await client.post(url, json=action("g-sched", at, None), headers=bearer), 400, "bad_request"
    )
    hasura_error(
        await client.post(
            url, json=action("g-sched", "2026-11-25T16:00:00", "acct-g"), headers=bearer
        ),
        422,
        "validation_error",
    )
    hasura_error(
        await client.post(
            url,
            json={**action("g-sched", at, "acct-g"), "action": {"name": "other"}},
            headers=bearer,
        ),
        400,
        "bad_request",
    )
    # admin without an account variable acts for `primary` (where g-sched does not exist)
    hasura_error(
        await client.post(url, json=action("g-sched", at, None, "admin"), headers=bearer),
        404,
        "not_found",
    )
