"""Shared fixtures: one embedded Postgres per test session, a fresh migrated
database per test module, and apps served in-process with their lifespan.

Everything runs against the real PostgreSQL of the `pgserver` wheel, never a mock.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from services.common import db, migrations
from services.common.embedded import EmbeddedPostgres
from services.common.settings import DEFAULT_MIGRATIONS_DIR, Settings, load_settings

PLUGIN_SECRET = "test-plugin-secret-" + "x" * 24
JWT_HS_KEY = "test-hs256-key-that-is-long-enough-0123456789"
JWT_SECRET_JSON = json.dumps({"type": "HS256", "key": JWT_HS_KEY})
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A folder for an embedded Postgres, outside pytest's tmp tree.

    pytest resets its base temp folder to mode 0700 whenever a session starts,
    which would cut the `pgserver` system user (root runs) off a running cluster.
    """
    path = Path(tempfile.mkdtemp(prefix="nsentry-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@contextmanager
def own_postgres(prefix: str) -> Iterator[EmbeddedPostgres]:
    """An embedded Postgres in a folder of its own, stopped and removed at the end (a
    module that kills its server uses its own, not the session's)."""
    path = Path(tempfile.mkdtemp(prefix=f"nsentry-test-{prefix}-"))
    server = EmbeddedPostgres(path)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    with own_postgres("pg") as server:
        yield server


async def create_database(server: EmbeddedPostgres, name: str, *, migrate: bool = True) -> str:
    """A new empty database (migrated unless told not to); returns its owner DSN."""
    conn = await db.connect(server.uri())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    dsn = server.uri(name)
    if migrate:
        owner = await db.connect(dsn)
        try:
            # the services' roles log in as themselves (trust over the socket: no password)
            logins = {db.APP_ROLE: None, db.WORKER_ROLE: None}
            await migrations.migrate_up(owner, DEFAULT_MIGRATIONS_DIR, logins=logins)
        finally:
            await owner.close()
    return dsn


# Fixtures that start a real server (Postgres, nginx, a service process): a test that
# uses one, directly or through other fixtures, is a database test (`-m db`).
SERVER_FIXTURES = frozenset({"pg_server", "data_dir", "nginx_binary"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark database tests `db`, so that `pytest -m "not db"` runs the pure ones alone."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


def _database_name(request: pytest.FixtureRequest) -> str:
    stem = re.sub(r"[^a-z0-9_]", "_", request.module.__name__.lower().split(".")[-1])
    return f"t_{stem[:40]}_{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
async def database_url(pg_server: EmbeddedPostgres, request: pytest.FixtureRequest) -> str:
    """A migrated database of this test module's own (owner connection string)."""
    return await create_database(pg_server, _database_name(request))


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "plugin_secret": PLUGIN_SECRET,
        "hasura_graphql_jwt_secret": JWT_SECRET_JSON,
        "nself_license_skip_verify": True,
        "db_pool_max": 8,
    }
    values.update(overrides)
    return load_settings(_env_file=None, **values)


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@asynccontextmanager
async def serve_app(
    app: FastAPI, *, raise_app_exceptions: bool = True, **client_args: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and yield an httpx client speaking ASGI to it.

    With raise_app_exceptions=False the client sees what a server's client would see
    on a crash (the 500 envelope) instead of the exception re-raised by Starlette.
    """
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", **client_args
        ) as client:
            yield client


def auth_headers(account: str | None = "primary", **extra: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {PLUGIN_SECRET}"}
    if account is not None:
        headers["X-Hasura-Source-Account-Id"] = account
    headers.update(extra)
    return headers


def account_jwt(account: str, *, seconds: int = 3600) -> str:
    """A Hasura JWT (HS256, role user) naming the account, valid for ``seconds``."""
    claims = {
        "x-hasura-default-role": "user",
        "x-hasura-allowed-roles": ["user"],
        "x-hasura-source-account-id": account,
    }
    payload = {"exp": int(time.time()) + seconds, "https://hasura.io/jwt/claims": claims}
    return jwt.encode(payload, JWT_HS_KEY, algorithm="HS256")


@pytest.fixture
def headers_for() -> Callable[..., dict[str, str]]:
    return auth_headers
