-- Audit streaming (latchkey's auditstream.go): the audit log is the
-- outbox; each sink has a lease, held by the one replica that streams to
-- it, and a cursor per account over the audit chain's seq. Same as
-- internal/sqlite/migrations/0012_audit_sinks.sql, in PostgreSQL's types.
CREATE TABLE audit_sinks (
	sink        TEXT COLLATE "C" PRIMARY KEY,
	holder      TEXT NOT NULL DEFAULT '',
	lease_until BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE audit_sink_cursors (
	sink    TEXT COLLATE "C" NOT NULL,
	account TEXT COLLATE "C" NOT NULL,
	seq     BIGINT NOT NULL,
	PRIMARY KEY (sink, account)
);
