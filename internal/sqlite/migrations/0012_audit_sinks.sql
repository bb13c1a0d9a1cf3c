-- Audit streaming (latchkey's auditstream.go): the audit log is the
-- outbox; each sink has a lease, held by the one replica that streams to
-- it, and a cursor per account over the audit chain's seq.
CREATE TABLE audit_sinks (
	sink        TEXT PRIMARY KEY,
	holder      TEXT NOT NULL DEFAULT '',
	lease_until INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE audit_sink_cursors (
	sink    TEXT NOT NULL,
	account TEXT NOT NULL,
	seq     INTEGER NOT NULL,
	PRIMARY KEY (sink, account)
);
