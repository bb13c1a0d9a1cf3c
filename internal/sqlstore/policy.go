package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// FindPolicy implements latchkey.Tx.
func (t *Tx) FindPolicy(ctx context.Context, account string) (*latchkey.AccountPolicy, error) {
	var (
		settings string
		updated  int64
	)
	err := t.queryRow(ctx, `SELECT settings, updated_at FROM key_policies WHERE account = ?`, account).Scan(&settings, &updated)
	if err != nil {
		return nil, notFound(t.d, err, latchkey.Errorf(latchkey.ENOTFOUND, "account %q has no policy of its own", account))
	}
	p := &latchkey.AccountPolicy{Account: account, UpdatedAt: fromMicros(updated)}
	if err := json.Unmarshal([]byte(settings), &p.Settings); err != nil {
		return nil, latchkey.Internal(err)
	}
	return p, nil
}

// PutPolicy implements latchkey.Tx.
func (t *Tx) PutPolicy(ctx context.Context, p *latchkey.AccountPolicy) error {
	if err := t.accountExists(ctx, p.Account); err != nil {
		return err
	}
	b, err := json.Marshal(p.Settings)
	if err != nil {
		return latchkey.Internal(err)
	}
	_, err = t.exec(ctx, `INSERT INTO key_policies (account, settings, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (account) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at`,
		p.Account, string(b), toMicros(p.UpdatedAt))
	return err
}

// ListPolicies implements latchkey.Tx.
func (t *Tx) ListPolicies(ctx context.Context) ([]*latchkey.AccountPolicy, error) {
	rows, err := t.query(ctx, `SELECT account, settings, updated_at FROM key_policies ORDER BY account`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*latchkey.AccountPolicy
	for rows.Next() {
		var (
			p        latchkey.AccountPolicy
			settings string
			updated  int64
		)
		if err := rows.Scan(&p.Account, &settings, &updated); err != nil {
			return nil, mapErr(t.d, err)
		}
		if err := json.Unmarshal([]byte(settings), &p.Settings); err != nil {
			return nil, latchkey.Internal(err)
		}
		p.UpdatedAt = fromMicros(updated)
		out = append(out, &p)
	}
	return out, mapErr(t.d, rows.Err())
}

// KeyStates implements latchkey.Tx.
func (t *Tx) KeyStates(ctx context.Context, ids []string) (map[string]*latchkey.KeyState, error) {
	out := map[string]*latchkey.KeyState{}
	// In chunks, to stay under every database's limit on parameters.
	for len(ids) > 0 {
		n := min(len(ids), 500)
		chunk := ids[:n]
		ids = ids[n:]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := t.query(ctx, `SELECT access_key_id, status_since, rotated_at, predecessor FROM key_states
			WHERE access_key_id IN (`+strings.TrimSuffix(strings.Repeat("?,", n), ",")+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var (
				s              latchkey.KeyState
				since, rotated sql.NullInt64
			)
			if err := rows.Scan(&s.AccessKeyID, &since, &rotated, &s.Predecessor); err != nil {
				rows.Close()
				return nil, mapErr(t.d, err)
			}
			s.StatusSince, s.RotatedAt = timePtr(since), timePtr(rotated)
			out[s.AccessKeyID] = &s
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, mapErr(t.d, err)
		}
	}
	return out, nil
}

// PutKeyState implements latchkey.Tx.
func (t *Tx) PutKeyState(ctx context.Context, s *latchkey.KeyState) error {
	_, err := t.exec(ctx, `INSERT INTO key_states (access_key_id, status_since, rotated_at, predecessor) VALUES (?, ?, ?, ?)
		ON CONFLICT (access_key_id) DO UPDATE SET status_since = excluded.status_since,
			rotated_at = excluded.rotated_at, predecessor = excluded.predecessor`,
		s.AccessKeyID, nullMicros(s.StatusSince), nullMicros(s.RotatedAt), s.Predecessor)
	return err
}

// DeleteKeyState implements latchkey.Tx.
func (t *Tx) DeleteKeyState(ctx context.Context, id string) error {
	_, err := t.exec(ctx, `DELETE FROM key_states WHERE access_key_id = ?`, id)
	return err
}

// InsertPolicyAction implements latchkey.Tx. ON CONFLICT DO NOTHING makes a
// concurrent insert of the same entry wait for the first and then add
// nothing, so exactly one transaction sees a row affected.
func (t *Tx) InsertPolicyAction(ctx context.Context, a *latchkey.PolicyAction) (bool, error) {
	return t.execOne(ctx, `INSERT INTO policy_actions (access_key_id, kind, due_at, account, act_at, state, created_at, done_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (access_key_id, kind, due_at) DO NOTHING`,
		a.AccessKeyID, a.Kind, toMicros(a.DueAt), a.Account, toMicros(a.ActAt), a.State, toMicros(a.CreatedAt), nullMicros(a.DoneAt))
}

// ClaimPolicyAction implements latchkey.Tx. The UPDATE's condition on the
// state is re-checked after a concurrent claim commits, so only one claim
// succeeds.
func (t *Tx) ClaimPolicyAction(ctx context.Context, id, kind string, due time.Time, state string, at time.Time) (bool, error) {
	return t.execOne(ctx, `UPDATE policy_actions SET state = ?, done_at = ?
		WHERE access_key_id = ? AND kind = ? AND due_at = ? AND state = ?`,
		state, toMicros(at), id, kind, toMicros(due), latchkey.PolicyActionScheduled)
}

// ListPolicyActions implements latchkey.Tx.
func (t *Tx) ListPolicyActions(ctx context.Context, f latchkey.PolicyActionFilter) ([]*latchkey.PolicyAction, error) {
	var (
		where []string
		args  []any
	)
	if f.AccessKeyID != "" {
		where, args = append(where, "access_key_id = ?"), append(args, f.AccessKeyID)
	}
	if f.State != "" {
		where, args = append(where, "state = ?"), append(args, f.State)
	}
	if f.ActBefore != nil {
		where, args = append(where, "act_at <= ?"), append(args, toMicros(*f.ActBefore))
	}
	q := `SELECT access_key_id, kind, due_at, account, act_at, state, created_at, done_at FROM policy_actions`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY act_at, access_key_id, kind LIMIT ?"
	args = append(args, pageSize(f.Limit))
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*latchkey.PolicyAction
	for rows.Next() {
		var (
			a                 latchkey.PolicyAction
			due, act, created int64
			done              sql.NullInt64
		)
		if err := rows.Scan(&a.AccessKeyID, &a.Kind, &due, &a.Account, &act, &a.State, &created, &done); err != nil {
			return nil, mapErr(t.d, err)
		}
		a.DueAt, a.ActAt, a.CreatedAt, a.DoneAt = fromMicros(due), fromMicros(act), fromMicros(created), timePtr(done)
		out = append(out, &a)
	}
	return out, mapErr(t.d, rows.Err())
}
