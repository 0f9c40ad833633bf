-- Back to one page row per episode (resolves queued but not sent are dropped).
ALTER TABLE public.np_anomaly_page_outbox NO FORCE ROW LEVEL SECURITY;
DELETE FROM public.np_anomaly_page_outbox WHERE kind = 'resolve';
ALTER TABLE public.np_anomaly_page_outbox FORCE ROW LEVEL SECURITY;
ALTER TABLE public.np_anomaly_page_outbox DROP CONSTRAINT np_anomaly_page_outbox_dedup;
ALTER TABLE public.np_anomaly_page_outbox
    ADD CONSTRAINT np_anomaly_page_outbox_dedup UNIQUE (source_account_id, dedup_key);
ALTER TABLE public.np_anomaly_page_outbox DROP COLUMN kind;

DROP INDEX IF EXISTS public.np_anomaly_detectors_episode_ends;
ALTER TABLE public.np_anomaly_detectors
    DROP COLUMN episode_ends_at,
    DROP COLUMN episode_key,
    DROP COLUMN learning;
