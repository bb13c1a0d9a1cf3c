package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"github.com/latchkey/latchkey"
)

// AppendAudit implements latchkey.Tx. It links the event to its account's
// chain: it locks the account's chain head (creating it for a first
// event), so that concurrent appends to one account take turns on every
// replica, and sets the event's Seq, PrevHash and Hash.
func (t *Tx) AppendAudit(ctx context.Context, e *latchkey.AuditEvent) error {
	head, err := t.lockChainHead(ctx, e.Account)
	if err != nil {
		return err
	}
	e.Seq, e.PrevHash = head.Seq+1, head.Hash
	e.Hash = latchkey.AuditEventHash(e, e.Seq)
	row := t.queryRow(ctx, `INSERT INTO audit_events
		(time, account, actor, actor_key_id, source_ip, user_agent, action, target_type, target, application, before, after,
		seq, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		toMicros(e.Time), e.Account, e.Actor, e.ActorKeyID, e.SourceIP, e.UserAgent, e.Action, e.TargetType, e.Target,
		e.Application, nullJSON(e.Before), nullJSON(e.After), e.Seq, e.PrevHash, e.Hash)
	if err := row.Scan(&e.ID); err != nil {
		return mapErr(t.d, err)
	}
	_, err = t.exec(ctx, `UPDATE audit_chain_heads SET seq = ?, hash = ? WHERE account = ?`, e.Seq, e.Hash, e.Account)
	return err
}

// lockChainHead returns the account's chain head, locked until the
// transaction ends; a new account's head (seq 0) is created first. Two
// transactions creating the same head both end up waiting on one row.
func (t *Tx) lockChainHead(ctx context.Context, account string) (*latchkey.AuditChainHead, error) {
	h := &latchkey.AuditChainHead{Account: account}
	sel := `SELECT seq, hash FROM audit_chain_heads WHERE account = ? ` + t.d.ForUpdate
	err := t.queryRow(ctx, sel, account).Scan(&h.Seq, &h.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := t.exec(ctx, `INSERT INTO audit_chain_heads (account, seq, hash) VALUES (?, 0, '') ON CONFLICT (account) DO NOTHING`, account); err != nil {
			return nil, err
		}
		err = t.queryRow(ctx, sel, account).Scan(&h.Seq, &h.Hash)
	}
	if err != nil {
		return nil, mapErr(t.d, err)
	}
	return h, nil
}

// ListAuditChain implements latchkey.Tx.
func (t *Tx) ListAuditChain(ctx context.Context, account string, afterSeq int64, limit int) ([]*latchkey.AuditEvent, error) {
	rows, err := t.query(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE account = ? AND seq > ? ORDER BY seq, id LIMIT ?`,
		account, afterSeq, pageSize(limit))
	if err != nil {
		return nil, err
	}
	return t.scanAudit(rows)
}

// AuditChainHeads implements latchkey.Tx.
func (t *Tx) AuditChainHeads(ctx context.Context, account string) ([]*latchkey.AuditChainHead, error) {
	query, args := `SELECT account, seq, hash FROM audit_chain_heads`, []any{}
	if account != "" {
		query, args = query+` WHERE account = ?`, append(args, account)
	}
	rows, err := t.query(ctx, query+` ORDER BY account`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*latchkey.AuditChainHead{}
	for rows.Next() {
		var h latchkey.AuditChainHead
		if err := rows.Scan(&h.Account, &h.Seq, &h.Hash); err != nil {
			return nil, mapErr(t.d, err)
		}
		out = append(out, &h)
	}
	return out, mapErr(t.d, rows.Err())
}

// AddAuditCheckpoint implements latchkey.Tx.
func (t *Tx) AddAuditCheckpoint(ctx context.Context, c *latchkey.AuditCheckpoint) error {
	_, err := t.exec(ctx, `INSERT INTO audit_checkpoints (account, seq, hash, time, key_id, signature)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account, seq) DO NOTHING`,
		c.Account, c.Seq, c.Hash, toMicros(c.Time), c.KeyID, c.Signature)
	return err
}

// ListAuditCheckpoints implements latchkey.Tx.
func (t *Tx) ListAuditCheckpoints(ctx context.Context, account string, afterSeq int64, limit int) ([]*latchkey.AuditCheckpoint, error) {
	rows, err := t.query(ctx, `SELECT account, seq, hash, time, key_id, signature FROM audit_checkpoints
		WHERE account = ? AND seq > ? ORDER BY seq LIMIT ?`, account, afterSeq, pageSize(limit))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*latchkey.AuditCheckpoint{}
	for rows.Next() {
		var c latchkey.AuditCheckpoint
		var ts int64
		if err := rows.Scan(&c.Account, &c.Seq, &c.Hash, &ts, &c.KeyID, &c.Signature); err != nil {
			return nil, mapErr(t.d, err)
		}
		c.Time = fromMicros(ts)
		out = append(out, &c)
	}
	return out, mapErr(t.d, rows.Err())
}

// backfillAuditChain chains the events written before migration 8, per
// account in id order (the order they were written in), and then makes
// (account, seq) unique. The chain of a database that had events starts
// at its oldest event; what happened to those events before this ran is
// not proven.
func backfillAuditChain(ctx context.Context, tx *sql.Tx, d *Dialect) error {
	rows, err := tx.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_events ORDER BY account, id`)
	if err != nil {
		return err
	}
	type link struct {
		id, seq    int64
		prev, hash string
	}
	var (
		links []link
		heads []*latchkey.AuditChainHead
	)
	for rows.Next() {
		e, err := scanAuditRow(rows)
		if err != nil {
			rows.Close()
			return err
		}
		if len(heads) == 0 || heads[len(heads)-1].Account != e.Account {
			heads = append(heads, &latchkey.AuditChainHead{Account: e.Account})
		}
		h := heads[len(heads)-1]
		e.Seq, e.PrevHash = h.Seq+1, h.Hash
		e.Hash = latchkey.AuditEventHash(e, e.Seq)
		h.Seq, h.Hash = e.Seq, e.Hash
		links = append(links, link{e.ID, e.Seq, e.PrevHash, e.Hash})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, l := range links {
		if _, err := tx.ExecContext(ctx, rebind(d, `UPDATE audit_events SET seq = ?, prev_hash = ?, hash = ? WHERE id = ?`),
			l.seq, l.prev, l.hash, l.id); err != nil {
			return err
		}
	}
	for _, h := range heads {
		if _, err := tx.ExecContext(ctx, rebind(d, `INSERT INTO audit_chain_heads (account, seq, hash) VALUES (?, ?, ?)`),
			h.Account, h.Seq, h.Hash); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `CREATE UNIQUE INDEX audit_events_chain ON audit_events (account, seq)`)
	return err
}

const auditColumns = `id, time, account, actor, actor_key_id, source_ip, user_agent, action, target_type, target, application, before, after, seq, prev_hash, hash`

func scanAuditRow(rows *sql.Rows) (*latchkey.AuditEvent, error) {
	var e latchkey.AuditEvent
	var ts int64
	var before, after sql.NullString
	if err := rows.Scan(&e.ID, &ts, &e.Account, &e.Actor, &e.ActorKeyID, &e.SourceIP, &e.UserAgent, &e.Action,
		&e.TargetType, &e.Target, &e.Application, &before, &after, &e.Seq, &e.PrevHash, &e.Hash); err != nil {
		return nil, err
	}
	e.Time = fromMicros(ts)
	if before.Valid {
		e.Before = []byte(before.String)
	}
	if after.Valid {
		e.After = []byte(after.String)
	}
	return &e, nil
}

func (t *Tx) scanAudit(rows *sql.Rows) ([]*latchkey.AuditEvent, error) {
	defer rows.Close()
	out := []*latchkey.AuditEvent{}
	for rows.Next() {
		e, err := scanAuditRow(rows)
		if err != nil {
			return nil, mapErr(t.d, err)
		}
		out = append(out, e)
	}
	return out, mapErr(t.d, rows.Err())
}

func nullJSON(b []byte) sql.NullString {
	if len(b) == 0 || string(b) == "null" {
		return sql.NullString{}
	}
	return sql.NullString{String: string(b), Valid: true}
}

// ListAuditEvents implements latchkey.Tx.
func (t *Tx) ListAuditEvents(ctx context.Context, f latchkey.AuditFilter) ([]*latchkey.AuditEvent, string, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if f.Account != "" {
		add("account = ?", f.Account)
	}
	if f.AccessKeyID != "" {
		add("target_type = 'access_key' AND target = ?", f.AccessKeyID)
	}
	if f.Application != "" {
		add("application = ?", f.Application)
	}
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.Since != nil {
		add("time >= ?", toMicros(*f.Since))
	}
	if f.Until != nil {
		add("time < ?", toMicros(*f.Until))
	}
	if f.After != "" {
		id, err := strconv.ParseInt(f.After, 10, 64)
		if err != nil || id <= 0 {
			return nil, "", latchkey.Errorf(latchkey.EINVALID, "page_token is not valid")
		}
		add("id < ?", id)
	}
	query := `SELECT ` + auditColumns + ` FROM audit_events`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	limit := pageSize(f.Limit)
	query += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit+1)
	rows, err := t.query(ctx, query, args...)
	if err != nil {
		return nil, "", err
	}
	out, err := t.scanAudit(rows)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = strconv.FormatInt(out[limit-1].ID, 10)
	}
	return out, next, nil
}
