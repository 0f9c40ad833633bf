-- Removes every nself-oncall table, its data and the schema.
REVOKE ALL ON ALL TABLES IN SCHEMA np_oncall FROM nsentry_app, nsentry_worker;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA np_oncall FROM nsentry_app, nsentry_worker;
REVOKE USAGE ON SCHEMA np_oncall FROM nsentry_app, nsentry_worker;
DROP SCHEMA np_oncall CASCADE;
