package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
	"strings"

	"github.com/latchkey/latchkey"
)

// AppendAudit implements latchkey.Tx.
func (t *Tx) AppendAudit(ctx context.Context, e *latchkey.AuditEvent) error {
	row := t.queryRow(ctx, `INSERT INTO audit_events
		(time, account, actor, actor_key_id, source_ip, user_agent, action, target_type, target, application, before, after)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		toMicros(e.Time), e.Account, e.Actor, e.ActorKeyID, e.SourceIP, e.UserAgent, e.Action, e.TargetType, e.Target,
		e.Application, nullJSON(e.Before), nullJSON(e.After))
	return mapErr(t.d, row.Scan(&e.ID))
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
	query := `SELECT id, time, account, actor, actor_key_id, source_ip, user_agent, action, target_type, target, application, before, after FROM audit_events`
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
	defer rows.Close()
	var out []*latchkey.AuditEvent
	for rows.Next() {
		var e latchkey.AuditEvent
		var ts int64
		var before, after sql.NullString
		if err := rows.Scan(&e.ID, &ts, &e.Account, &e.Actor, &e.ActorKeyID, &e.SourceIP, &e.UserAgent, &e.Action,
			&e.TargetType, &e.Target, &e.Application, &before, &after); err != nil {
			return nil, "", mapErr(t.d, err)
		}
		e.Time = fromMicros(ts)
		if before.Valid {
			e.Before = []byte(before.String)
		}
		if after.Valid {
			e.After = []byte(after.String)
		}
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", mapErr(t.d, err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = strconv.FormatInt(out[limit-1].ID, 10)
	}
	return out, next, nil
}
