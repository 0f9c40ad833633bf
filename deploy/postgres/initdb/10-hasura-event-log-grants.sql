-- Run once by the postgres image when the data volume is created (docker-compose.yml).
--
-- Hasura's event trigger on public.np_anomaly_data_points is a plain (security
-- invoker) trigger function that inserts into hdb_catalog.event_log. The services
-- insert points as nsentry_app, so that role must be allowed to write Hasura's
-- event log, or every ingest fails with "permission denied for schema hdb_catalog".
-- Hasura creates its catalogue later, as this same login role: default privileges
-- cover the tables it will create. The role is created here with the exact
-- definition of the first migration, which then finds it in place.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nsentry_app') THEN
        CREATE ROLE nsentry_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
END
$$;

CREATE SCHEMA IF NOT EXISTS hdb_catalog;
-- the services' migration bookkeeping (same definition as services/common/migrations.py),
-- created before the default privileges below so that nsentry_app gets nothing on it
CREATE TABLE IF NOT EXISTS hdb_catalog.schema_migrations (
    version bigint NOT NULL PRIMARY KEY,
    dirty boolean NOT NULL
);
GRANT USAGE ON SCHEMA hdb_catalog TO nsentry_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA hdb_catalog GRANT INSERT ON TABLES TO nsentry_app;
