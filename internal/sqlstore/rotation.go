package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// CreateRotation implements latchkey.Tx.
func (t *Tx) CreateRotation(ctx context.Context, r *latchkey.Rotation) error {
	_, err := t.exec(ctx, `INSERT INTO rotations (old_access_key_id, new_access_key_id, account, application, created_by,
		created_at, quiet_period, expires_at, hard_limit_at, state, stalled_at, done_at, outcome)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.OldKeyID, r.NewKeyID, r.Account, r.Application, r.CreatedBy, toMicros(r.CreatedAt),
		int64(r.QuietPeriod.D()/time.Second), nullMicros(r.ExpiresAt), nullMicros(r.HardLimitAt),
		r.State, nullMicros(r.StalledAt), nullMicros(r.DoneAt), r.Outcome)
	if latchkey.ErrorCode(err) == latchkey.EEXISTS {
		return latchkey.Errorf(latchkey.EEXISTS, "access key %s is already being rolled", r.OldKeyID)
	}
	return err
}

// UpdateRotation implements latchkey.Tx. Like ClaimPolicyAction, the
// condition on the state is re-checked after a concurrent update commits,
// so only one of two replicas moves a roll on.
func (t *Tx) UpdateRotation(ctx context.Context, r *latchkey.Rotation, from string) (bool, error) {
	return t.execOne(ctx, `UPDATE rotations SET state = ?, stalled_at = ?, done_at = ?, outcome = ?
		WHERE old_access_key_id = ? AND state = ?`,
		r.State, nullMicros(r.StalledAt), nullMicros(r.DoneAt), r.Outcome, r.OldKeyID, from)
}

// ListRotations implements latchkey.Tx.
func (t *Tx) ListRotations(ctx context.Context, f latchkey.RotationFilter) ([]*latchkey.Rotation, error) {
	var (
		where []string
		args  []any
	)
	if f.Account != "" {
		where, args = append(where, "account = ?"), append(args, f.Account)
	}
	if f.KeyID != "" {
		where, args = append(where, "(old_access_key_id = ? OR new_access_key_id = ?)"), append(args, f.KeyID, f.KeyID)
	}
	if f.Open {
		where, args = append(where, "state <> ?"), append(args, latchkey.RotationDone)
	}
	q := `SELECT old_access_key_id, new_access_key_id, account, application, created_by, created_at, quiet_period,
		expires_at, hard_limit_at, state, stalled_at, done_at, outcome FROM rotations`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.NewestFirst {
		q += " ORDER BY created_at DESC, old_access_key_id DESC LIMIT ?"
	} else {
		q += " ORDER BY created_at, old_access_key_id LIMIT ?"
	}
	args = append(args, pageSize(f.Limit))
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*latchkey.Rotation
	for rows.Next() {
		var (
			r                          latchkey.Rotation
			created, quiet             int64
			expires, hard, stall, done sql.NullInt64
		)
		if err := rows.Scan(&r.OldKeyID, &r.NewKeyID, &r.Account, &r.Application, &r.CreatedBy, &created, &quiet,
			&expires, &hard, &r.State, &stall, &done, &r.Outcome); err != nil {
			return nil, mapErr(t.d, err)
		}
		r.CreatedAt, r.QuietPeriod = fromMicros(created), latchkey.Duration(time.Duration(quiet)*time.Second)
		r.ExpiresAt, r.HardLimitAt, r.StalledAt, r.DoneAt = timePtr(expires), timePtr(hard), timePtr(stall), timePtr(done)
		out = append(out, &r)
	}
	return out, mapErr(t.d, rows.Err())
}
