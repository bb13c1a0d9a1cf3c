-- Quotas and their ledgers. Same as internal/sqlite/migrations/0013_quotas.sql,
-- in PostgreSQL's types.
CREATE TABLE quotas (
	owner_kind            TEXT COLLATE "C" NOT NULL,
	owner_id              TEXT COLLATE "C" NOT NULL,
	account               TEXT COLLATE "C" NOT NULL,
	generation            BIGINT NOT NULL,
	budget                BIGINT NOT NULL,
	used                  BIGINT NOT NULL,
	period                BIGINT NOT NULL,
	refill_amount         BIGINT,
	refill_interval       TEXT,
	anchor                BIGINT NOT NULL,
	low_threshold         BIGINT NOT NULL DEFAULT 0,
	low_sent_period       BIGINT,
	exhausted_sent_period BIGINT,
	updated_at            BIGINT NOT NULL,
	PRIMARY KEY (owner_kind, owner_id)
);

CREATE TABLE quota_changes (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	owner_kind TEXT COLLATE "C" NOT NULL,
	owner_id   TEXT COLLATE "C" NOT NULL,
	at         BIGINT NOT NULL,
	kind       TEXT NOT NULL,
	amount     BIGINT NOT NULL,
	remaining  BIGINT NOT NULL,
	actor      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX quota_changes_owner ON quota_changes (owner_kind, owner_id, id);

-- A key's quota is part of its index entry: a new, removed or changed
-- quota (a new generation) reloads the key on every replica. Leases
-- (used) change nothing indexed and send nothing.
CREATE FUNCTION latchkey_notify_quota() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP <> 'INSERT' AND OLD.owner_kind = 'access_key' THEN
		PERFORM pg_notify('latchkey_keys', OLD.owner_id);
	END IF;
	IF TG_OP = 'INSERT' AND NEW.owner_kind = 'access_key' THEN
		PERFORM pg_notify('latchkey_keys', NEW.owner_id);
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER quotas_notify_insert_delete
	AFTER INSERT OR DELETE ON quotas
	FOR EACH ROW EXECUTE FUNCTION latchkey_notify_quota();

CREATE TRIGGER quotas_notify_update
	AFTER UPDATE ON quotas
	FOR EACH ROW
	WHEN (OLD.generation IS DISTINCT FROM NEW.generation)
	EXECUTE FUNCTION latchkey_notify_quota();
