-- nself-oncall issue 14: integration keys (alerts in from Alertmanager, Grafana, any
-- webhook, email and heartbeats) and maintenance windows (which suppress alerts).

-- An integration key: the token is shown once; only its SHA-256 is kept. `selector` is
-- the token's public half, by which an inbound request finds its key before it knows
-- the account (see the policy below).
CREATE TABLE np_oncall.integrations (
    source_account_id TEXT NOT NULL DEFAULT 'primary',
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    name TEXT NOT NULL,
    type TEXT NOT NULL
        CHECK (type IN ('generic', 'alertmanager', 'grafana', 'email', 'heartbeat')),
    policy_id TEXT NOT NULL,
    severity TEXT NOT NULL DEFAULT 'critical'
        CHECK (severity IN ('critical', 'error', 'warning', 'info')),
    selector TEXT NOT NULL,
    token_hash BYTEA NOT NULL,
    -- alertmanager/grafana: {"dedup": "fingerprint"|"group"}; heartbeat: {"interval_seconds"}
    settings JSONB NOT NULL DEFAULT '{}'::jsonb,
    -- heartbeat: the last ping and when the next one is due (NULL before the first ping)
    last_ping_at TIMESTAMPTZ,
    heartbeat_due_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source_account_id, id)
);
CREATE UNIQUE INDEX integrations_selector_idx ON np_oncall.integrations (selector);
CREATE INDEX integrations_created_idx ON np_oncall.integrations (source_account_id, created_at, id);
CREATE INDEX integrations_heartbeat_due_idx ON np_oncall.integrations (heartbeat_due_at)
    WHERE heartbeat_due_at IS NOT NULL;

-- A maintenance window on one policy, integration or nself-anomaly detector: one-off
-- [start_at, end_at) or recurring (RRULE from start_at, each occurrence as long).
-- `until_at` is when the last occurrence ends (NULL: recurs forever); `applied_start`
-- the occurrence whose start the worker has applied (alerts in scope suppressed).
CREATE TABLE np_oncall.maintenance_windows (
    source_account_id TEXT NOT NULL DEFAULT 'primary',
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    name TEXT NOT NULL,
    policy_id TEXT,
    integration_id UUID,
    detector_id TEXT,
    start_at TIMESTAMPTZ NOT NULL,
    end_at TIMESTAMPTZ NOT NULL,
    rrule TEXT,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    until_at TIMESTAMPTZ,
    applied_start TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source_account_id, id),
    CHECK (start_at < end_at),
    CHECK (num_nonnulls(policy_id, integration_id, detector_id) = 1)
);
CREATE INDEX maintenance_windows_created_idx
    ON np_oncall.maintenance_windows (source_account_id, created_at, id);
CREATE INDEX maintenance_windows_live_idx
    ON np_oncall.maintenance_windows (start_at, until_at);

-- Alerts remember the integration that opened them, and may be suppressed by a window.
ALTER TABLE np_oncall.alerts ADD COLUMN integration_id UUID;
ALTER TABLE np_oncall.alerts ADD COLUMN suppressed_at TIMESTAMPTZ;
ALTER TABLE np_oncall.alerts DROP CONSTRAINT alerts_status_check;
ALTER TABLE np_oncall.alerts ADD CONSTRAINT alerts_status_check
    CHECK (status IN ('triggered', 'acknowledged', 'resolved', 'suppressed'));
CREATE INDEX alerts_suppressed_idx ON np_oncall.alerts (source_account_id)
    WHERE status = 'suppressed';

SELECT public.nsentry_enable_tenant_rls('np_oncall.integrations');
SELECT public.nsentry_enable_tenant_rls('np_oncall.maintenance_windows');

-- An inbound request knows only its token: it may read the one key whose selector it
-- names (set per transaction by the service, never by a client), then scopes itself to
-- that key's account like any request. The tenant policy still governs every write.
CREATE POLICY integration_by_selector ON np_oncall.integrations FOR SELECT
    USING (selector = current_setting('app.integration_selector', true));

GRANT SELECT, INSERT, UPDATE, DELETE ON np_oncall.integrations, np_oncall.maintenance_windows
    TO nsentry_app, nsentry_worker;
