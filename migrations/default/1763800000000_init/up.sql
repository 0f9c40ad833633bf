-- Foundation: the roles the services run as, their privileges, and the helper
-- every tenant table uses to turn on row-level security.

DO $$
BEGIN
    -- the services' role: row-level security always applies to it
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nsentry_app') THEN
        CREATE ROLE nsentry_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
    -- the background workers' role: claims work across accounts, then acts per account
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nsentry_worker') THEN
        CREATE ROLE nsentry_worker NOLOGIN NOSUPERUSER BYPASSRLS;
    END IF;
END
$$;

-- lets a non-superuser owner SET ROLE to them (a superuser can already)
GRANT nsentry_app TO CURRENT_USER;
GRANT nsentry_worker TO CURRENT_USER;

GRANT USAGE ON SCHEMA public TO nsentry_app, nsentry_worker;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO nsentry_app, nsentry_worker;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO nsentry_app, nsentry_worker;

-- Enable and force RLS on a tenant table with the one policy of SPEC section 3.
CREATE OR REPLACE FUNCTION public.nsentry_enable_tenant_rls(target regclass)
RETURNS void
LANGUAGE plpgsql
AS $fn$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', target);
    EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %s', target);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %s '
        'USING (source_account_id = current_setting(''app.source_account_id'', true)) '
        'WITH CHECK (source_account_id = current_setting(''app.source_account_id'', true))',
        target
    );
END
$fn$;
