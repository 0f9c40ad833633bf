-- Roles are cluster-wide and may serve other databases: they are left in place.
DROP FUNCTION IF EXISTS public.nsentry_enable_tenant_rls(regclass);
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    REVOKE USAGE, SELECT, UPDATE ON SEQUENCES FROM nsentry_app, nsentry_worker;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM nsentry_app, nsentry_worker;
REVOKE USAGE ON SCHEMA public FROM nsentry_app, nsentry_worker;
