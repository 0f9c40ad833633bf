-- The web console's sessions (services/console/sessions.py). The cookie is signed;
-- this row makes it revocable: a cookie is accepted only while its row exists, has
-- not expired and is not revoked (sign-out sets revoked_at). `id` is the SHA-256 of
-- the session id the cookie carries; `credential` the signed-in person's bearer,
-- encrypted by the console (Fernet), never in clear. Not tracked by Hasura.
CREATE SCHEMA IF NOT EXISTS np_console;

CREATE TABLE np_console.sessions (
    source_account_id TEXT NOT NULL DEFAULT 'primary',
    id TEXT NOT NULL,
    via TEXT NOT NULL CHECK (via IN ('secret', 'jwt')),
    credential BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    PRIMARY KEY (source_account_id, id)
);
CREATE INDEX sessions_expiry ON np_console.sessions (source_account_id, expires_at);
SELECT public.nsentry_enable_tenant_rls('np_console.sessions');

GRANT USAGE ON SCHEMA np_console TO nsentry_app, nsentry_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON np_console.sessions TO nsentry_app, nsentry_worker;
