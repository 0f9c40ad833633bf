DROP TABLE np_oncall.maintenance_windows;
DROP TABLE np_oncall.integrations;
DROP INDEX np_oncall.alerts_suppressed_idx;
ALTER TABLE np_oncall.alerts DROP CONSTRAINT alerts_status_check;
ALTER TABLE np_oncall.alerts NO FORCE ROW LEVEL SECURITY;
UPDATE np_oncall.alerts SET status = 'triggered' WHERE status = 'suppressed';
ALTER TABLE np_oncall.alerts FORCE ROW LEVEL SECURITY;
ALTER TABLE np_oncall.alerts ADD CONSTRAINT alerts_status_check
    CHECK (status IN ('triggered', 'acknowledged', 'resolved'));
ALTER TABLE np_oncall.alerts DROP COLUMN suppressed_at;
ALTER TABLE np_oncall.alerts DROP COLUMN integration_id;
