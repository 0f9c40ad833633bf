-- The paging outbox names a page that can never be delivered (refused by on-call, or out
-- of attempts) as on-call's notifications do: 'failed' becomes 'failed_permanent'. Both
-- outboxes follow one set of rules (services/common/outbox.py).
ALTER TABLE public.np_anomaly_page_outbox DROP CONSTRAINT np_anomaly_page_outbox_status;
ALTER TABLE public.np_anomaly_page_outbox NO FORCE ROW LEVEL SECURITY;
UPDATE public.np_anomaly_page_outbox SET status = 'failed_permanent' WHERE status = 'failed';
ALTER TABLE public.np_anomaly_page_outbox FORCE ROW LEVEL SECURITY;
ALTER TABLE public.np_anomaly_page_outbox
    ADD CONSTRAINT np_anomaly_page_outbox_status
        CHECK (status IN ('pending', 'sent', 'failed_permanent'));
