"""Row-level security: the services' role sees one account's rows, whatever the SQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.common import db
from tests.conftest import make_settings


@pytest.fixture(scope="module")
async def tenant_table(database_url: str) -> AsyncIterator[str]:
    owner = await db.connect(database_url)
    try:
        await owner.execute(
            """
            CREATE TABLE rls_probe (
                id serial PRIMARY KEY,
                source_account_id text NOT NULL DEFAULT 'primary',
                body text NOT NULL
            );
            SELECT public.nsentry_enable_tenant_rls('rls_probe');
            """
        )
        # the owner is subject to FORCE ROW LEVEL SECURITY too, so it seeds per account
        for account, body in [("acct-a", "a1"), ("acct-a", "a2"), ("acct-b", "b1")]:
            async with owner.transaction():
                await db.set_tenant(owner, account)
                await owner.execute(
                    "INSERT INTO rls_probe (source_account_id, body) VALUES ($1, $2)", account, body
                )
    finally:
        await owner.close()
    yield "rls_probe"


@pytest.fixture(scope="module")
async def app_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The services' pool: logged in as the RLS-bound role (Settings.app_dsn)."""
    pool = await db.create_pool(make_settings(database_url).app_dsn, min_size=1, max_size=2)
    yield pool
    await pool.close()


async def test_app_role_is_not_privileged(app_pool: asyncpg.Pool) -> None:
    row = await app_pool.fetchrow(
        "SELECT current_user AS name, rolsuper, rolbypassrls FROM pg_roles "
        "WHERE rolname = current_user"
    )
    assert row["name"] == db.APP_ROLE
    assert row["rolsuper"] is False and row["rolbypassrls"] is False


async def test_select_without_where_sees_only_own_account(
    app_pool: asyncpg.Pool, tenant_table: str
) -> None:
    async with db.tenant_transaction(app_pool, "acct-a") as conn:
        rows = await conn.fetch("SELECT * FROM rls_probe ORDER BY body")
    assert [(r["source_account_id"], r["body"]) for r in rows] == [
        ("acct-a", "a1"),
        ("acct-a", "a2"),
    ]
    async with db.tenant_transaction(app_pool, "acct-b") as conn:
        rows = await conn.fetch("SELECT * FROM rls_probe")
    assert [r["body"] for r in rows] == ["b1"]


async def test_no_account_set_sees_nothing(app_pool: asyncpg.Pool, tenant_table: str) -> None:
    assert await app_pool.fetchval("SELECT count(*) FROM rls_probe") == 0


async def test_cannot_write_into_another_account(app_pool: asyncpg.Pool, tenant_table: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.tenant_transaction(app_pool, "acct-a") as conn:
            await conn.execute(
                "INSERT INTO rls_probe (source_account_id, body) VALUES ('acct-b', 'sneaky')"
            )
    async with db.tenant_transaction(app_pool, "acct-a") as conn:
        changed = await conn.execute("UPDATE rls_probe SET body = 'x'")
        deleted = await conn.execute("DELETE FROM rls_probe WHERE source_account_id = 'acct-b'")
        await conn.execute("ROLLBACK AND CHAIN")  # keep the rows for the other tests
    assert changed == "UPDATE 2" and deleted == "DELETE 0"


async def test_tenant_setting_does_not_leak_past_the_transaction(
    app_pool: asyncpg.Pool, tenant_table: str
) -> None:
    async with db.tenant_transaction(app_pool, "acct-a") as conn:
        assert await conn.fetchval("SELECT count(*) FROM rls_probe") == 2
    async with app_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM rls_probe") == 0


async def test_every_tenant_table_forces_rls(database_url: str) -> None:
    """Any table with source_account_id (from any migration) has forced RLS and the policy."""
    owner = await db.connect(database_url)
    try:
        rows = await owner.fetch(
            """
            SELECT c.oid::regclass::text AS name, c.relrowsecurity, c.relforcerowsecurity,
                   EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid) AS has_policy
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p')
              AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'hdb_catalog')
              AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                          AND a.attname = 'source_account_id' AND NOT a.attisdropped)
            """
        )
    finally:
        await owner.close()
    assert rows
    unguarded = [
        r["name"]
        for r in rows
        if not (r["relrowsecurity"] and r["relforcerowsecurity"] and r["has_policy"])
    ]
    assert unguarded == []


async def test_tenant_transaction_on_a_worker_pool_is_scoped_too(
    database_url: str, tenant_table: str
) -> None:
    pool = await db.create_pool(database_url, role=db.WORKER_ROLE, min_size=1, max_size=1)
    try:
        # the worker role claims across accounts...
        assert await pool.fetchval("SELECT count(*) FROM rls_probe") == 3
        # ...but inside a tenant transaction it acts as the RLS-bound role
        async with db.tenant_transaction(pool, "acct-b") as conn:
            assert await conn.fetchval("SELECT current_user") == db.APP_ROLE
            assert [r["body"] for r in await conn.fetch("SELECT body FROM rls_probe")] == ["b1"]
        # and the role reverts once the transaction ends
        assert await pool.fetchval("SELECT current_user") == db.WORKER_ROLE
    finally:
        await pool.close()


@pytest.mark.parametrize("account", ["o'brien", "back\\slash", "semi;colon"])
async def test_an_account_id_outside_the_plain_alphabet_is_a_parameter(
    app_pool: asyncpg.Pool, tenant_table: str, account: str
) -> None:
    """Such ids never pass the door, but a row may carry one: its transaction is scoped
    to exactly that id (sent as a parameter), sees no other account, and can write."""
    async with db.tenant_transaction(app_pool, account) as conn:
        assert await conn.fetchval("SELECT current_setting('app.source_account_id')") == account
        assert await conn.fetchval("SELECT count(*) FROM rls_probe") == 0
        await conn.execute(
            "INSERT INTO rls_probe (source_account_id, body) VALUES ($1, 'odd')", account
        )
    async with db.tenant_transaction(app_pool, account) as conn:
        assert [r["body"] for r in await conn.fetch("SELECT body FROM rls_probe")] == ["odd"]
        await conn.execute("DELETE FROM rls_probe")


async def test_a_failed_tenant_transaction_rolls_back(
    app_pool: asyncpg.Pool, tenant_table: str
) -> None:
    with pytest.raises(RuntimeError):
        async with db.tenant_transaction(app_pool, "acct-a") as conn:
            await conn.execute("UPDATE rls_probe SET body = 'changed'")
            raise RuntimeError("the route failed")
    async with db.tenant_transaction(app_pool, "acct-a", isolation="repeatable_read") as conn:
        bodies = sorted(r["body"] for r in await conn.fetch("SELECT body FROM rls_probe"))
    assert bodies == ["a1", "a2"]


async def test_a_cancelled_tenant_transaction_leaves_no_transaction_behind(
    app_pool: asyncpg.Pool, tenant_table: str
) -> None:
    """Cancelled at any point, even while BEGIN and the scope are in flight: the
    connection is rolled back by us, not left for the pool to reset (which asyncpg
    reports as an error), and the next user of it sees no scope."""
    loop = asyncio.get_running_loop()
    reported: list[str] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(str(context)))

    async def use() -> None:
        async with db.tenant_transaction(app_pool, "acct-a") as conn:
            await conn.fetchval("SELECT count(*) FROM rls_probe")

    try:
        for spins in range(40):
            task = asyncio.create_task(use())
            for _ in range(spins):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with app_pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert not await conn.fetchval("SELECT current_setting('app.source_account_id', true)")
    finally:
        loop.set_exception_handler(previous)
    assert not [r for r in reported if "active transaction" in r]
