ALTER TABLE public.np_anomaly_page_outbox DROP CONSTRAINT np_anomaly_page_outbox_status;
ALTER TABLE public.np_anomaly_page_outbox NO FORCE ROW LEVEL SECURITY;
UPDATE public.np_anomaly_page_outbox SET status = 'failed' WHERE status = 'failed_permanent';
ALTER TABLE public.np_anomaly_page_outbox FORCE ROW LEVEL SECURITY;
ALTER TABLE public.np_anomaly_page_outbox
    ADD CONSTRAINT np_anomaly_page_outbox_status CHECK (status IN ('pending', 'sent', 'failed'));
