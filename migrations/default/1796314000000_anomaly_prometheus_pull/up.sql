-- Prometheus pull (services/anomaly/prometheus_pull/): one row per detector whose
-- metric_source is {"type": "prometheus", ...}, written by the detector routes (create,
-- PATCH) in the transaction that saves the detector.
-- * The source's secrets: `bearer` and the `headers` values. The detector's
--   metric_source keeps them masked ("<redacted>"), so that neither the REST answers
--   nor Hasura's select on np_anomaly_detectors ever show them; this table is not
--   tracked by Hasura.
-- * The poller's position: `position` is the last evaluation instant of
--   /api/v1/query_range whose points are stored (NULL: not polled yet, the first poll
--   backfills `lookback_seconds`), advanced in the transaction that stores the points;
--   `backfill_until` the end of that first backfill (points at or before it page
--   nobody). `source_key` (url and query) resets both when the source changes.
-- * The claim: any number of replicas take due rows with FOR UPDATE SKIP LOCKED and
--   hold them under a lease (`lease_token`, `lease_until`) for the duration of a poll.
-- * What GET /api/v1/detectors/{id} shows as `source_status`.
CREATE TABLE public.np_anomaly_pull_state (
    source_account_id text        NOT NULL DEFAULT 'primary',
    detector_id       text        NOT NULL,
    source_key        text        NOT NULL,
    bearer            text,
    headers           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    position          timestamptz,
    backfill_until    timestamptz,
    next_due_at       timestamptz NOT NULL DEFAULT '-infinity',
    lease_token       uuid,
    lease_until       timestamptz,
    polls             bigint      NOT NULL DEFAULT 0,
    errors            bigint      NOT NULL DEFAULT 0,
    skipped           bigint      NOT NULL DEFAULT 0,
    last_success_at   timestamptz,
    last_error        text,
    last_error_at     timestamptz,
    PRIMARY KEY (source_account_id, detector_id),
    FOREIGN KEY (source_account_id, detector_id)
        REFERENCES public.np_anomaly_detectors (source_account_id, id) ON DELETE CASCADE
);
CREATE INDEX np_anomaly_pull_state_due ON public.np_anomaly_pull_state (next_due_at);
SELECT public.nsentry_enable_tenant_rls('public.np_anomaly_pull_state');
GRANT SELECT, INSERT, UPDATE, DELETE ON public.np_anomaly_pull_state TO nsentry_app, nsentry_worker;
COMMENT ON TABLE public.np_anomaly_pull_state IS
    'nself-anomaly Prometheus pull: each source''s secrets, position and lease (internal)';
