DROP INDEX IF EXISTS public.np_anomaly_series_no_data_open;
DROP INDEX IF EXISTS public.np_anomaly_detectors_no_data;
ALTER TABLE public.np_anomaly_data_points NO FORCE ROW LEVEL SECURITY;
DELETE FROM public.np_anomaly_data_points WHERE kind = 'no_data';
ALTER TABLE public.np_anomaly_data_points FORCE ROW LEVEL SECURITY;
ALTER TABLE public.np_anomaly_data_points DROP CONSTRAINT IF EXISTS np_anomaly_data_points_kind;
ALTER TABLE public.np_anomaly_data_points DROP COLUMN IF EXISTS kind;
ALTER TABLE public.np_anomaly_series
    DROP COLUMN IF EXISTS no_data_since,
    DROP COLUMN IF EXISTS no_data_at;
ALTER TABLE public.np_anomaly_detectors DROP COLUMN IF EXISTS no_data_seconds;
