-- Quotas (credits with an optional refill) and their ledgers, one per
-- owner: an access key today (owner_kind 'access_key'), an identity
-- later. Times are Unix microseconds (UTC).
--
-- The ledger is budget (what the current period started with, or was set
-- or topped up to) and used (what replicas have leased from it); period
-- is the number of the refill period they belong to (latchkey.Interval).
-- generation changes with every administrative change, and replicas drop
-- what they hold leased from an older one.
CREATE TABLE quotas (
	owner_kind            TEXT NOT NULL,
	owner_id              TEXT NOT NULL,
	account               TEXT NOT NULL,
	generation            INTEGER NOT NULL,
	budget                INTEGER NOT NULL,
	used                  INTEGER NOT NULL,
	period                INTEGER NOT NULL,
	refill_amount         INTEGER,
	refill_interval       TEXT,
	anchor                INTEGER NOT NULL,
	low_threshold         INTEGER NOT NULL DEFAULT 0,
	low_sent_period       INTEGER,
	exhausted_sent_period INTEGER,
	updated_at            INTEGER NOT NULL,
	PRIMARY KEY (owner_kind, owner_id)
);

-- A quota's history: administrative changes, refills, exhaustion.
CREATE TABLE quota_changes (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	owner_kind TEXT NOT NULL,
	owner_id   TEXT NOT NULL,
	at         INTEGER NOT NULL,
	kind       TEXT NOT NULL,
	amount     INTEGER NOT NULL,
	remaining  INTEGER NOT NULL,
	actor      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX quota_changes_owner ON quota_changes (owner_kind, owner_id, id);
