package sqlstore

import (
	"context"
	"time"
)

// ClaimAuditSink implements latchkey.Tx: the sink's row is made once, and
// the lease is taken by an update that only one transaction can win.
func (t *Tx) ClaimAuditSink(ctx context.Context, sink, holder string, now, until time.Time) (bool, error) {
	if _, err := t.exec(ctx, `INSERT INTO audit_sinks (sink, holder, lease_until) VALUES (?, '', 0) ON CONFLICT (sink) DO NOTHING`, sink); err != nil {
		return false, err
	}
	return t.execOne(ctx, `UPDATE audit_sinks SET holder = ?, lease_until = ? WHERE sink = ? AND (holder = ? OR lease_until <= ?)`,
		holder, toMicros(until), sink, holder, toMicros(now))
}

// ReleaseAuditSink implements latchkey.Tx.
func (t *Tx) ReleaseAuditSink(ctx context.Context, sink, holder string) error {
	_, err := t.exec(ctx, `UPDATE audit_sinks SET lease_until = 0 WHERE sink = ? AND holder = ?`, sink, holder)
	return err
}

// AuditSinkCursors implements latchkey.Tx.
func (t *Tx) AuditSinkCursors(ctx context.Context, sink string) (map[string]int64, error) {
	rows, err := t.query(ctx, `SELECT account, seq FROM audit_sink_cursors WHERE sink = ?`, sink)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var (
			acc string
			seq int64
		)
		if err := rows.Scan(&acc, &seq); err != nil {
			return nil, mapErr(t.d, err)
		}
		out[acc] = seq
	}
	return out, mapErr(t.d, rows.Err())
}

// AdvanceAuditSink implements latchkey.Tx.
func (t *Tx) AdvanceAuditSink(ctx context.Context, sink, account string, seq int64) error {
	_, err := t.exec(ctx, `INSERT INTO audit_sink_cursors (sink, account, seq) VALUES (?, ?, ?)
		ON CONFLICT (sink, account) DO UPDATE SET seq = excluded.seq WHERE audit_sink_cursors.seq < excluded.seq`,
		sink, account, seq)
	return err
}
