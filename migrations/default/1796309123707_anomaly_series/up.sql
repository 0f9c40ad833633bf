-- nself-anomaly: multi-series detectors (issue 13, item 1).
--
-- A detector watches one or more series. A series is its label set, written
-- canonically as `series_key` (JSON, keys sorted, no spaces: '{"instance":"b"}'; the
-- empty set '{}' for a plain detector). Each series has its own model (checkpoint
-- `state`, `journal`, `checkpoint_id`), threshold run and episode (`policy_state`,
-- `episode_key`, `episode_ends_at`), learning verdict and counters, in
-- np_anomaly_series; the detector row keeps the configuration, plus:
-- * group_by: the label names that make a series (NULL: every label; []: one series);
-- * max_series: how many series it may have (new series past it are refused);
-- * series_count: how many it has (bumped by the ingest that creates one, under the
--   detector's row lock, so the bound holds across replicas);
-- * warmup / learning: what a fresh model of its configuration says (its status while
--   it has no series yet).
-- Points carry their series_key; the unique key becomes (account, detector, series, ts).
--
-- Existing detectors move whole to their empty-label series: the same checkpoint, journal,
-- checkpoint id, threshold state, counters and open episode, so what they learned and
-- the alerts they opened carry on (the dedup key of the empty series is unchanged).

CREATE TABLE public.np_anomaly_series (
    source_account_id text        NOT NULL DEFAULT 'primary',
    id                bigint      GENERATED ALWAYS AS IDENTITY,
    detector_id       text        NOT NULL,
    series_key        text        NOT NULL,
    labels            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    state             jsonb,
    journal           bytea       NOT NULL DEFAULT ''::bytea,
    checkpoint_id     bigint      NOT NULL DEFAULT nextval('public.np_anomaly_checkpoint_seq'),
    policy_state      jsonb,
    n_seen            bigint      NOT NULL DEFAULT 0,
    warmup            integer     NOT NULL DEFAULT 0,
    learning          boolean     NOT NULL DEFAULT true,
    points_count      bigint      NOT NULL DEFAULT 0,
    anomalies_count   bigint      NOT NULL DEFAULT 0,
    late_count        bigint      NOT NULL DEFAULT 0,
    duplicates_count  bigint      NOT NULL DEFAULT 0,
    last_ts           timestamptz,
    last_value        double precision,
    last_score        double precision,
    last_anomaly_at   timestamptz,
    episode_key       text,
    episode_ends_at   timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_account_id, detector_id, series_key),
    CONSTRAINT np_anomaly_series_id UNIQUE (source_account_id, id),
    CONSTRAINT np_anomaly_series_detector_fk FOREIGN KEY (source_account_id, detector_id)
        REFERENCES public.np_anomaly_detectors (source_account_id, id)
        ON DELETE CASCADE ON UPDATE CASCADE
);
ALTER TABLE public.np_anomaly_series ALTER COLUMN state SET STORAGE EXTERNAL;
ALTER TABLE public.np_anomaly_series ALTER COLUMN journal SET STORAGE EXTERNAL;
-- the series list of a detector, in creation order
CREATE INDEX np_anomaly_series_listing
    ON public.np_anomaly_series (source_account_id, detector_id, created_at, id);
-- the paging worker's question: which open episodes have ended by now?
CREATE INDEX np_anomaly_series_episode_ends
    ON public.np_anomaly_series (episode_ends_at)
    WHERE episode_ends_at IS NOT NULL;
SELECT public.nsentry_enable_tenant_rls('public.np_anomaly_series');
COMMENT ON TABLE public.np_anomaly_series IS
    'nself-anomaly series of a detector: labels, learned state (internal), counters';

ALTER TABLE public.np_anomaly_detectors
    ADD COLUMN group_by     text[],
    ADD COLUMN max_series   integer NOT NULL DEFAULT 1000
        CONSTRAINT np_anomaly_detectors_max_series CHECK (max_series >= 1),
    ADD COLUMN series_count integer NOT NULL DEFAULT 0;

-- FORCE ROW LEVEL SECURITY would hide the rows from a non-superuser owner
ALTER TABLE public.np_anomaly_detectors NO FORCE ROW LEVEL SECURITY;
ALTER TABLE public.np_anomaly_series NO FORCE ROW LEVEL SECURITY;
INSERT INTO public.np_anomaly_series
    (source_account_id, detector_id, series_key, labels, state, journal, checkpoint_id,
     policy_state, n_seen, warmup, learning, points_count, anomalies_count, late_count,
     duplicates_count, last_ts, last_value, last_score, last_anomaly_at, episode_key,
     episode_ends_at, created_at, updated_at)
SELECT source_account_id, id, '{}', '{}'::jsonb, state, journal, checkpoint_id,
       policy_state, n_seen, warmup, learning, points_count, anomalies_count, late_count,
       duplicates_count, last_ts, last_value, last_score, last_anomaly_at, episode_key,
       episode_ends_at, created_at, updated_at
  FROM public.np_anomaly_detectors;
UPDATE public.np_anomaly_detectors SET series_count = 1;
ALTER TABLE public.np_anomaly_series FORCE ROW LEVEL SECURITY;
ALTER TABLE public.np_anomaly_detectors FORCE ROW LEVEL SECURITY;

DROP INDEX IF EXISTS public.np_anomaly_detectors_episode_ends;
ALTER TABLE public.np_anomaly_detectors
    DROP COLUMN state,
    DROP COLUMN journal,
    DROP COLUMN checkpoint_id,
    DROP COLUMN policy_state,
    DROP COLUMN n_seen,
    DROP COLUMN points_count,
    DROP COLUMN anomalies_count,
    DROP COLUMN late_count,
    DROP COLUMN duplicates_count,
    DROP COLUMN last_ts,
    DROP COLUMN last_value,
    DROP COLUMN last_score,
    DROP COLUMN last_anomaly_at,
    DROP COLUMN episode_key,
    DROP COLUMN episode_ends_at;

-- points: their series (a constant default: no table rewrite), and the unique key per series
-- (a key is canonical JSON: never a raw newline, which the pipeline uses to send keys)
ALTER TABLE public.np_anomaly_data_points
    ADD COLUMN series_key text NOT NULL DEFAULT '{}'
        CONSTRAINT np_anomaly_data_points_series_key CHECK (strpos(series_key, E'\n') = 0);
ALTER TABLE public.np_anomaly_data_points DROP CONSTRAINT np_anomaly_data_points_unique_ts;
ALTER TABLE public.np_anomaly_data_points
    ADD CONSTRAINT np_anomaly_data_points_unique_ts
    UNIQUE (source_account_id, detector_id, series_key, ts);
