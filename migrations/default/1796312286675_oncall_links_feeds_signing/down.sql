DROP TABLE np_oncall.calendar_feeds;
DROP TABLE np_oncall.link_uses;
ALTER TABLE np_oncall.notifications DROP COLUMN contact_method_id;
DROP TABLE np_oncall.contact_secrets;
ALTER TABLE np_oncall.people DROP COLUMN notification_rules;
-- the older code knows no contact method ids
ALTER TABLE np_oncall.people NO FORCE ROW LEVEL SECURITY;
UPDATE np_oncall.people p
SET contact_methods = (
    SELECT coalesce(jsonb_agg(m - 'id' ORDER BY ord), '[]'::jsonb)
    FROM jsonb_array_elements(p.contact_methods) WITH ORDINALITY AS e(m, ord)
)
WHERE CASE WHEN jsonb_typeof(p.contact_methods) = 'array'
           THEN jsonb_array_length(p.contact_methods) > 0 ELSE false END;
ALTER TABLE np_oncall.people FORCE ROW LEVEL SECURITY;
