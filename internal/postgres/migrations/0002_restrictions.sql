-- Restrictions (JSON documents validated by the domain) on applications and
-- keys, report-only restrictions on keys, and what those would have denied.
-- Same as internal/sqlite/migrations/0002_restrictions.sql.
ALTER TABLE applications ADD COLUMN restrictions TEXT;
ALTER TABLE access_keys ADD COLUMN restrictions TEXT;
ALTER TABLE access_keys ADD COLUMN report_only TEXT;
ALTER TABLE access_keys ADD COLUMN last_would_deny_at BIGINT;
ALTER TABLE access_keys ADD COLUMN last_would_deny_ip TEXT NOT NULL DEFAULT '';
ALTER TABLE access_keys ADD COLUMN last_would_deny_ua TEXT NOT NULL DEFAULT '';
ALTER TABLE access_keys ADD COLUMN last_would_deny_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE access_keys ADD COLUMN would_deny_count BIGINT NOT NULL DEFAULT 0;

-- Restrictions are part of a key's index entry: notify on their changes too.
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
		OR OLD.report_only IS DISTINCT FROM NEW.report_only)
	EXECUTE FUNCTION latchkey_notify_key();

-- An application's restrictions are part of each of its keys' entries.
CREATE FUNCTION latchkey_notify_application_keys() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	key_id TEXT;
BEGIN
	FOR key_id IN SELECT id FROM access_keys WHERE account = NEW.account AND application = NEW.name LOOP
		PERFORM pg_notify('latchkey_keys', key_id);
	END LOOP;
	RETURN NULL;
END
$$;

CREATE TRIGGER applications_notify_restrictions
	AFTER UPDATE ON applications
	FOR EACH ROW
	WHEN (OLD.restrictions IS DISTINCT FROM NEW.restrictions)
	EXECUTE FUNCTION latchkey_notify_application_keys();
