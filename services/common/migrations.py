"""Hasura-layout migrations: `<dir>/<unix_ms>_<name>/up.sql` and `down.sql`.

Applied versions are recorded in Hasura's own `hdb_catalog.schema_migrations
(version bigint, dirty bool)`, so the Hasura CLI and the services agree. Where a
Hasura server has created `hdb_catalog.hdb_version`, its `cli_state` (the record
config-v3 CLIs read once they have copied `schema_migrations`) is kept equal to
it too, so `hasura migrate apply` never re-runs what a service applied. Each
migration runs in its own transaction together with its bookkeeping row, under
an advisory lock so that several replicas starting at once apply it once.

Migrations run as the owner (the login of DATABASE_URL). Under the same lock,
`migrate_up` also makes the services' roles (nsentry_app, nsentry_worker) logins
with the passwords the services derive for them, when they manage those logins.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg

_FOLDER = re.compile(r"^(\d{13})_([a-z0-9_]+)$")
_LOCK_KEY = 0x6E53656E747279  # "nSentry"

CATALOG_SQL = """
CREATE SCHEMA IF NOT EXISTS hdb_catalog;
CREATE TABLE IF NOT EXISTS hdb_catalog.schema_migrations (
    version bigint NOT NULL PRIMARY KEY,
    dirty boolean NOT NULL
);
"""


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def up_sql(self) -> str:
        return (self.path / "up.sql").read_text()

    @property
    def down_sql(self) -> str:
        return (self.path / "down.sql").read_text()


def discover(directory: Path) -> list[Migration]:
    """Every migration folder under `directory`, oldest first."""
    if not directory.is_dir():
        raise MigrationError(f"migrations folder not found: {directory}")
    found = []
    for entry in directory.iterdir():
        match = _FOLDER.match(entry.name)
        if not entry.is_dir() or not match:
            continue
        if not (entry / "up.sql").is_file() or not (entry / "down.sql").is_file():
            raise MigrationError(f"{entry.name}: needs both up.sql and down.sql")
        found.append(Migration(int(match.group(1)), match.group(2), entry))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migrations share a version")
    return found


async def applied_versions(conn: asyncpg.Connection) -> dict[int, bool]:
    await conn.execute(CATALOG_SQL)
    rows = await conn.fetch("SELECT version, dirty FROM hdb_catalog.schema_migrations")
    return {row["version"]: row["dirty"] for row in rows}


async def migrate_up(
    conn: asyncpg.Connection,
    directory: Path,
    *,
    logins: Mapping[str, str | None] | None = None,
) -> list[Migration]:
    """Apply every pending migration; return those applied now.

    `logins` (Settings.managed_logins()): the roles to make logins, each with its
    password (None: none set, for trust or peer authentication); `ensure_logins`.
    """
    applied: list[Migration] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        done = await applied_versions(conn)
        dirty = sorted(v for v, is_dirty in done.items() if is_dirty)
        if dirty:
            raise MigrationError(f"migration {dirty[0]} is marked dirty; fix it by hand")
        for migration in discover(directory):
            if migration.version in done:
                continue
            try:
                async with conn.transaction():
                    await conn.execute(migration.up_sql)
                    await conn.execute(
                        "INSERT INTO hdb_catalog.schema_migrations (version, dirty) "
                        "VALUES ($1, false)",
                        migration.version,
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(
                    f"{migration.path.name}/up.sql failed: {exc.__class__.__name__}: {exc}"
                ) from exc
            applied.append(migration)
        await sync_hasura_cli_state(conn)
        if logins:
            await ensure_logins(conn, logins)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied


_LOGIN_ROLES = ("nsentry_app", "nsentry_worker")  # created by the first migration
_ENABLE_LOGIN_SQL = """
SELECT rolname, rolcanlogin,
       pg_has_role('nsentry_worker', 'nsentry_app', 'MEMBER') AS worker_acts_as_app
FROM pg_roles WHERE rolname = ANY($1::text[])
"""


async def ensure_logins(conn: asyncpg.Connection, logins: Mapping[str, str | None]) -> None:
    """Make the services' roles logins of their own (docs/architecture.md, "Database
    roles and logins"): LOGIN, the password if one is given (sent as a SCRAM verifier,
    never in clear), and for the worker the membership in nsentry_app that its tenant
    transactions switch to. Roles are cluster-wide state, not a database's, so this is
    the migration step's and not a migration's (one server may hold several nSentry
    databases; rolling one back must not lock the others out)."""
    unknown = sorted(set(logins) - set(_LOGIN_ROLES))
    if unknown:  # the names are written into the statements
        raise MigrationError(f"not a login role of nSentry: {unknown[0]!r}")
    rows = {r["rolname"]: r for r in await conn.fetch(_ENABLE_LOGIN_SQL, list(logins))}
    try:
        for role, password in logins.items():
            row = rows.get(role)
            if row is None:
                raise MigrationError(f"role {role} is missing: the first migration creates it")
            if not row["rolcanlogin"]:
                await conn.execute(f"ALTER ROLE {role} LOGIN")
            if password is not None:
                await conn.execute(f"ALTER ROLE {role} PASSWORD '{scram_verifier(password)}'")
            if role == "nsentry_worker" and not row["worker_acts_as_app"]:
                await conn.execute("GRANT nsentry_app TO nsentry_worker")
    except asyncpg.PostgresError as exc:
        raise MigrationError(
            f"cannot make the services' logins ({exc.__class__.__name__}: {exc}); create "
            f"them yourself and set APP_DATABASE_URL, WORKER_DATABASE_URL (docs/deployment.md)"
        ) from exc


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 secret Postgres stores for `password` (RFC 5802, 7677), as
    `\\password` computes it client side; `password` is ASCII (no SASLprep needed)."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("ascii"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


async def migrate_down(conn: asyncpg.Connection, directory: Path, steps: int) -> list[Migration]:
    """Roll back the last `steps` applied migrations, newest first."""
    if steps < 1:
        raise MigrationError("--down needs a positive number of steps")
    by_version = {m.version: m for m in discover(directory)}
    rolled: list[Migration] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        done = sorted(await applied_versions(conn), reverse=True)
        for version in done[:steps]:
            migration = by_version.get(version)
            if migration is None:
                raise MigrationError(f"applied migration {version} has no folder on disk")
            try:
                async with conn.transaction():
                    await conn.execute(migration.down_sql)
                    await conn.execute(
                        "DELETE FROM hdb_catalog.schema_migrations WHERE version = $1", version
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(
                    f"{migration.path.name}/down.sql failed: {exc.__class__.__name__}: {exc}"
                ) from exc
            rolled.append(migration)
        await sync_hasura_cli_state(conn)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return rolled


async def sync_hasura_cli_state(conn: asyncpg.Connection, database: str = "default") -> bool:
    """Mirror schema_migrations into Hasura's `hdb_version.cli_state`, when Hasura made one."""
    exists = await conn.fetchval("SELECT to_regclass('hdb_catalog.hdb_version') IS NOT NULL")
    if not exists:
        return False
    rows = await conn.fetch("SELECT version, dirty FROM hdb_catalog.schema_migrations")
    versions = {str(row["version"]): bool(row["dirty"]) for row in rows}
    async with conn.transaction():
        states = await conn.fetch("SELECT ctid, cli_state FROM hdb_catalog.hdb_version FOR UPDATE")
        for row in states:
            state = row["cli_state"]
            if isinstance(state, str):
                state = json.loads(state)
            state = dict(state or {})
            by_database = dict(state.get("migrations") or {})
            by_database[database] = versions
            state["migrations"] = by_database
            state.setdefault("settings", {"migration_mode": "true"})
            state["isStateCopyCompleted"] = True
            await conn.execute(
                "UPDATE hdb_catalog.hdb_version SET cli_state = $1::text::jsonb WHERE ctid = $2",
                json.dumps(state),
                row["ctid"],
            )
    return True
