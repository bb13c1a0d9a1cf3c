-- The same schema as internal/sqlite/migrations/0001_init.sql, in
-- PostgreSQL's types. Times are Unix microseconds (UTC) in BIGINT; secrets
-- are never stored, only the SHA-256 digest of each secret access key.
--
-- Names and IDs use the "C" collation: they are ASCII from a fixed
-- alphabet, and bytewise order keeps list order and page tokens the same
-- as SQLite's whatever the database's default collation is.
CREATE TABLE accounts (
	name       TEXT COLLATE "C" PRIMARY KEY,
	created_at BIGINT NOT NULL
);

CREATE TABLE applications (
	account     TEXT COLLATE "C" NOT NULL REFERENCES accounts (name),
	name        TEXT COLLATE "C" NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	created_at  BIGINT NOT NULL,
	PRIMARY KEY (account, name)
);

CREATE TABLE principals (
	account    TEXT COLLATE "C" NOT NULL REFERENCES accounts (name),
	name       TEXT COLLATE "C" NOT NULL,
	role       TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (account, name)
);

CREATE TABLE access_keys (
	id                   TEXT COLLATE "C" PRIMARY KEY,
	account              TEXT COLLATE "C" NOT NULL REFERENCES accounts (name),
	application          TEXT COLLATE "C",
	principal            TEXT COLLATE "C",
	secret_digest        BYTEA NOT NULL UNIQUE,
	description          TEXT NOT NULL DEFAULT '',
	status               TEXT NOT NULL,
	created_at           BIGINT NOT NULL,
	updated_at           BIGINT NOT NULL,
	expires_at           BIGINT,
	last_used_at         BIGINT,
	last_used_ip         TEXT NOT NULL DEFAULT '',
	last_used_ua         TEXT NOT NULL DEFAULT '',
	last_rejected_at     BIGINT,
	last_rejected_ip     TEXT NOT NULL DEFAULT '',
	last_rejected_ua     TEXT NOT NULL DEFAULT '',
	last_rejected_reason TEXT NOT NULL DEFAULT '',
	use_count            BIGINT NOT NULL DEFAULT 0,
	reject_count         BIGINT NOT NULL DEFAULT 0,
	exposed_at           BIGINT,
	exposed_where        TEXT NOT NULL DEFAULT '',
	FOREIGN KEY (account, application) REFERENCES applications (account, name),
	FOREIGN KEY (account, principal) REFERENCES principals (account, name) ON DELETE CASCADE,
	CHECK ((application IS NULL) <> (principal IS NULL))
);
CREATE INDEX access_keys_application ON access_keys (account, application);
CREATE INDEX access_keys_principal ON access_keys (account, principal);
CREATE INDEX access_keys_created ON access_keys (created_at, id);

CREATE TABLE audit_events (
	id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	time         BIGINT NOT NULL,
	account      TEXT COLLATE "C" NOT NULL,
	actor        TEXT NOT NULL,
	actor_key_id TEXT NOT NULL DEFAULT '',
	source_ip    TEXT NOT NULL DEFAULT '',
	user_agent   TEXT NOT NULL DEFAULT '',
	action       TEXT NOT NULL,
	target_type  TEXT NOT NULL,
	target       TEXT NOT NULL,
	application  TEXT NOT NULL DEFAULT '',
	-- TEXT, not JSONB: the audit keeps the JSON exactly as it was written.
	before       TEXT,
	after        TEXT
);
CREATE INDEX audit_events_account ON audit_events (account, id);
CREATE INDEX audit_events_target ON audit_events (target, id);

-- The change feed. Every replica keeps an in-memory index of the keys and
-- LISTENs on latchkey_keys; these triggers send the ID of every key whose
-- indexed state changes, from whichever replica (or psql session) made the
-- change. Notifications are sent at commit, so a listener that re-reads the
-- key sees the change. Usage counters and times (RecordUsage, about once a
-- second per used key) are not indexed and send nothing.
CREATE FUNCTION latchkey_notify_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP <> 'INSERT' THEN
		PERFORM pg_notify('latchkey_keys', OLD.id);
	END IF;
	IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.id <> OLD.id) THEN
		PERFORM pg_notify('latchkey_keys', NEW.id);
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER access_keys_notify_insert_delete
	AFTER INSERT OR DELETE ON access_keys
	FOR EACH ROW EXECUTE FUNCTION latchkey_notify_key();

CREATE TRIGGER access_keys_notify_update
	AFTER UPDATE ON access_keys
	FOR EACH ROW
	WHEN (OLD.id IS DISTINCT FROM NEW.id
		OR OLD.account IS DISTINCT FROM NEW.account
		OR OLD.application IS DISTINCT FROM NEW.application
		OR OLD.principal IS DISTINCT FROM NEW.principal
		OR OLD.secret_digest IS DISTINCT FROM NEW.secret_digest
		OR OLD.status IS DISTINCT FROM NEW.status
		OR OLD.expires_at IS DISTINCT FROM NEW.expires_at)
	EXECUTE FUNCTION latchkey_notify_key();

-- A principal's role is part of its keys' index entries.
CREATE FUNCTION latchkey_notify_principal_keys() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	key_id TEXT;
BEGIN
	FOR key_id IN SELECT id FROM access_keys WHERE account = NEW.account AND principal = NEW.name LOOP
		PERFORM pg_notify('latchkey_keys', key_id);
	END LOOP;
	RETURN NULL;
END
$$;

CREATE TRIGGER principals_notify_role
	AFTER UPDATE ON principals
	FOR EACH ROW
	WHEN (OLD.role IS DISTINCT FROM NEW.role)
	EXECUTE FUNCTION latchkey_notify_principal_keys();
