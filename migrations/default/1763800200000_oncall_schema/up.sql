-- nself-oncall: people, schedules (with revisions), overrides, escalation
-- policies, alerts, escalation state, the notification outbox and rate-limit
-- bookkeeping. Its own schema, not tracked by Hasura; every table is a tenant
-- table under the row-level security policy of SPEC section 3.

CREATE SCHEMA IF NOT EXISTS np_oncall;

CREATE TABLE np_oncall.people (
    source_account_id TEXT NOT NULL DEFAULT 'primary',
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    -- [{"type": "email"|"webhook"|"slack", "address"|"url", "delay_minutes", "rate_limit"}]
    contact_methods JSONB NOT NULL DEFAULT '[]'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (source_account_id, id)
);
CREATE INDEX people_created_idx ON np_oncall.people (source_account_id, created_at, id);

CREATE TABLE np_oncall.schedules (
    source_account_id TEXT NOT NULL DEFAULT 'primary',
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    timezone TEXT NOT NULL,
    -- the layers in force now (the latest revision), for listing without a join
    layers JSONB NOT NULL DEFAULT '[]'::jsonb,
    revision INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (source_account_id, id)
);
CREATE INDEX schedules_created_idx ON np_oncall.schedules (source_account_id, created_at, id);

-- Every edit of a schedule's rotation adds a revision in force from the moment
-- of the edit: shifts before it keep being computed from the older revision.
CREATE TABLE np_oncall.schedule_revisions (
    source_account_id TEXT NOT NULL DEFAULT 'primary',
    schedule_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    effective_from TIMESTAMPTZ NOT NULL,
    timezone TEXT NOT NULL,
    layers JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (source_account_id, schedule_id, revision),
    FOREIGN KEY (source_account_id, schedule_id)
        REFERENCES np_oncall.schedules (source_account_id, id) ON DELETE CASCADE
);

CREATE TABLE np_oncall.overrides (
    source_account_id TEXT NOT NULL DEFAULT 'primary',
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    schedule_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    start_at TIMESTAMPTZ NOT NULL,
    end_at TIMESTAMPTZ NOT NULL,
    reason TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    -- creation order: where overrides overlap, the latest created wins
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (source_account_id, id),
    CHECK (start_at < end_at),
    FOREIGN KEY (source_account_id, schedule_id)
        REFERENCES np_oncall.schedules (source_account_id, id) ON DELETE CASCADE
);
CREATE INDEX overrides_window_idx
    ON np_oncall.overrides (source_account_id, schedule_id, end_at, start_at);

CREATE TABLE np_oncall.policies (
    source_account_id TEXT NOT NULL DEFAULT 'primary',
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    -- [{"delay_minutes": 15, "targets": [{"type": "person"|"schedule", "id"}]}]
    steps JSONB NOT NULL,
    repeat INTEGER NOT NULL DEFAULT 0 CHECK (repeat >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (source_account_id, id)
);
CREATE INDEX policies_created_idx ON np_oncall.policies (source_account_id, created_at, id);

CREATE TABLE np_oncall.alerts (
    source_account_id TEXT NOT NULL DEFAULT 'primary',
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    policy_id TEXT NOT NULL,
    summary TEXT NOT NULL,
    details JSONB,
    severity TEXT NOT NULL CHECK (severity IN ('critical', 'error', 'warning', 'info')),
    dedup_key TEXT,
    source TEXT,
    status TEXT NOT NULL DEFAULT 'triggered'
        CHECK (status IN ('triggered', 'acknowledged', 'resolved')),
    dedup_count INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    acknowledged_at TIMESTAMPTZ,
    acknowledged_by TEXT,
    resolved_at TIMESTAMPTZ,
    resolved_by TEXT,
    PRIMARY KEY (source_account_id, id)
);
-- one open alert per dedup key: a repeat of the key while open is the same alert
CREATE UNIQUE INDEX alerts_open_dedup_idx ON np_oncall.alerts (source_account_id, dedup_key)
    WHERE dedup_key IS NOT NULL AND status <> 'resolved';
CREATE INDEX alerts_created_idx ON np_oncall.alerts (source_account_id, created_at DESC, id DESC);

-- Escalation state of an open alert: which step fires next and when. The row
-- exists while escalation may still fire; ack, resolve or exhaustion deletes it.
CREATE TABLE np_oncall.escalations (
    source_account_id TEXT NOT NULL DEFAULT 'primary',
    alert_id UUID NOT NULL,
    -- the policy as it was when the alert was triggered
    policy JSONB NOT NULL,
    next_step INTEGER NOT NULL,
    loop INTEGER NOT NULL DEFAULT 0,
    next_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source_account_id, alert_id),
    FOREIGN KEY (source_account_id, alert_id)
        REFERENCES np_oncall.alerts (source_account_id, id) ON DELETE CASCADE
);
CREATE INDEX escalations_due_idx ON np_oncall.escalations (next_at);

-- The outbox: one row per (alert, step, loop, person, contact method).
CREATE TABLE np_oncall.notifications (
    source_account_id TEXT NOT NULL DEFAULT 'primary',
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    alert_id UUID NOT NULL,
    -- sent as Idempotency-Key on every attempt; unique so a step is never queued twice
    idempotency_key TEXT NOT NULL,
    person_id TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('webhook', 'email', 'slack')),
    destination TEXT NOT NULL,
    rate_limit JSONB,
    step INTEGER NOT NULL,
    loop INTEGER NOT NULL,
    payload JSONB NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (
        status IN ('pending', 'sending', 'sent', 'failed', 'failed_permanent', 'cancelled')
    ),
    not_before TIMESTAMPTZ NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_until TIMESTAMPTZ,
    claim_token UUID,
    claimed_by TEXT,
    last_error TEXT,
    last_status_code INTEGER,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ,
    PRIMARY KEY (source_account_id, id),
    UNIQUE (source_account_id, idempotency_key),
    FOREIGN KEY (source_account_id, alert_id)
        REFERENCES np_oncall.alerts (source_account_id, id) ON DELETE CASCADE
);
CREATE INDEX notifications_due_idx ON np_oncall.notifications (not_before)
    WHERE status IN ('pending', 'failed');
CREATE INDEX notifications_lease_idx ON np_oncall.notifications (lease_until)
    WHERE status = 'sending';
CREATE INDEX notifications_alert_idx ON np_oncall.notifications (source_account_id, alert_id);

-- The alert timeline: escalations, notifications and their delivery, ack, resolve.
CREATE TABLE np_oncall.alert_events (
    source_account_id TEXT NOT NULL DEFAULT 'primary',
    id BIGINT GENERATED ALWAYS AS IDENTITY,
    alert_id UUID NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    kind TEXT NOT NULL,
    notification_id UUID,
    details JSONB NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (source_account_id, id),
    FOREIGN KEY (source_account_id, alert_id)
        REFERENCES np_oncall.alerts (source_account_id, id) ON DELETE CASCADE
);
CREATE INDEX alert_events_alert_idx ON np_oncall.alert_events (source_account_id, alert_id, id);

-- Token buckets per contact method destination (channel + address).
CREATE TABLE np_oncall.rate_limits (
    source_account_id TEXT NOT NULL DEFAULT 'primary',
    bucket TEXT NOT NULL,
    tokens DOUBLE PRECISION NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source_account_id, bucket)
);

SELECT public.nsentry_enable_tenant_rls('np_oncall.people');
SELECT public.nsentry_enable_tenant_rls('np_oncall.schedules');
SELECT public.nsentry_enable_tenant_rls('np_oncall.schedule_revisions');
SELECT public.nsentry_enable_tenant_rls('np_oncall.overrides');
SELECT public.nsentry_enable_tenant_rls('np_oncall.policies');
SELECT public.nsentry_enable_tenant_rls('np_oncall.alerts');
SELECT public.nsentry_enable_tenant_rls('np_oncall.escalations');
SELECT public.nsentry_enable_tenant_rls('np_oncall.notifications');
SELECT public.nsentry_enable_tenant_rls('np_oncall.alert_events');
SELECT public.nsentry_enable_tenant_rls('np_oncall.rate_limits');

-- Default privileges were set for schema public only: grant this schema explicitly.
GRANT USAGE ON SCHEMA np_oncall TO nsentry_app, nsentry_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA np_oncall
    TO nsentry_app, nsentry_worker;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA np_oncall TO nsentry_app, nsentry_worker;
