-- nself-oncall issue 14: ack/resolve/escalate links, signed webhooks (a Standard
-- Webhooks secret per webhook and Slack contact method), calendar feeds by token and
-- notification rules per person by severity.

-- Contact methods get an id (client-chosen slug or generated); notification rules
-- name them: [{"severity", "contact_method_id", "delay_minutes"}].
ALTER TABLE np_oncall.people
    ADD COLUMN notification_rules JSONB NOT NULL DEFAULT '[]'::jsonb;

-- The signing secret of each webhook and Slack contact method (`whsec_` + base64 of 32
-- random bytes). Kept as written because signing needs it (an HMAC key cannot be
-- verified against a hash); shown only in the answer that created or rotated it.
CREATE TABLE np_oncall.contact_secrets (
    source_account_id TEXT NOT NULL DEFAULT 'primary',
    person_id TEXT NOT NULL,
    contact_method_id TEXT NOT NULL,
    secret TEXT NOT NULL CHECK (secret LIKE 'whsec\_%'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (source_account_id, person_id, contact_method_id),
    FOREIGN KEY (source_account_id, person_id)
        REFERENCES np_oncall.people (source_account_id, id) ON DELETE CASCADE
);

-- Existing contact methods: each gets an id, and each webhook or Slack one a secret
-- (the bytes of two random UUIDs: 244 random bits), so that no webhook leaves unsigned.
ALTER TABLE np_oncall.people NO FORCE ROW LEVEL SECURITY;
UPDATE np_oncall.people p
SET contact_methods = (
    SELECT coalesce(jsonb_agg(
               CASE WHEN m ? 'id' THEN m
                    ELSE m || jsonb_build_object('id', gen_random_uuid()::text) END
               ORDER BY ord), '[]'::jsonb)
    FROM jsonb_array_elements(p.contact_methods) WITH ORDINALITY AS e(m, ord)
)
WHERE CASE WHEN jsonb_typeof(p.contact_methods) = 'array'
           THEN jsonb_array_length(p.contact_methods) > 0 ELSE false END;
INSERT INTO np_oncall.contact_secrets (source_account_id, person_id, contact_method_id, secret)
SELECT p.source_account_id, p.id, m ->> 'id',
       'whsec_' || encode(decode(replace(gen_random_uuid()::text, '-', '')
                                 || replace(gen_random_uuid()::text, '-', ''), 'hex'), 'base64')
FROM np_oncall.people p
CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(p.contact_methods) = 'array'
                                             THEN p.contact_methods ELSE '[]' END) AS m
WHERE m ->> 'type' IN ('webhook', 'slack')
ON CONFLICT DO NOTHING;
ALTER TABLE np_oncall.people FORCE ROW LEVEL SECURITY;

-- The contact method a notification is for (its secret signs it); NULL for rows queued
-- before this migration, which find theirs by channel and destination.
ALTER TABLE np_oncall.notifications ADD COLUMN contact_method_id TEXT;

-- A link (ack, resolve, escalate) acts once: its id is recorded when it does. The link
-- itself is an HMAC-signed token (services/oncall/links/tokens.py), never stored.
CREATE TABLE np_oncall.link_uses (
    source_account_id TEXT NOT NULL DEFAULT 'primary',
    link_id TEXT NOT NULL,
    alert_id UUID NOT NULL,
    person_id TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('ack', 'resolve', 'escalate')),
    used_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source_account_id, link_id),
    FOREIGN KEY (source_account_id, alert_id)
        REFERENCES np_oncall.alerts (source_account_id, id) ON DELETE CASCADE
);

-- A calendar feed of one schedule or one person's shifts: the token is shown in
-- `feed_url`; only its SHA-256 is kept. `selector` is its public half, by which the
-- feed request finds the row before it knows the account (policy below).
CREATE TABLE np_oncall.calendar_feeds (
    source_account_id TEXT NOT NULL DEFAULT 'primary',
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    schedule_id TEXT,
    person_id TEXT,
    selector TEXT NOT NULL,
    token_hash BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source_account_id, id),
    CHECK (num_nonnulls(schedule_id, person_id) = 1),
    FOREIGN KEY (source_account_id, schedule_id)
        REFERENCES np_oncall.schedules (source_account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (source_account_id, person_id)
        REFERENCES np_oncall.people (source_account_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX calendar_feeds_selector_idx ON np_oncall.calendar_feeds (selector);
CREATE UNIQUE INDEX calendar_feeds_schedule_idx
    ON np_oncall.calendar_feeds (source_account_id, schedule_id) WHERE schedule_id IS NOT NULL;
CREATE UNIQUE INDEX calendar_feeds_person_idx
    ON np_oncall.calendar_feeds (source_account_id, person_id) WHERE person_id IS NOT NULL;

SELECT public.nsentry_enable_tenant_rls('np_oncall.contact_secrets');
SELECT public.nsentry_enable_tenant_rls('np_oncall.link_uses');
SELECT public.nsentry_enable_tenant_rls('np_oncall.calendar_feeds');

-- A feed request knows only its token: it may read the one feed whose selector it names
-- (set per transaction by the service), then scopes itself to that feed's account.
CREATE POLICY calendar_feed_by_selector ON np_oncall.calendar_feeds FOR SELECT
    USING (selector = current_setting('app.feed_selector', true));

GRANT SELECT, INSERT, UPDATE, DELETE
    ON np_oncall.contact_secrets, np_oncall.link_uses, np_oncall.calendar_feeds
    TO nsentry_app, nsentry_worker;
