DROP TABLE IF EXISTS public.np_anomaly_write_inbox;
