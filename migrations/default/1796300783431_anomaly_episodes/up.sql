-- nself-anomaly: pages that operators trust (issue 11).
--
-- * np_anomaly_detectors.learning: the detector's own verdict on whether it is still
--   learning (its warm-up, or for `auto` its first seasonal cycle), written with its
--   state at every ingest; the detector API's status `learning` follows it. Rows that
--   exist get today's rule (fewer points learned than the warm-up).
-- * np_anomaly_detectors.episode_key / episode_ends_at: the open anomaly episode that
--   paged (its dedup key) and when it ends if no point comes (its last anomaly plus the
--   cooldown, or twice the series' interval if longer). The paging worker resolves the
--   alerts of episodes past that instant; NULL when there is nothing to resolve.
-- * np_anomaly_page_outbox.kind: 'open' (POST /api/v1/alerts, as before) or 'resolve'
--   (POST /api/v1/alerts/{id}/resolve once the open page has its alert id). One row of
--   each kind per episode: the dedup key is unique per account and kind.

ALTER TABLE public.np_anomaly_detectors
    ADD COLUMN learning        boolean     NOT NULL DEFAULT true,
    ADD COLUMN episode_key     text,
    ADD COLUMN episode_ends_at timestamptz;

-- the existing rows (FORCE ROW LEVEL SECURITY would hide them from a non-superuser owner)
ALTER TABLE public.np_anomaly_detectors NO FORCE ROW LEVEL SECURITY;
UPDATE public.np_anomaly_detectors SET learning = n_seen < warmup;
ALTER TABLE public.np_anomaly_detectors FORCE ROW LEVEL SECURITY;

-- the paging worker's question: which open episodes have ended by now?
CREATE INDEX np_anomaly_detectors_episode_ends
    ON public.np_anomaly_detectors (episode_ends_at)
    WHERE episode_ends_at IS NOT NULL;

ALTER TABLE public.np_anomaly_page_outbox
    ADD COLUMN kind text NOT NULL DEFAULT 'open'
        CONSTRAINT np_anomaly_page_outbox_kind CHECK (kind IN ('open', 'resolve'));
ALTER TABLE public.np_anomaly_page_outbox DROP CONSTRAINT np_anomaly_page_outbox_dedup;
ALTER TABLE public.np_anomaly_page_outbox
    ADD CONSTRAINT np_anomaly_page_outbox_dedup UNIQUE (source_account_id, dedup_key, kind);
