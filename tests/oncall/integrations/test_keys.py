"""Integration keys over REST: the token shown once and stored only as a hash, lists
without tokens, keyset pages, bad input refused with nothing written."""

from __future__ import annotations

import hashlib
from typing import Any

import asyncpg
import httpx

from services.common import db
from tests.conftest import auth_headers
from tests.oncall.helpers import HttpSink
from tests.oncall.integrations.helpers import key, responder

H = auth_headers("acct-keys")


async def test_create_shows_the_token_once_and_stores_only_its_hash(
    client: httpx.AsyncClient, sink: HttpSink, database_url: str
) -> None:
    await responder(client, sink, "keys-ada", H)
    made = await key(client, H, "generic", "keys-ada")
    token = made["token"]
    assert made["url"] == f"http://testserver/api/v1/integrations/generic?token={token}"
    assert {"id", "name", "type", "policy_id", "created_at"} <= made.keys()
    shown = await client.get(f"/api/v1/integrations/{made['id']}", headers=H)
    assert shown.status_code == 200 and token not in shown.text and "token" not in shown.json()
    listed = await client.get("/api/v1/integrations", headers=H)
    assert token not in listed.text and made["id"] in listed.text
    owner = await db.connect(database_url)
    try:
        async with owner.transaction():
            await db.set_tenant(owner, "acct-keys")
            row = await owner.fetchrow(
                "SELECT * FROM np_oncall.integrations WHERE id = $1::uuid", made["id"]
            )
        assert row is not None
        assert row["token_hash"] == hashlib.sha256(token.encode()).digest()
        assert all(token not in str(value) for value in dict(row).values())
    finally:
        await owner.close()


async def test_email_and_heartbeat_keys(client: httpx.AsyncClient, sink: HttpSink) -> None:
    await responder(client, sink, "keys-bob", H)
    mail = await key(client, H, "email", "keys-bob")
    assert mail["url"] == f"mailto:{mail['token']}@localhost"
    beat = await key(client, H, "heartbeat", "keys-bob", interval_seconds=300)
    assert beat["interval_seconds"] == 300 and beat["heartbeat_due_at"] is None
    am = await key(client, H, "alertmanager", "keys-bob", dedup="group")
    assert am["dedup"] == "group"


async def test_lists_page_by_keyset_and_filter(client: httpx.AsyncClient, sink: HttpSink) -> None:
    headers = auth_headers("acct-keys-list")
    await responder(client, sink, "list-p", headers)
    made = [await key(client, headers, "generic", "list-p") for _ in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/integrations", params=params, headers=headers)).json()
        seen += [item["id"] for item in page["data"]]
        assert all("token" not in item for item in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # five pages' worth in creation order (same instant: by id), none twice, none missed
    assert sorted(seen) == sorted(m["id"] for m in made) and len(seen) == 5
    none = await client.get("/api/v1/integrations", params={"type": "grafana"}, headers=headers)
    assert none.json()["data"] == []


async def _count(database_url: str, account: str) -> int:
    conn: asyncpg.Connection = await db.connect(database_url)
    try:
        async with conn.transaction():
            await db.set_tenant(conn, account)
            return int(await conn.fetchval("SELECT count(*) FROM np_oncall.integrations"))
    finally:
        await conn.close()


async def test_bad_input_is_a_422_with_the_field_and_nothing_written(
    client: httpx.AsyncClient, sink: HttpSink, database_url: str
) -> None:
    headers = auth_headers("acct-keys-bad")
    await responder(client, sink, "bad-p", headers)
    cases = [
        ({"name": "x", "type": "generic", "policy_id": "nope"}, ["body", "policy_id"]),
        ({"name": "x", "type": "pager", "policy_id": "bad-p"}, ["body", "type"]),
        ({"name": "x", "type": "heartbeat", "policy_id": "bad-p"}, ["body"]),
        (
            {"name": "x", "type": "heartbeat", "policy_id": "bad-p", "interval_seconds": 5},
            ["body", "interval_seconds"],
        ),
        (
            {"name": "x", "type": "generic", "policy_id": "bad-p", "token": "mine"},
            ["body", "token"],
        ),
    ]
    for body, loc in cases:
        response = await client.post("/api/v1/integrations", json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert error["details"][0]["loc"][: len(loc)] == loc, error
    assert await _count(database_url, "acct-keys-bad") == 0


async def test_delete_and_unknown_ids(client: httpx.AsyncClient, sink: HttpSink) -> None:
    await responder(client, sink, "keys-cy", H)
    made = await key(client, H, "generic", "keys-cy")
    assert (await client.delete(f"/api/v1/integrations/{made['id']}", headers=H)).status_code == 204
    for method in ("GET", "DELETE"):
        gone = await client.request(method, f"/api/v1/integrations/{made['id']}", headers=H)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert (await client.get("/api/v1/integrations/not-a-uuid", headers=H)).status_code == 404
    assert (await client.get("/api/v1/integrations")).status_code == 401  # no bearer
