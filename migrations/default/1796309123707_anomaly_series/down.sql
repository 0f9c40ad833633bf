-- Back to one series per detector: the empty-label series' state returns to its
-- detector row; points of labelled series (and those series) are dropped.

ALTER TABLE public.np_anomaly_data_points NO FORCE ROW LEVEL SECURITY;
DELETE FROM public.np_anomaly_data_points WHERE series_key <> '{}';
ALTER TABLE public.np_anomaly_data_points FORCE ROW LEVEL SECURITY;
ALTER TABLE public.np_anomaly_data_points DROP CONSTRAINT np_anomaly_data_points_unique_ts;
ALTER TABLE public.np_anomaly_data_points
    ADD CONSTRAINT np_anomaly_data_points_unique_ts UNIQUE (source_account_id, detector_id, ts);
ALTER TABLE public.np_anomaly_data_points DROP COLUMN series_key;

ALTER TABLE public.np_anomaly_detectors
    ADD COLUMN state            jsonb,
    ADD COLUMN journal          bytea       NOT NULL DEFAULT ''::bytea,
    ADD COLUMN checkpoint_id    bigint      NOT NULL
        DEFAULT nextval('public.np_anomaly_checkpoint_seq'),
    ADD COLUMN policy_state     jsonb,
    ADD COLUMN n_seen           bigint      NOT NULL DEFAULT 0,
    ADD COLUMN points_count     bigint      NOT NULL DEFAULT 0,
    ADD COLUMN anomalies_count  bigint      NOT NULL DEFAULT 0,
    ADD COLUMN late_count       bigint      NOT NULL DEFAULT 0,
    ADD COLUMN duplicates_count bigint      NOT NULL DEFAULT 0,
    ADD COLUMN last_ts          timestamptz,
    ADD COLUMN last_value       double precision,
    ADD COLUMN last_score       double precision,
    ADD COLUMN last_anomaly_at  timestamptz,
    ADD COLUMN episode_key      text,
    ADD COLUMN episode_ends_at  timestamptz;
ALTER TABLE public.np_anomaly_detectors ALTER COLUMN state SET STORAGE EXTERNAL;
ALTER TABLE public.np_anomaly_detectors ALTER COLUMN journal SET STORAGE EXTERNAL;

ALTER TABLE public.np_anomaly_detectors NO FORCE ROW LEVEL SECURITY;
ALTER TABLE public.np_anomaly_series NO FORCE ROW LEVEL SECURITY;
UPDATE public.np_anomaly_detectors d SET
    state = s.state, journal = s.journal, checkpoint_id = s.checkpoint_id,
    policy_state = s.policy_state, n_seen = s.n_seen, warmup = s.warmup,
    learning = s.learning, points_count = s.points_count,
    anomalies_count = s.anomalies_count, late_count = s.late_count,
    duplicates_count = s.duplicates_count, last_ts = s.last_ts, last_value = s.last_value,
    last_score = s.last_score, last_anomaly_at = s.last_anomaly_at,
    episode_key = s.episode_key, episode_ends_at = s.episode_ends_at
  FROM public.np_anomaly_series s
 WHERE s.source_account_id = d.source_account_id AND s.detector_id = d.id
   AND s.series_key = '{}';
ALTER TABLE public.np_anomaly_detectors FORCE ROW LEVEL SECURITY;

CREATE INDEX np_anomaly_detectors_episode_ends
    ON public.np_anomaly_detectors (episode_ends_at)
    WHERE episode_ends_at IS NOT NULL;
ALTER TABLE public.np_anomaly_detectors
    DROP COLUMN group_by,
    DROP COLUMN max_series,
    DROP COLUMN series_count;

DROP TABLE public.np_anomaly_series;
