-- A key's external ID and metadata. Same as
-- internal/sqlite/migrations/0010_metadata.sql, in PostgreSQL's types.
ALTER TABLE access_keys ADD COLUMN external_id TEXT COLLATE "C";
ALTER TABLE access_keys ADD COLUMN metadata TEXT;
CREATE INDEX access_keys_external_id ON access_keys (account, external_id) WHERE external_id IS NOT NULL;

-- Both are part of a key's index entry (every verification returns them):
-- notify on their changes too.
DROP TRIGGER access_keys_notify_update ON access_keys;
CREATE TRIGGER access_keys_notify_update
	AFTER UPDATE ON access_keys
	FOR EACH ROW
	WHEN (OLD.id IS DISTINCT FROM NEW.id
		OR OLD.account IS DISTINCT FROM NEW.account
		OR OLD.application IS DISTINCT FROM NEW.application
		OR OLD.principal IS DISTINCT FROM NEW.principal
		OR OLD.secret_digest IS DISTINCT FROM NEW.secret_digest
		OR OLD.status IS DISTINCT FROM NEW.status
		OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
		OR OLD.restrictions IS DISTINCT FROM NEW.restrictions
		OR OLD.report_only IS DISTINCT FROM NEW.report_only
		OR OLD.external_id IS DISTINCT FROM NEW.external_id
		OR OLD.metadata IS DISTINCT FROM NEW.metadata)
	EXECUTE FUNCTION latchkey_notify_key();
