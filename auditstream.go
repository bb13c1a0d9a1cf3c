package latchkey

import (
	"context"
	"time"
)

// Audit streaming sends every audit event, as it commits, to the sinks a
// server is configured with (JSON lines on standard output or in a file,
// syslog over TLS). The audit log itself is the outbox: an event is
// written in the transaction of the change it records, and each sink has a
// cursor per account over the chain's seq, moved forward only once the
// sink has taken the events up to it. A crash between the two sends those
// events again (delivery is at least once, never less); a sink that is
// down only lets its backlog grow.
//
// The chain's seq has no gap and is given under a lock on the account's
// chain head, so the event with seq n commits before the one with n+1 on
// every replica: a reader that sees seq n+1 sees every event before it,
// and a cursor over seq never passes an event still to commit.
//
// One replica at a time streams to a sink: the one holding its lease.

// AuditStreamTx is the part of Tx that keeps the sinks' leases and
// cursors.
type AuditStreamTx interface {
	// ClaimAuditSink takes or renews holder's lease on sink until
	// until. It reports whether holder holds the lease: it does when
	// nobody held it, when the lease ended at or before now, or when
	// holder held it already.
	ClaimAuditSink(ctx context.Context, sink, holder string, now, until time.Time) (bool, error)
	// ReleaseAuditSink ends holder's lease on sink, so that another
	// replica (or this one restarted) takes it without waiting. A lease
	// holder does not hold is left alone.
	ReleaseAuditSink(ctx context.Context, sink, holder string) error
	// AuditSinkCursors returns, by account, the seq up to which every
	// event reached sink. An account missing from it has had none sent.
	AuditSinkCursors(ctx context.Context, sink string) (map[string]int64, error)
	// AdvanceAuditSink records that every event of account up to seq
	// reached sink. A cursor never moves back: a lower seq is ignored.
	AdvanceAuditSink(ctx context.Context, sink, account string, seq int64) error
}

// AuditStreamRecord is one record of an audit stream, and one line of an
// audit export (latchkey audit export): {"audit_event": {...}} with the
// event's chain fields, so that a copy kept by a sink verifies offline
// with latchkey audit verify --file.
type AuditStreamRecord struct {
	Event *AuditEvent `json:"audit_event"`
}
