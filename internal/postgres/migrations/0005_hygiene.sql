-- Hygiene: policies, key states, the policy ledger, webhooks and their
-- outbox. Same as internal/sqlite/migrations/0005_hygiene.sql, in
-- PostgreSQL's types.
CREATE TABLE key_policies (
	account    TEXT COLLATE "C" PRIMARY KEY REFERENCES accounts (name),
	settings   TEXT NOT NULL,
	updated_at BIGINT NOT NULL
);

CREATE TABLE key_states (
	access_key_id TEXT COLLATE "C" PRIMARY KEY,
	status_since  BIGINT,
	rotated_at    BIGINT,
	predecessor   TEXT COLLATE "C" NOT NULL DEFAULT ''
);

-- Inserting a row is the claim (INSERT ... ON CONFLICT DO NOTHING), and
-- applying it moves its state in the transaction of the action itself.
CREATE TABLE policy_actions (
	access_key_id TEXT COLLATE "C" NOT NULL,
	kind          TEXT COLLATE "C" NOT NULL,
	due_at        BIGINT NOT NULL,
	account       TEXT COLLATE "C" NOT NULL,
	act_at        BIGINT NOT NULL,
	state         TEXT NOT NULL,
	created_at    BIGINT NOT NULL,
	done_at       BIGINT,
	PRIMARY KEY (access_key_id, kind, due_at)
);
CREATE INDEX policy_actions_state ON policy_actions (state, act_at);

CREATE TABLE webhooks (
	id          TEXT COLLATE "C" PRIMARY KEY,
	account     TEXT COLLATE "C" NOT NULL REFERENCES accounts (name),
	url         TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	events      TEXT NOT NULL DEFAULT '',
	enabled     INTEGER NOT NULL DEFAULT 1,
	secret      TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);
CREATE INDEX webhooks_account ON webhooks (account, created_at);

CREATE TABLE webhook_events (
	id         TEXT COLLATE "C" PRIMARY KEY,
	account    TEXT COLLATE "C" NOT NULL,
	type       TEXT NOT NULL,
	body       TEXT NOT NULL,
	created_at BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
	id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	webhook_id      TEXT COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	event_id        TEXT COLLATE "C" NOT NULL REFERENCES webhook_events (id),
	status          TEXT NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at BIGINT,
	last_attempt_at BIGINT,
	response_code   INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL DEFAULT '',
	created_at      BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
