-- Identities and application metadata. Same as
-- internal/sqlite/migrations/0017_identities.sql, in PostgreSQL's types.
CREATE TABLE identities (
	id          TEXT COLLATE "C" PRIMARY KEY,
	account     TEXT COLLATE "C" NOT NULL REFERENCES accounts (name),
	name        TEXT COLLATE "C" NOT NULL,
	external_id TEXT COLLATE "C",
	metadata    TEXT,
	rate_limit  TEXT,
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX identities_name ON identities (account, name);
CREATE UNIQUE INDEX identities_external_id ON identities (account, external_id) WHERE external_id IS NOT NULL;

ALTER TABLE applications ADD COLUMN identity_id TEXT COLLATE "C" REFERENCES identities (id);
ALTER TABLE applications ADD COLUMN metadata TEXT;
CREATE INDEX applications_identity ON applications (identity_id) WHERE identity_id IS NOT NULL;

-- An application's identity and metadata are part of each of its keys'
-- index entries.
CREATE TRIGGER applications_notify_identity
	AFTER UPDATE ON applications
	FOR EACH ROW
	WHEN (OLD.identity_id IS DISTINCT FROM NEW.identity_id OR OLD.metadata IS DISTINCT FROM NEW.metadata)
	EXECUTE FUNCTION latchkey_notify_application_keys();

-- So are the identity's external ID, metadata and rate limit.
CREATE FUNCTION latchkey_notify_identity_keys(identity TEXT) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	key_id TEXT;
BEGIN
	FOR key_id IN SELECT k.id FROM access_keys k JOIN applications a ON a.account = k.account AND a.name = k.application
			WHERE a.identity_id = identity LOOP
		PERFORM pg_notify('latchkey_keys', key_id);
	END LOOP;
END
$$;

CREATE FUNCTION latchkey_notify_identity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM latchkey_notify_identity_keys(NEW.id);
	RETURN NULL;
END
$$;

CREATE TRIGGER identities_notify_update
	AFTER UPDATE ON identities
	FOR EACH ROW
	WHEN (OLD.external_id IS DISTINCT FROM NEW.external_id OR OLD.metadata IS DISTINCT FROM NEW.metadata
		OR OLD.rate_limit IS DISTINCT FROM NEW.rate_limit)
	EXECUTE FUNCTION latchkey_notify_identity();

-- An identity's quota (a new, removed or changed one: a new generation)
-- reloads every key of the identity, as a key's own quota reloads the key.
CREATE OR REPLACE FUNCTION latchkey_notify_quota() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP <> 'INSERT' AND OLD.owner_kind = 'access_key' THEN
		PERFORM pg_notify('latchkey_keys', OLD.owner_id);
	END IF;
	IF TG_OP = 'INSERT' AND NEW.owner_kind = 'access_key' THEN
		PERFORM pg_notify('latchkey_keys', NEW.owner_id);
	END IF;
	IF TG_OP <> 'INSERT' AND OLD.owner_kind = 'identity' THEN
		PERFORM latchkey_notify_identity_keys(OLD.owner_id);
	END IF;
	IF TG_OP = 'INSERT' AND NEW.owner_kind = 'identity' THEN
		PERFORM latchkey_notify_identity_keys(NEW.owner_id);
	END IF;
	RETURN NULL;
END
$$;
