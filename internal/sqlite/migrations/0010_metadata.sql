-- A key's external ID (the API provider's name for its customer) and
-- metadata (a small JSON object validated by the domain); NULL for none.
ALTER TABLE access_keys ADD COLUMN external_id TEXT;
ALTER TABLE access_keys ADD COLUMN metadata TEXT;
CREATE INDEX access_keys_external_id ON access_keys (account, external_id) WHERE external_id IS NOT NULL;
