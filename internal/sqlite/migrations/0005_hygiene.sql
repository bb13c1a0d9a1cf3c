-- Hygiene: per-account policies, what the policy knows of each key, the
-- policy ledger that makes notices and automatic actions happen once, and
-- webhooks with their outbox. Times are Unix microseconds (UTC).
CREATE TABLE key_policies (
	account    TEXT PRIMARY KEY REFERENCES accounts (name),
	settings   TEXT NOT NULL, -- JSON: latchkey.PolicySettings
	updated_at INTEGER NOT NULL
);

CREATE TABLE key_states (
	access_key_id TEXT PRIMARY KEY,
	status_since  INTEGER,
	rotated_at    INTEGER,
	predecessor   TEXT NOT NULL DEFAULT ''
);

-- One row per notice or automatic action, keyed by key, kind and due time:
-- inserting the row is the claim, so replicas and restarts never repeat it.
CREATE TABLE policy_actions (
	access_key_id TEXT NOT NULL,
	kind          TEXT NOT NULL,
	due_at        INTEGER NOT NULL,
	account       TEXT NOT NULL,
	act_at        INTEGER NOT NULL,
	state         TEXT NOT NULL,
	created_at    INTEGER NOT NULL,
	done_at       INTEGER,
	PRIMARY KEY (access_key_id, kind, due_at)
);
CREATE INDEX policy_actions_state ON policy_actions (state, act_at);

-- The signing secret is kept (every delivery is signed with it) but never
-- returned by the API after creation, nor logged.
CREATE TABLE webhooks (
	id          TEXT PRIMARY KEY,
	account     TEXT NOT NULL REFERENCES accounts (name),
	url         TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	events      TEXT NOT NULL DEFAULT '', -- space-separated; '' = every event
	enabled     INTEGER NOT NULL DEFAULT 1,
	secret      TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);
CREATE INDEX webhooks_account ON webhooks (account, created_at);

-- The outbox: events are written in the transaction of the change they
-- report, with one delivery per subscribed webhook.
CREATE TABLE webhook_events (
	id         TEXT PRIMARY KEY,
	account    TEXT NOT NULL,
	type       TEXT NOT NULL,
	body       TEXT NOT NULL,
	created_at INTEGER NOT NULL
);

CREATE TABLE webhook_deliveries (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	event_id        TEXT NOT NULL REFERENCES webhook_events (id),
	status          TEXT NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER,
	last_attempt_at INTEGER,
	response_code   INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
