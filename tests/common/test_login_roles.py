"""The services log in as the RLS-bound role itself; the owner only migrates.

Row-level security stops a forgotten WHERE; these tests show that it also holds
against SQL that tries to leave the role: in a real request, on the pool the app
uses, RESET ROLE stays the RLS-bound login and SET ROLE to the owner is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from fastapi import APIRouter, Request

from services.common import db, migrations
from services.common.app import build_app, prepare_database
from services.common.auth import Caller
from services.common.settings import load_settings
from services.oncall.worker import Worker
from tests.conftest import auth_headers, make_settings, serve_app

APP_LOGIN = db.APP_ROLE
WORKER_LOGIN = db.WORKER_ROLE
TENANT_TABLES = ("public.np_anomaly_detectors", "public.np_anomaly_series", "np_oncall.alerts")


@pytest.fixture(scope="module")
async def owner(database_url: str) -> str:
    """The owner login (DATABASE_URL), which ran the migrations; seeds two accounts."""
    conn = await db.connect(database_url)
    try:
        await conn.execute(
            """
            CREATE TABLE login_probe (
                id serial PRIMARY KEY,
                source_account_id text NOT NULL,
                body text NOT NULL
            );
            SELECT public.nsentry_enable_tenant_rls('login_probe');
            """
        )
        for account, body in [("acct-a", "a1"), ("acct-b", "b1"), ("acct-b", "b2")]:
            async with conn.transaction():
                await db.set_tenant(conn, account)
                await conn.execute(
                    "INSERT INTO login_probe (source_account_id, body) VALUES ($1, $2)",
                    account,
                    body,
                )
        return str(await conn.fetchval("SELECT current_user"))
    finally:
        await conn.close()


def _probe_router() -> APIRouter:
    """A route that runs, inside the request's own tenant transaction, what injected
    SQL would try: leave the role, then read the table with no WHERE."""
    router = APIRouter()

    @router.get("/probe")
    async def probe(request: Request, caller: Caller) -> dict[str, Any]:
        pool: asyncpg.Pool = request.app.state.pool
        owner_role = request.query_params["owner"]
        async with db.tenant_transaction(pool, caller.account_id) as conn:
            seen: dict[str, Any] = {
                "current_user": await conn.fetchval("SELECT current_user"),
                "session_user": await conn.fetchval("SELECT session_user"),
                "forgotten_where": [
                    r["body"] for r in await conn.fetch("SELECT body FROM login_probe ORDER BY 1")
                ],
            }
            await conn.execute("RESET ROLE")
            seen["after_reset"] = await conn.fetchval("SELECT current_user")
            seen["after_reset_rows"] = [
                r["source_account_id"]
                for r in await conn.fetch("SELECT source_account_id FROM login_probe")
            ]
            try:
                await conn.execute("SAVEPOINT s")
                await conn.execute(f'SET ROLE "{owner_role}"')
                seen["set_role_owner"] = "allowed"
            except asyncpg.InsufficientPrivilegeError as exc:
                seen["set_role_owner"] = f"refused: {exc}"
                await conn.execute("ROLLBACK TO SAVEPOINT s")
            seen["after_set_role_rows"] = [
                r["source_account_id"]
                for r in await conn.fetch("SELECT source_account_id FROM login_probe")
            ]
        return seen

    return router


@pytest.fixture(scope="module")
async def client(database_url: str, owner: str) -> AsyncIterator[Any]:
    app = build_app(
        plugin="nself-test",
        settings=make_settings(database_url),
        description="login roles",
        routers=[_probe_router()],
    )
    async with serve_app(app) as http:
        yield http


async def test_a_request_runs_as_the_rls_bound_login_not_the_owner(client: Any, owner: str) -> None:
    got = await client.get("/probe", params={"owner": owner}, headers=auth_headers("acct-a"))
    assert got.status_code == 200, got.text
    seen = got.json()
    assert seen["current_user"] == APP_LOGIN
    assert seen["session_user"] == APP_LOGIN  # logged in as it, not switched to it
    assert owner != APP_LOGIN
    assert seen["forgotten_where"] == ["a1"]


async def test_reset_role_in_a_request_cannot_see_another_account(client: Any, owner: str) -> None:
    got = await client.get("/probe", params={"owner": owner}, headers=auth_headers("acct-a"))
    seen = got.json()
    assert seen["after_reset"] == APP_LOGIN
    assert seen["after_reset_rows"] == ["acct-a"]


async def test_set_role_to_the_owner_is_refused_in_a_request(client: Any, owner: str) -> None:
    got = await client.get("/probe", params={"owner": owner}, headers=auth_headers("acct-b"))
    seen = got.json()
    assert seen["set_role_owner"].startswith("refused"), seen["set_role_owner"]
    assert seen["after_set_role_rows"] == ["acct-b", "acct-b"]


async def test_the_app_login_has_no_owner_rights_and_no_bypass(
    database_url: str, owner: str
) -> None:
    settings = make_settings(database_url)
    assert await db.check_app_login(settings.app_dsn) == APP_LOGIN
    conn = await asyncpg.connect(settings.app_dsn)
    try:
        role = await conn.fetchrow(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
            "WHERE rolname = current_user"
        )
        assert not any(role.values())
        # a member of no role at all: nothing to SET ROLE to
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
                "WHERE r.rolname = current_user"
            )
            == 0
        )
        for table in TENANT_TABLES:
            assert (
                await conn.fetchval(
                    "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = $1::regclass", table
                )
                == owner
            )
            with pytest.raises(asyncpg.InsufficientPrivilegeError):  # must be owner
                await conn.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.sneaky (id int)")
        # no account in scope: the tenant tables show nothing, with or without RESET ROLE
        await conn.execute("RESET ROLE")
        assert await conn.fetchval("SELECT count(*) FROM login_probe") == 0
    finally:
        await conn.close()


async def test_the_worker_login_is_not_the_owner_and_acts_per_account(
    database_url: str, owner: str
) -> None:
    settings = make_settings(database_url)
    pool = await db.create_pool(settings.worker_dsn, role=None, min_size=1, max_size=1)
    try:
        assert await pool.fetchval("SELECT session_user") == WORKER_LOGIN
        assert await pool.fetchval("SELECT count(*) FROM login_probe") == 3  # claims across
        async with db.tenant_transaction(pool, "acct-a") as conn:
            assert await conn.fetchval("SELECT current_user") == APP_LOGIN
            assert [r["body"] for r in await conn.fetch("SELECT body FROM login_probe")] == ["a1"]
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f'SET ROLE "{owner}"')
    finally:
        await pool.close()


async def test_migrations_run_as_the_owner(database_url: str, owner: str) -> None:
    conn = await db.connect(database_url)
    try:
        assert await conn.fetchval("SELECT session_user") == owner
        settings = make_settings(database_url)
        applied = await migrations.migrate_up(
            conn, settings.migrations_dir, logins=settings.managed_logins()
        )
        assert applied == []
        rows = await conn.fetch(
            "SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class "
            "WHERE relnamespace IN ('public'::regnamespace, 'np_oncall'::regnamespace) "
            "AND relkind = 'r'"
        )
        assert [r["owner"] for r in rows] == [owner]
        logins = await conn.fetch(
            "SELECT rolname, rolcanlogin, rolbypassrls FROM pg_roles "
            "WHERE rolname = ANY($1::text[]) ORDER BY rolname",
            [APP_LOGIN, WORKER_LOGIN],
        )
        assert [tuple(r.values()) for r in logins] == [
            (APP_LOGIN, True, False),
            (WORKER_LOGIN, True, True),
        ]
    finally:
        await conn.close()


async def test_an_app_url_that_logs_in_as_the_owner_is_refused(database_url: str) -> None:
    """A misconfigured APP_DATABASE_URL (the owner's) keeps the service unready."""
    app = build_app(
        plugin="nself-test",
        settings=make_settings(database_url, app_database_url=database_url),
        description="x",
    )
    app.state.ready = False
    assert await prepare_database(app) is False
    assert "LoginNotBound" in app.state.ready_error
    assert "not bound by row-level security" in app.state.ready_error


def test_logins_are_derived_from_the_owner_url() -> None:
    settings = load_settings(
        _env_file=None, database_url="postgres://owner:s%40cret@db:5432/app?sslmode=require"
    )
    managed = settings.managed_logins()
    assert set(managed) == {APP_LOGIN, WORKER_LOGIN}
    app_password = managed[APP_LOGIN]
    assert app_password and app_password != managed[WORKER_LOGIN] and "s@cret" not in app_password
    assert settings.app_dsn == f"postgres://{APP_LOGIN}:{app_password}@db:5432/app?sslmode=require"
    assert settings.worker_dsn.startswith(f"postgres://{WORKER_LOGIN}:")
    # the embedded server's URL has no password (trust over its socket): none is set
    local = load_settings(_env_file=None, database_url="postgresql://postgres:@/n?host=/tmp/x/pg")
    assert local.app_dsn == f"postgresql://{APP_LOGIN}@/n?host=/tmp/x/pg"
    assert local.managed_logins() == {APP_LOGIN: None, WORKER_LOGIN: None}
    # a login given by its own URL is the operator's: used as is, never altered
    given = load_settings(
        _env_file=None,
        database_url="postgres://owner:pw@db/app",
        app_database_url="postgres://svc:other@db/app",
    )
    assert given.app_dsn == "postgres://svc:other@db/app"
    assert set(given.managed_logins()) == {WORKER_LOGIN}


def test_the_password_goes_out_as_a_scram_verifier() -> None:
    """RFC 7677's example (user, pencil): the verifier proves the client of the RFC."""
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = migrations.scram_verifier("pencil", salt=salt)
    head, keys = verifier.rsplit("$", 1)
    assert head == "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=="
    stored_b64, server_b64 = keys.split(":")
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth = (
        f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        f"c=biws,r={nonce}"
    )
    server_key, stored_key = base64.b64decode(server_b64), base64.b64decode(stored_b64)
    signature = hmac.new(server_key, auth.encode(), hashlib.sha256).digest()
    assert base64.b64encode(signature).decode() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_signature = hmac.new(stored_key, auth.encode(), hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key


async def test_the_oncall_worker_logs_in_as_the_worker_role(database_url: str, owner: str) -> None:
    worker = await Worker.open(make_settings(database_url))
    try:
        assert await worker.pool.fetchval("SELECT session_user") == WORKER_LOGIN
        assert await worker.pool.fetchval("SELECT session_user") != owner
    finally:
        await worker.close()


async def test_every_tenant_table_grants_the_logins_the_same_rights(database_url: str) -> None:
    """Any table with source_account_id (from any migration: the series table too) gives
    both logins SELECT, INSERT, UPDATE, DELETE and nothing more."""
    conn = await db.connect(database_url)
    try:
        rows = await conn.fetch(
            """
            SELECT c.oid::regclass::text AS name, r.role, p.privilege,
                   has_table_privilege(r.role, c.oid, p.privilege) AS granted
              FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
             CROSS JOIN (VALUES ('nsentry_app'), ('nsentry_worker')) AS r(role)
             CROSS JOIN (VALUES ('SELECT'), ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE'),
                                ('REFERENCES'), ('TRIGGER')) AS p(privilege)
             WHERE c.relkind IN ('r', 'p')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'hdb_catalog')
               AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                           AND a.attname = 'source_account_id' AND NOT a.attisdropped)
            """
        )
    finally:
        await conn.close()
    tables = {r["name"] for r in rows}
    assert "np_anomaly_series" in tables
    wrong = [
        (r["name"], r["role"], r["privilege"])
        for r in rows
        if r["name"] != "login_probe"
        and r["granted"] != (r["privilege"] in ("SELECT", "INSERT", "UPDATE", "DELETE"))
    ]
    assert wrong == []
