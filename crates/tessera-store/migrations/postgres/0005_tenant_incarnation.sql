-- A tenant id can be deleted and created again. Each creation is a new
-- incarnation with its own random id, so that nothing keyed by the tenant id
-- alone (a cached data key, a cached API key) can mix the two: data keys are
-- cached by (tenant, incarnation, version), and new data keys are wrapped
-- with the incarnation in their associated data.
ALTER TABLE tenants ADD COLUMN incarnation TEXT NOT NULL DEFAULT '';
UPDATE tenants SET incarnation = md5(random()::text || clock_timestamp()::text || id);
