DROP TABLE IF EXISTS public.np_anomaly_pull_state;
