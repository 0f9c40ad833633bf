DROP TABLE IF EXISTS public.np_anomaly_page_outbox;
DROP TABLE IF EXISTS public.np_anomaly_data_points;
DROP TABLE IF EXISTS public.np_anomaly_detectors;
