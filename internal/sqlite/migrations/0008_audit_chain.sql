-- The audit chain (latchkey's auditchain.go): every account's events form
-- one chain ordered by seq, each event holding the hash of the one before.
-- Existing events are chained by the migration itself, in id order (see
-- sqlstore's backfillAuditChain, which also adds the unique index on
-- (account, seq) once every event has its seq).
ALTER TABLE audit_events ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_events ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN hash TEXT NOT NULL DEFAULT '';

-- The last link of each account's chain. An append locks this row, so
-- that writers on every replica take turns and no seq is given twice.
CREATE TABLE audit_chain_heads (
	account TEXT PRIMARY KEY,
	seq     INTEGER NOT NULL,
	hash    TEXT NOT NULL
);

-- Signed checkpoints: the server's Ed25519 key (kept in a file, never
-- here) signs an account's chain head now and then.
CREATE TABLE audit_checkpoints (
	account   TEXT NOT NULL,
	seq       INTEGER NOT NULL,
	hash      TEXT NOT NULL,
	time      INTEGER NOT NULL,
	key_id    TEXT NOT NULL,
	signature TEXT NOT NULL,
	PRIMARY KEY (account, seq)
);
