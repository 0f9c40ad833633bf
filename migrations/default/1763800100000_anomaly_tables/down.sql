-- The SET privilege on session_replication_role, like the roles, is cluster-wide and
-- may serve other databases: it is left in place.
DROP TABLE IF EXISTS public.np_anomaly_page_outbox;
DROP TABLE IF EXISTS public.np_anomaly_data_points;
DROP TABLE IF EXISTS public.np_anomaly_detectors;
DROP SEQUENCE IF EXISTS public.np_anomaly_checkpoint_seq;
