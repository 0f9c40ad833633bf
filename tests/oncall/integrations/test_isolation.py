"""Tenant isolation of integration keys: a key of account A can never open, see or act
on anything of account B, even where ids and dedup keys coincide."""

from __future__ import annotations

import httpx

from services.common import db
from services.common.settings import Settings
from services.oncall.integrations import store
from tests.conftest import auth_headers
from tests.oncall.helpers import HttpSink
from tests.oncall.integrations.helpers import alerts, key, responder

A = auth_headers("acct-iso-a")
B = auth_headers("acct-iso-b")


async def test_a_key_acts_in_its_own_account_only(
    client: httpx.AsyncClient, sink: HttpSink
) -> None:
    for headers in (A, B):
        await responder(client, sink, "shared", headers)  # the same policy id in both
    key_a = await key(client, A, "generic", "shared")
    key_b = await key(client, B, "generic", "shared")

    opened = await client.post(
        "/api/v1/integrations/generic",
        params={"token": key_b["token"]},
        json={"summary": "b's alert", "dedup": "same"},
    )
    assert opened.status_code == 201
    b_alert = opened.json()["alert"]

    # A's key with the same dedup: a new alert in A, B's untouched
    from_a = await client.post(
        "/api/v1/integrations/generic",
        params={"token": key_a["token"]},
        json={"summary": "a's alert", "dedup": "same"},
    )
    assert from_a.status_code == 201 and from_a.json()["alert"]["id"] != b_alert["id"]
    closing = await client.post(
        "/api/v1/integrations/generic",
        params={"token": key_a["token"]},
        json={"dedup": "same", "action": "close"},
    )
    assert closing.json()["alert"]["id"] == from_a.json()["alert"]["id"]
    [b_now] = await alerts(client, B)
    assert b_now["id"] == b_alert["id"] and b_now["status"] == "triggered"
    assert [a["summary"] for a in await alerts(client, A)] == ["a's alert"]

    # B's bearer cannot see, read or delete A's key; A's key still works after
    listed = (await client.get("/api/v1/integrations", headers=B)).json()["data"]
    assert [k["id"] for k in listed] == [key_b["id"]]
    for method in ("GET", "DELETE"):
        response = await client.request(method, f"/api/v1/integrations/{key_a['id']}", headers=B)
        assert response.status_code == 404
    still = await client.post(
        "/api/v1/integrations/generic", params={"token": key_a["token"], "summary": "ok"}
    )
    assert still.status_code == 201

    # A's alert ids answer 404 to B
    response = await client.get(f"/api/v1/alerts/{from_a.json()['alert']['id']}", headers=B)
    assert response.status_code == 404


async def test_the_lookup_sees_one_key_then_only_its_account(
    client: httpx.AsyncClient, sink: HttpSink, oncall_settings: Settings
) -> None:
    """Under the services' RLS-bound login: before the account is known the transaction
    sees the one key its selector names; scoped, it sees that account's rows only."""
    await responder(client, sink, "look", A)
    await responder(client, sink, "look", B)
    key_a = await key(client, A, "generic", "look")
    await key(client, B, "generic", "look")
    pool = await db.create_pool(oncall_settings.app_dsn, role=None, min_size=1, max_size=1)
    try:
        async with db.tenant_transaction(pool, "") as conn:
            assert await conn.fetchval("SELECT count(*) FROM np_oncall.integrations") == 0
            row = await store.lookup(conn, key_a["token"][4:16])
            assert row is not None and row["source_account_id"] == "acct-iso-a"
            # the selector policy shows that key and nothing else
            assert await conn.fetchval("SELECT count(*) FROM np_oncall.integrations") == 1
            await store.scope_to(conn, "acct-iso-a")
            accounts = await conn.fetch(
                "SELECT DISTINCT source_account_id FROM np_oncall.integrations "
                "UNION SELECT DISTINCT source_account_id FROM np_oncall.alerts"
            )
            assert {r["source_account_id"] for r in accounts} == {"acct-iso-a"}
            # and it cannot write into another account
            updated = await conn.execute(
                "UPDATE np_oncall.alerts SET summary = 'x' WHERE source_account_id = 'acct-iso-b'"
            )
            assert updated == "UPDATE 0"
            await conn.execute("ROLLBACK AND CHAIN")
    finally:
        await pool.close()
