-- Times are Unix microseconds (UTC). Secrets are never stored: only the
-- SHA-256 digest of each secret access key.
CREATE TABLE accounts (
	name       TEXT PRIMARY KEY,
	created_at INTEGER NOT NULL
);

CREATE TABLE applications (
	account     TEXT NOT NULL REFERENCES accounts (name),
	name        TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	PRIMARY KEY (account, name)
);

CREATE TABLE principals (
	account    TEXT NOT NULL REFERENCES accounts (name),
	name       TEXT NOT NULL,
	role       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (account, name)
);

CREATE TABLE access_keys (
	id                   TEXT PRIMARY KEY,
	account              TEXT NOT NULL REFERENCES accounts (name),
	application          TEXT,
	principal            TEXT,
	secret_digest        BLOB NOT NULL UNIQUE,
	description          TEXT NOT NULL DEFAULT '',
	status               TEXT NOT NULL,
	created_at           INTEGER NOT NULL,
	updated_at           INTEGER NOT NULL,
	expires_at           INTEGER,
	last_used_at         INTEGER,
	last_used_ip         TEXT NOT NULL DEFAULT '',
	last_used_ua         TEXT NOT NULL DEFAULT '',
	last_rejected_at     INTEGER,
	last_rejected_ip     TEXT NOT NULL DEFAULT '',
	last_rejected_ua     TEXT NOT NULL DEFAULT '',
	last_rejected_reason TEXT NOT NULL DEFAULT '',
	use_count            INTEGER NOT NULL DEFAULT 0,
	reject_count         INTEGER NOT NULL DEFAULT 0,
	exposed_at           INTEGER,
	exposed_where        TEXT NOT NULL DEFAULT '',
	FOREIGN KEY (account, application) REFERENCES applications (account, name),
	FOREIGN KEY (account, principal) REFERENCES principals (account, name) ON DELETE CASCADE,
	CHECK ((application IS NULL) <> (principal IS NULL))
);
CREATE INDEX access_keys_application ON access_keys (account, application);
CREATE INDEX access_keys_principal ON access_keys (account, principal);
CREATE INDEX access_keys_created ON access_keys (created_at, id);

CREATE TABLE audit_events (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	time         INTEGER NOT NULL,
	account      TEXT NOT NULL,
	actor        TEXT NOT NULL,
	actor_key_id TEXT NOT NULL DEFAULT '',
	source_ip    TEXT NOT NULL DEFAULT '',
	user_agent   TEXT NOT NULL DEFAULT '',
	action       TEXT NOT NULL,
	target_type  TEXT NOT NULL,
	target       TEXT NOT NULL,
	application  TEXT NOT NULL DEFAULT '',
	before       TEXT,
	after        TEXT
);
CREATE INDEX audit_events_account ON audit_events (account, id);
CREATE INDEX audit_events_target ON audit_events (target, id);
