-- nself-anomaly: detectors, their data points and the paging outbox.
--
-- Every table is tenant-scoped (source_account_id) with the row-level security
-- policy of SPEC section 3. The services query as nsentry_app (RLS applies);
-- the paging sender and the retention pruner claim work across accounts as
-- nsentry_worker; Hasura connects with its own role and applies its own
-- permissions.

-- Identities of model checkpoints (np_anomaly_detectors.checkpoint_id): never reused, so a
-- model a replica keeps in memory can be matched to the checkpoint it was built from.
CREATE SEQUENCE public.np_anomaly_checkpoint_seq;

CREATE TABLE public.np_anomaly_detectors (
    source_account_id    text        NOT NULL DEFAULT 'primary',
    id                   text        NOT NULL
        CONSTRAINT np_anomaly_detectors_id_slug CHECK (id ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    name                 text        NOT NULL,
    description          text        NOT NULL DEFAULT '',
    metric_source        jsonb       NOT NULL DEFAULT '{"type": "push"}'::jsonb,
    algorithm            text        NOT NULL DEFAULT 'auto',
    params               jsonb       NOT NULL DEFAULT '{}'::jsonb,
    thresholds           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    escalation_policy_id text,
    enabled              boolean     NOT NULL DEFAULT true,
    -- Streaming state (never exposed to the user role). The model is a checkpoint plus a
    -- journal: `state` = {"model": <detector get_state(), packed>} as of the checkpoint
    -- (NULL = a fresh model), `journal` = the points learned since, one chunk per scoring
    -- call (services/anomaly/statecodec.py); checkpoint + replayed journal = the live model.
    -- `checkpoint_id` changes with every checkpoint and every model reset.
    state                jsonb,
    journal              bytea       NOT NULL DEFAULT ''::bytea,
    checkpoint_id        bigint      NOT NULL
        DEFAULT nextval('public.np_anomaly_checkpoint_seq'),
    -- the threshold policy's run/episode state (small; written at every ingest)
    policy_state         jsonb,
    -- points the model has learned and how many it needs before scoring (learning -> active)
    n_seen               bigint      NOT NULL DEFAULT 0,
    warmup               integer     NOT NULL DEFAULT 0,
    -- counters since creation (retention does not decrement them)
    points_count         bigint      NOT NULL DEFAULT 0,
    anomalies_count      bigint      NOT NULL DEFAULT 0,
    late_count           bigint      NOT NULL DEFAULT 0,
    duplicates_count     bigint      NOT NULL DEFAULT 0,
    -- the latest learned point: older points are late
    last_ts              timestamptz,
    last_value           double precision,
    last_score           double precision,
    last_anomaly_at      timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_account_id, id)
);

-- Data points. Partition-ready: every query names (source_account_id,
-- detector_id) and a ts range, or an id. To range-partition by ts later,
-- recreate the table as PARTITION BY RANGE (ts) with PRIMARY KEY (id, ts) (a
-- partitioned table's keys must include the partition column; the unique key
-- below already does) and move the rows; retention then becomes dropping old
-- partitions after copying their anomalies out. No API changes.
CREATE TABLE public.np_anomaly_data_points (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_account_id text             NOT NULL DEFAULT 'primary',
    detector_id       text             NOT NULL,
    ts                timestamptz      NOT NULL,
    value             double precision NOT NULL,
    -- scoring results: score NULL until scored (the event trigger scores those)
    score             double precision,
    is_anomaly        boolean          NOT NULL DEFAULT false,
    severity          text
        CONSTRAINT np_anomaly_data_points_severity CHECK (severity IN ('warning', 'critical')),
    expected          double precision,
    lower             double precision,
    upper             double precision,
    -- the explanation (anomalies): {"explanation", "algorithm", "params", "thresholds", ...}
    context           jsonb,
    late              boolean          NOT NULL DEFAULT false,
    -- feedback (anomalies): open until reviewed
    status            text
        CONSTRAINT np_anomaly_data_points_status
        CHECK (status IN ('open', 'confirmed', 'false_positive', 'resolved')),
    note              text,
    reviewed_at       timestamptz,
    ingested_at       timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT np_anomaly_data_points_unique_ts UNIQUE (source_account_id, detector_id, ts),
    CONSTRAINT np_anomaly_data_points_detector_fk FOREIGN KEY (source_account_id, detector_id)
        REFERENCES public.np_anomaly_detectors (source_account_id, id)
        ON DELETE CASCADE ON UPDATE CASCADE
);

-- time range per detector: the unique key (source_account_id, detector_id, ts)
-- anomalies only, newest first, per account and per detector
CREATE INDEX np_anomaly_data_points_anomalies
    ON public.np_anomaly_data_points (source_account_id, ts DESC, id DESC)
    WHERE is_anomaly;
CREATE INDEX np_anomaly_data_points_detector_anomalies
    ON public.np_anomaly_data_points (source_account_id, detector_id, ts DESC, id DESC)
    WHERE is_anomaly;
-- not-yet-scored points (inserted through Hasura), for the event trigger
CREATE INDEX np_anomaly_data_points_unscored
    ON public.np_anomaly_data_points (source_account_id, detector_id, ts)
    WHERE score IS NULL;

-- Paging outbox: one row per anomaly episode of a detector with an escalation
-- policy, written in the transaction that stores the anomaly; a background
-- sender delivers it to nself-oncall until it answers 2xx. Not tracked by Hasura.
CREATE TABLE public.np_anomaly_page_outbox (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_account_id text        NOT NULL DEFAULT 'primary',
    detector_id       text        NOT NULL,
    point_id          bigint,
    policy_id         text        NOT NULL,
    dedup_key         text        NOT NULL,
    episode_start     timestamptz NOT NULL,
    severity          text        NOT NULL,
    summary           text        NOT NULL,
    details           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status            text        NOT NULL DEFAULT 'pending'
        CONSTRAINT np_anomaly_page_outbox_status CHECK (status IN ('pending', 'sent', 'failed')),
    attempts          integer     NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    claimed_until     timestamptz,
    last_error        text,
    response_status   integer,
    alert_id          text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    sent_at           timestamptz,
    CONSTRAINT np_anomaly_page_outbox_dedup UNIQUE (source_account_id, dedup_key)
);

CREATE INDEX np_anomaly_page_outbox_due
    ON public.np_anomaly_page_outbox (next_attempt_at, id)
    WHERE status = 'pending';

-- states and journals are barely compressible: out of line when large, uncompressed
ALTER TABLE public.np_anomaly_detectors ALTER COLUMN state SET STORAGE EXTERNAL;
ALTER TABLE public.np_anomaly_detectors ALTER COLUMN journal SET STORAGE EXTERNAL;

SELECT public.nsentry_enable_tenant_rls('public.np_anomaly_detectors');
SELECT public.nsentry_enable_tenant_rls('public.np_anomaly_data_points');
SELECT public.nsentry_enable_tenant_rls('public.np_anomaly_page_outbox');

-- The scoring pipeline writes points while holding its detector's row lock, so the
-- row it references exists for certain. It runs with session_replication_role =
-- replica, which skips the per-row foreign-key check (a third of a bulk insert's
-- time) and keeps Hasura's event trigger (trigger_on_replication: false) from firing
-- for points the service has already scored. Needs PostgreSQL 15+ and a superuser
-- running this migration; otherwise the service simply keeps the checks.
DO $$
BEGIN
    EXECUTE 'GRANT SET ON PARAMETER session_replication_role TO nsentry_app';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'nself-anomaly: session_replication_role not granted (%), keeping FK checks',
        SQLERRM;
END
$$;

COMMENT ON TABLE public.np_anomaly_detectors IS 'nself-anomaly detectors (state is internal)';
COMMENT ON TABLE public.np_anomaly_data_points IS 'nself-anomaly data points, scored at ingest';
COMMENT ON TABLE public.np_anomaly_page_outbox IS 'nself-anomaly on-call pages to deliver';
