-- Identities: customers of the API provider that group applications (and
-- so their keys) under one rate limit and one quota (owner_kind
-- 'identity' in quotas). An application belongs to at most one identity.
-- Times are Unix microseconds (UTC). Applications also carry metadata.
CREATE TABLE identities (
	id          TEXT PRIMARY KEY,
	account     TEXT NOT NULL REFERENCES accounts (name),
	name        TEXT NOT NULL,
	external_id TEXT,
	metadata    TEXT,
	rate_limit  TEXT,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX identities_name ON identities (account, name);
CREATE UNIQUE INDEX identities_external_id ON identities (account, external_id) WHERE external_id IS NOT NULL;

ALTER TABLE applications ADD COLUMN identity_id TEXT REFERENCES identities (id);
ALTER TABLE applications ADD COLUMN metadata TEXT;
CREATE INDEX applications_identity ON applications (identity_id) WHERE identity_id IS NOT NULL;
