"""Every migration, one at a time, on a real Postgres, as the Hasura CLI would run it.

Each up.sql is applied in order and the database's catalogue snapshotted; then
every down.sql in reverse must bring the catalogue back to exactly what it was
before that migration's up; then all ups again give the same schema as the
first time. The migration files are also checked for what Hasura's `migrate
apply` (one transaction per file, through run_sql) cannot run.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from services.common import db, migrations
from services.common.embedded import EmbeddedPostgres
from tests.conftest import create_database
from tests.deploy.support import HASURA_DIR, MIGRATIONS_DIR, load_yaml

# A structural fingerprint of everything a migration may create, outside the
# catalogues Postgres and Hasura own.
SNAPSHOT_QUERIES = {
    "schemas": """
        SELECT nspname FROM pg_namespace
        WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'
    """,
    "columns": """
        SELECT c.table_schema, c.table_name, c.column_name, c.data_type, c.is_nullable,
               coalesce(c.column_default, ''), c.is_identity
        FROM information_schema.columns c
        WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema')
    """,
    "relations": """
        SELECT n.nspname, c.relname, c.relkind::text, c.relrowsecurity, c.relforcerowsecurity
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
    """,
    "indexes": """
        SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
    """,
    "constraints": """
        SELECT n.nspname, conrelid::regclass::text, conname, pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
    """,
    "policies": """
        SELECT schemaname, tablename, policyname, coalesce(qual, ''), coalesce(with_check, '')
        FROM pg_policies
    """,
    "functions": """
        SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
    """,
    "triggers": """
        SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal
    """,
    "types": """
        SELECT n.nspname, t.typname, t.typtype::text
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
          AND t.typtype IN ('e', 'd', 'c')
          AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
    """,
    "table_grants": """
        SELECT table_schema, table_name, grantee, privilege_type
        FROM information_schema.role_table_grants
        WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
    """,
    "default_privileges": """
        SELECT coalesce(n.nspname, ''), d.defaclobjtype::text, d.defaclacl::text
        FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
    """,
    "extensions": "SELECT extname FROM pg_extension",
}
# the services' own bookkeeping, which Hasura's CLI also reads (state copy)
BOOKKEEPING = "schema_migrations"


async def snapshot(conn: asyncpg.Connection) -> dict[str, set[tuple[Any, ...]]]:
    taken: dict[str, set[tuple[Any, ...]]] = {}
    for name, query in SNAPSHOT_QUERIES.items():
        rows = await conn.fetch(query)
        taken[name] = {
            tuple(row.values()) for row in rows if BOOKKEEPING not in " ".join(map(str, row))
        }
    return taken


def diff(before: dict[str, set[Any]], after: dict[str, set[Any]]) -> dict[str, Any]:
    return {
        name: {
            "added": sorted(map(str, after[name] - before[name])),
            "removed": sorted(map(str, before[name] - after[name])),
        }
        for name in before
        if before[name] != after[name]
    }


async def _apply(conn: asyncpg.Connection, sql: str) -> None:
    # as Hasura's migrate apply does: the whole file in one transaction
    async with conn.transaction():
        await conn.execute(sql)


async def test_each_up_then_all_downs_in_reverse_then_ups_again(
    pg_server: EmbeddedPostgres,
) -> None:
    dsn = await create_database(pg_server, "t_deploy_migration_steps", migrate=False)
    every = migrations.discover(MIGRATIONS_DIR)
    assert every, "no migrations"
    conn = await db.connect(dsn)
    try:
        states = [await snapshot(conn)]
        for migration in every:
            await _apply(conn, migration.up_sql)
            after = await snapshot(conn)
            assert after != states[-1], f"{migration.path.name}/up.sql changed nothing"
            states.append(after)

        for index in range(len(every) - 1, -1, -1):
            migration = every[index]
            await _apply(conn, migration.down_sql)
            now = await snapshot(conn)
            assert now == states[index], (
                f"{migration.path.name}/down.sql does not undo its up.sql: "
                f"{diff(states[index], now)}"
            )

        for migration in every:
            await _apply(conn, migration.up_sql)
        again = await snapshot(conn)
        assert again == states[-1], f"second up differs: {diff(states[-1], again)}"
    finally:
        await conn.close()


async def test_services_bookkeeping_is_what_the_hasura_cli_copies(
    pg_server: EmbeddedPostgres,
) -> None:
    """Config-v3 CLIs copy `hdb_catalog.schema_migrations (version, dirty)` into their
    catalogue state on first `migrate apply`: the services' rows must be that shape."""
    dsn = await create_database(pg_server, "t_deploy_migration_state", migrate=True)
    conn = await db.connect(dsn)
    try:
        columns = {
            row["column_name"]: row["data_type"]
            for row in await conn.fetch(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'hdb_catalog' AND table_name = 'schema_migrations'"
            )
        }
        assert columns == {"version": "bigint", "dirty": "boolean"}
        rows = await conn.fetch(
            "SELECT version, dirty FROM hdb_catalog.schema_migrations ORDER BY version"
        )
        expected = [m.version for m in migrations.discover(MIGRATIONS_DIR)]
        assert [(r["version"], r["dirty"]) for r in rows] == [(v, False) for v in expected]
    finally:
        await conn.close()


_NOT_IN_A_TRANSACTION = re.compile(
    r"\b(CONCURRENTLY|VACUUM|CREATE\s+DATABASE|DROP\s+DATABASE|ALTER\s+SYSTEM)\b"
    r"|^\s*(BEGIN|COMMIT|ROLLBACK|START\s+TRANSACTION)\s*;",
    re.IGNORECASE | re.MULTILINE,
)


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def test_migrations_run_inside_one_transaction_each() -> None:
    """Hasura's `migrate apply` runs each file through run_sql in a transaction."""
    for migration in migrations.discover(MIGRATIONS_DIR):
        for kind in ("up", "down"):
            sql = _strip_comments((migration.path / f"{kind}.sql").read_text())
            found = _NOT_IN_A_TRANSACTION.search(sql)
            assert found is None, (
                f"{migration.path.name}/{kind}.sql uses {found.group(0)!r}, "
                "which cannot run inside the migration's transaction"
            )


def test_hasura_cli_finds_the_migrations_where_they_are() -> None:
    """config.yaml points the CLI at ../migrations; the database folder is `default`."""
    config = load_yaml(HASURA_DIR / "config.yaml")
    assert config["version"] == 3
    folder = (HASURA_DIR / config["migrations_directory"]).resolve()
    databases = load_yaml(
        HASURA_DIR / config["metadata_directory"] / "databases" / "databases.yaml"
    )
    names = [database["name"] for database in databases]
    assert names == ["default"]
    assert (folder / "default").resolve() == MIGRATIONS_DIR.resolve()
    # the CLI wants <version>_<name>/{up,down}.sql, which discover() also requires
    for migration in migrations.discover(folder / "default"):
        assert re.fullmatch(r"\d{13}_[a-z0-9_]+", migration.path.name)
