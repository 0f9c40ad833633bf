"""Hasura-layout migrations on the real Postgres: up, down, up again, restarts."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.common import db, migrations
from services.common.embedded import EmbeddedPostgres
from services.common.settings import DEFAULT_MIGRATIONS_DIR
from tests.conftest import REPO_ROOT, create_database


async def _tables(dsn: str) -> set[str]:
    conn = await db.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT table_schema || '.' || table_name AS name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
        return {r["name"] for r in rows}
    finally:
        await conn.close()


async def _applied(dsn: str) -> list[tuple[int, bool]]:
    conn = await db.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT version, dirty FROM hdb_catalog.schema_migrations ORDER BY version"
        )
        return [(r["version"], r["dirty"]) for r in rows]
    finally:
        await conn.close()


def test_discover_reads_hasura_layout() -> None:
    found = migrations.discover(DEFAULT_MIGRATIONS_DIR)
    assert found, "no migrations found"
    assert [m.version for m in found] == sorted(m.version for m in found)
    for migration in found:
        assert len(str(migration.version)) == 13  # unix milliseconds
        assert migration.up_sql.strip() and migration.down_sql.strip()


def test_discover_refuses_a_folder_without_down(tmp_path: Path) -> None:
    broken = tmp_path / "1700000000000_broken"
    broken.mkdir()
    (broken / "up.sql").write_text("SELECT 1;")
    with pytest.raises(migrations.MigrationError, match="down.sql"):
        migrations.discover(tmp_path)


async def test_up_down_up_round_trip_and_restart(pg_server: EmbeddedPostgres) -> None:
    dsn = await create_database(pg_server, "t_migration_round_trip", migrate=False)
    every = migrations.discover(DEFAULT_MIGRATIONS_DIR)
    before = await _tables(dsn)

    conn = await db.connect(dsn)
    try:
        first = await migrations.migrate_up(conn, DEFAULT_MIGRATIONS_DIR)
        assert [m.version for m in first] == [m.version for m in every]
        migrated = await _tables(dsn)
        assert "hdb_catalog.schema_migrations" in migrated

        # a restart applies nothing twice
        assert await migrations.migrate_up(conn, DEFAULT_MIGRATIONS_DIR) == []
        assert await _applied(dsn) == [(m.version, False) for m in every]

        rolled = await migrations.migrate_down(conn, DEFAULT_MIGRATIONS_DIR, len(every))
        assert [m.version for m in rolled] == [m.version for m in reversed(every)]
        assert await _applied(dsn) == []
        # every table a migration created is gone again (the catalog itself stays)
        assert await _tables(dsn) - before == {"hdb_catalog.schema_migrations"}

        again = await migrations.migrate_up(conn, DEFAULT_MIGRATIONS_DIR)
        assert len(again) == len(every)
        assert await _tables(dsn) == migrated
    finally:
        await conn.close()


async def test_failed_migration_leaves_nothing_half_applied(
    pg_server: EmbeddedPostgres, tmp_path: Path
) -> None:
    dsn = await create_database(pg_server, "t_migration_failure", migrate=False)
    good = tmp_path / "1700000000000_good"
    bad = tmp_path / "1700000000001_bad"
    for folder in (good, bad):
        folder.mkdir()
    (good / "up.sql").write_text("CREATE TABLE good_one (id int);")
    (good / "down.sql").write_text("DROP TABLE good_one;")
    (bad / "up.sql").write_text("CREATE TABLE bad_one (id int); SELECT * FROM no_such_table;")
    (bad / "down.sql").write_text("DROP TABLE bad_one;")
    conn = await db.connect(dsn)
    try:
        with pytest.raises(migrations.MigrationError, match="1700000000001_bad/up.sql"):
            await migrations.migrate_up(conn, tmp_path)
        assert await _applied(dsn) == [(1700000000000, False)]
        tables = await _tables(dsn)
        assert "public.good_one" in tables and "public.bad_one" not in tables
    finally:
        await conn.close()


async def test_dirty_version_stops_migrations(pg_server: EmbeddedPostgres) -> None:
    dsn = await create_database(pg_server, "t_migration_dirty", migrate=False)
    conn = await db.connect(dsn)
    try:
        await migrations.applied_versions(conn)  # creates the catalog
        await conn.execute("INSERT INTO hdb_catalog.schema_migrations VALUES (1, true)")
        with pytest.raises(migrations.MigrationError, match="dirty"):
            await migrations.migrate_up(conn, DEFAULT_MIGRATIONS_DIR)
    finally:
        await conn.close()


async def test_cli_migrate_down_and_up(pg_server: EmbeddedPostgres) -> None:
    dsn = await create_database(pg_server, "t_migration_cli", migrate=False)
    env = {**os.environ, "DATABASE_URL": dsn}
    nsentry = [sys.executable, "-m", "services.cli"]
    up = await asyncio.to_thread(
        subprocess.run,
        [*nsentry, "migrate"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    count = len(migrations.discover(DEFAULT_MIGRATIONS_DIR))
    assert up.returncode == 0, up.stderr
    assert f"{count} migrations applied" in up.stdout
    down = await asyncio.to_thread(
        subprocess.run,
        [*nsentry, "migrate", "--down", "1"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert down.returncode == 0, down.stderr
    assert "1 migrations rolled back" in down.stdout
    assert len(await _applied(dsn)) == count - 1
    again = await asyncio.to_thread(
        subprocess.run,
        [*nsentry, "migrate"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert "1 migrations applied" in again.stdout
    assert len(await _applied(dsn)) == count


async def test_hasura_cli_state_follows_the_services(pg_server: EmbeddedPostgres) -> None:
    """Once Hasura has created hdb_version, its cli_state lists exactly what is applied."""
    dsn = await create_database(pg_server, "t_migration_cli_state", migrate=False)
    conn = await db.connect(dsn)
    try:
        # the table as graphql-engine v2 creates it
        await conn.execute(
            """
            CREATE SCHEMA hdb_catalog;
            CREATE TABLE hdb_catalog.hdb_version (
                hasura_uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                version text NOT NULL,
                upgraded_on timestamptz NOT NULL DEFAULT now(),
                cli_state jsonb NOT NULL DEFAULT '{}'::jsonb,
                console_state jsonb NOT NULL DEFAULT '{}'::jsonb
            );
            INSERT INTO hdb_catalog.hdb_version (version, cli_state)
            VALUES ('48', '{"settings": {"migration_mode": "true"}, "other": 1}');
            """
        )
        every = migrations.discover(DEFAULT_MIGRATIONS_DIR)
        await migrations.migrate_up(conn, DEFAULT_MIGRATIONS_DIR)
        state = await conn.fetchval("SELECT cli_state FROM hdb_catalog.hdb_version")
        assert state["migrations"]["default"] == {str(m.version): False for m in every}
        assert state["isStateCopyCompleted"] is True
        assert state["other"] == 1 and state["settings"] == {"migration_mode": "true"}

        await migrations.migrate_down(conn, DEFAULT_MIGRATIONS_DIR, 1)
        state = await conn.fetchval("SELECT cli_state FROM hdb_catalog.hdb_version")
        assert state["migrations"]["default"] == {str(m.version): False for m in every[:-1]}
    finally:
        await conn.close()
