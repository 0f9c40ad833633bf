"""deploy/postgres/initdb: the services can write Hasura's event log.

Hasura's event trigger on np_anomaly_data_points runs a plain (security invoker)
trigger function that inserts into hdb_catalog.event_log, so the role the
services insert points as (nsentry_app) needs that privilege, or every ingest in
the full stack fails. The init script the postgres container runs grants it
ahead of time. Hasura cannot run here: its catalogue table, insert function and
trigger are recreated below with the shape Hasura v2 gives them.
"""

from __future__ import annotations

import asyncpg
import pytest

from services.common import db, migrations
from services.common.embedded import EmbeddedPostgres
from tests.conftest import create_database
from tests.deploy.support import MIGRATIONS_DIR, REPO_ROOT, tracked_tables

INITDB = REPO_ROOT / "deploy" / "postgres" / "initdb"


def hasura_catalogue(trigger: str) -> str:
    """What Hasura creates when it starts and applies the event trigger's metadata."""
    return HASURA_CATALOGUE.replace("__NAME__", trigger)


HASURA_CATALOGUE = """
    CREATE SCHEMA IF NOT EXISTS hdb_catalog;
    CREATE TABLE hdb_catalog.event_log (
        id text DEFAULT gen_random_uuid() PRIMARY KEY,
        schema_name text NOT NULL,
        table_name text NOT NULL,
        trigger_name text NOT NULL,
        payload jsonb NOT NULL,
        delivered boolean NOT NULL DEFAULT false,
        error boolean NOT NULL DEFAULT false,
        tries integer NOT NULL DEFAULT 0,
        created_at timestamp DEFAULT now(),
        locked timestamptz,
        next_retry_at timestamp,
        archived boolean NOT NULL DEFAULT false
    );
    CREATE FUNCTION hdb_catalog.insert_event_log(
        schema_name text, table_name text, trigger_name text, op text, row_data json
    ) RETURNS text LANGUAGE plpgsql AS $$
    DECLARE
        id text;
        payload json;
    BEGIN
        id := gen_random_uuid();
        payload := json_build_object(
            'op', op, 'data', row_data,
            'session_variables', current_setting('hasura.user', 't')::json
        );
        INSERT INTO hdb_catalog.event_log (id, schema_name, table_name, trigger_name, payload)
        VALUES (id, schema_name, table_name, trigger_name, payload);
        RETURN id;
    END;
    $$;
    CREATE FUNCTION hdb_catalog."notify_hasura___NAME___INSERT"()
    RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM hdb_catalog.insert_event_log(
            CAST(TG_TABLE_SCHEMA AS text), CAST(TG_TABLE_NAME AS text),
            CAST('__NAME__' AS text), TG_OP,
            json_build_object('old', NULL, 'new', row_to_json(NEW))
        );
        RETURN NULL;
    END;
    $$;
    CREATE TRIGGER "notify_hasura___NAME___INSERT"
        AFTER INSERT ON public.np_anomaly_data_points
        FOR EACH ROW EXECUTE PROCEDURE hdb_catalog."notify_hasura___NAME___INSERT"();
"""


def trigger_name() -> str:
    (trigger,) = tracked_tables()["public.np_anomaly_data_points"]["event_triggers"]
    return str(trigger["name"])


async def _stack_database(pg_server: EmbeddedPostgres, name: str, *, initdb: bool) -> str:
    """A database set up in the compose order: init scripts, services' migrations, Hasura."""
    dsn = await create_database(pg_server, name, migrate=False)
    owner = await db.connect(dsn)
    try:
        if initdb:
            for script in sorted(INITDB.glob("*.sql")):
                await owner.execute(script.read_text())
        await migrations.migrate_up(owner, MIGRATIONS_DIR)
        await owner.execute(hasura_catalogue(trigger_name()))
    finally:
        await owner.close()
    return dsn


async def _ingest_as_the_service(dsn: str) -> None:
    pool = await db.create_pool(dsn, role=db.APP_ROLE, min_size=1, max_size=1)
    try:
        async with db.tenant_transaction(pool, "acct-initdb") as conn:
            await conn.execute(
                "INSERT INTO np_anomaly_detectors (source_account_id, id, name) "
                "VALUES ('acct-initdb', 'd1', 'd1')"
            )
            await conn.execute(
                "INSERT INTO np_anomaly_data_points (source_account_id, detector_id, ts, value) "
                "VALUES ('acct-initdb', 'd1', '2026-11-22T20:00:00Z', 1.5)"
            )
    finally:
        await pool.close()


async def test_points_inserted_by_the_services_reach_hasuras_event_log(
    pg_server: EmbeddedPostgres,
) -> None:
    dsn = await _stack_database(pg_server, "t_deploy_initdb", initdb=True)
    await _ingest_as_the_service(dsn)
    owner = await db.connect(dsn)
    try:
        (event,) = await owner.fetch("SELECT trigger_name, payload FROM hdb_catalog.event_log")
        assert event["trigger_name"] == trigger_name()
        row = event["payload"]["data"]["new"]
        assert (row["source_account_id"], row["detector_id"]) == ("acct-initdb", "d1")
        # nothing more than that: the service role cannot touch the migration bookkeeping
        can = await owner.fetchval(
            "SELECT has_table_privilege('nsentry_app', 'hdb_catalog.schema_migrations', "
            "'INSERT, UPDATE, DELETE')"
        )
        assert can is False
    finally:
        await owner.close()


async def test_without_the_init_script_ingest_fails_in_the_full_stack(
    pg_server: EmbeddedPostgres,
) -> None:
    """Why the script exists."""
    dsn = await _stack_database(pg_server, "t_deploy_no_initdb", initdb=False)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="hdb_catalog"):
        await _ingest_as_the_service(dsn)
