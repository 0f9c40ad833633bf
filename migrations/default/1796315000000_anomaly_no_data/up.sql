-- nself-anomaly: no-data alerts (issue 13, item 5).
--
-- * np_anomaly_detectors.no_data_seconds: a series of the detector that has reported at
--   least once and then sends nothing for this long records one `no_data` anomaly, which
--   pages like any episode (NULL: off, the default; 60 s to 30 days).
-- * np_anomaly_series.no_data_since / no_data_at: the series' open silence: the timestamp
--   of its last point when the silence was recorded, and the instant the `no_data`
--   anomaly was recorded (its timestamp, and the start in its paging dedup key). NULL:
--   the series is not silent. The silence ends when a newer point arrives.
-- * np_anomaly_data_points.kind: 'point' (every point scored at ingest) or 'no_data' (an
--   anomaly recorded because a series stopped reporting; value: its last value).
--   A constant default: no table rewrite. The check is NOT VALID: existing rows all
--   have the default, so there is nothing to scan.
--
-- Indexes, for the no-data pass (services/anomaly/nodata/store.py):
-- * detectors with no_data_seconds (partial): the only ones whose series are scanned;
--   their series are then reached by the series' primary key (account, detector, series).
--   No index on np_anomaly_series.last_ts: every ingest moves it, and an index on it would
--   turn each series update of the hot path from a HOT update into one with index writes.
-- * open silences (partial): the series to watch for data coming back.

ALTER TABLE public.np_anomaly_detectors
    ADD COLUMN no_data_seconds integer
        CONSTRAINT np_anomaly_detectors_no_data_seconds
        CHECK (no_data_seconds BETWEEN 60 AND 2592000);

ALTER TABLE public.np_anomaly_series
    ADD COLUMN no_data_since timestamptz,
    ADD COLUMN no_data_at    timestamptz;

ALTER TABLE public.np_anomaly_data_points
    ADD COLUMN kind text NOT NULL DEFAULT 'point';
ALTER TABLE public.np_anomaly_data_points
    ADD CONSTRAINT np_anomaly_data_points_kind CHECK (kind IN ('point', 'no_data')) NOT VALID;

CREATE INDEX np_anomaly_detectors_no_data
    ON public.np_anomaly_detectors (source_account_id, id)
    WHERE no_data_seconds IS NOT NULL;
CREATE INDEX np_anomaly_series_no_data_open
    ON public.np_anomaly_series (source_account_id, detector_id, series_key)
    WHERE no_data_at IS NOT NULL;
