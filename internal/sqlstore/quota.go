package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/latchkey/latchkey"
)

const quotaColumns = `generation, budget, used, period, refill_amount, refill_interval, anchor, low_threshold,
	low_sent_period, exhausted_sent_period, updated_at`

// quotaRow is a quota row with the alert bookkeeping the domain type
// does not carry.
type quotaRow struct {
	q                      latchkey.Quota
	lowSent, exhaustedSent sql.NullInt64
}

func scanQuota(s interface{ Scan(...any) error }) (*quotaRow, error) {
	var (
		r              quotaRow
		amount         sql.NullInt64
		interval       sql.NullString
		anchor, update int64
	)
	if err := s.Scan(&r.q.Generation, &r.q.Budget, &r.q.Used, &r.q.Period, &amount, &interval, &anchor,
		&r.q.LowThreshold, &r.lowSent, &r.exhaustedSent, &update); err != nil {
		return nil, err
	}
	if amount.Valid {
		r.q.Refill = &latchkey.Refill{Amount: amount.Int64, Interval: interval.String}
	}
	r.q.Anchor, r.q.UpdatedAt = fromMicros(anchor), fromMicros(update)
	return &r, nil
}

func (t *Tx) findQuota(ctx context.Context, owner latchkey.QuotaOwner) (*quotaRow, error) {
	r, err := scanQuota(t.queryRow(ctx, `SELECT `+quotaColumns+` FROM quotas WHERE owner_kind = ? AND owner_id = ?`+t.forUpdate(),
		owner.Kind, owner.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, latchkey.Errorf(latchkey.ENOTFOUND, "%s %s has no quota", owner.Kind, owner.ID)
	}
	if err != nil {
		return nil, mapErr(t.d, err)
	}
	return r, nil
}

// FindQuota implements latchkey.QuotaTx.
func (t *Tx) FindQuota(ctx context.Context, owner latchkey.QuotaOwner, now time.Time) (*latchkey.Quota, error) {
	r, err := t.findQuota(ctx, owner)
	if err != nil {
		return nil, err
	}
	r.q.Present(now)
	return &r.q, nil
}

// SetQuota implements latchkey.QuotaTx.
func (t *Tx) SetQuota(ctx context.Context, owner latchkey.QuotaOwner, account string, q *latchkey.Quota, now time.Time) error {
	var amount sql.NullInt64
	var interval sql.NullString
	if q.Refill != nil {
		amount = sql.NullInt64{Int64: q.Refill.Amount, Valid: true}
		interval = sql.NullString{String: q.Refill.Interval, Valid: true}
	}
	gen := int64(1)
	anchor := now
	if old, err := t.findQuota(ctx, owner); err == nil {
		gen = old.q.Generation + 1
		// The schedule keeps its anchor, so that changing the budget
		// does not move the refill time.
		anchor = old.q.Anchor
	} else if latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
		return err
	}
	q.Generation, q.Anchor, q.Budget, q.Used, q.UpdatedAt = gen, anchor, q.Remaining, 0, now
	q.Period, _, _ = q.PeriodAt(now)
	_, err := t.exec(ctx, `INSERT INTO quotas (owner_kind, owner_id, account, generation, budget, used, period,
		refill_amount, refill_interval, anchor, low_threshold, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (owner_kind, owner_id) DO UPDATE SET generation = excluded.generation, budget = excluded.budget,
		used = 0, period = excluded.period, refill_amount = excluded.refill_amount, refill_interval = excluded.refill_interval,
		low_threshold = excluded.low_threshold, low_sent_period = NULL, exhausted_sent_period = NULL,
		updated_at = excluded.updated_at`,
		owner.Kind, owner.ID, account, gen, q.Budget, q.Period, amount, interval, toMicros(anchor), q.LowThreshold, toMicros(now))
	if err != nil {
		return err
	}
	q.Present(now)
	return nil
}

// TopUpQuota implements latchkey.QuotaTx.
func (t *Tx) TopUpQuota(ctx context.Context, owner latchkey.QuotaOwner, amount int64, now time.Time) (*latchkey.Quota, error) {
	r, err := t.findQuota(ctx, owner)
	if err != nil {
		return nil, err
	}
	q := &r.q
	q.Roll(now)
	// What replicas hold leased is dropped with the generation: the new
	// budget is what the ledger had left, plus amount.
	q.Budget, q.Used = min(q.Left()+amount, latchkey.MaxQuota), 0
	q.Generation++
	q.UpdatedAt = now
	if _, err := t.exec(ctx, `UPDATE quotas SET generation = ?, budget = ?, used = 0, period = ?,
		low_sent_period = NULL, exhausted_sent_period = NULL, updated_at = ? WHERE owner_kind = ? AND owner_id = ?`,
		q.Generation, q.Budget, q.Period, toMicros(now), owner.Kind, owner.ID); err != nil {
		return nil, err
	}
	q.Present(now)
	return q, nil
}

// DeleteQuota implements latchkey.QuotaTx.
func (t *Tx) DeleteQuota(ctx context.Context, owner latchkey.QuotaOwner) error {
	res, err := t.exec(ctx, `DELETE FROM quotas WHERE owner_kind = ? AND owner_id = ?`, owner.Kind, owner.ID)
	if err != nil {
		return err
	}
	return mustAffect(res, latchkey.Errorf(latchkey.ENOTFOUND, "%s %s has no quota", owner.Kind, owner.ID))
}

// deleteQuotaOf removes an owner's quota and history, if any.
func (t *Tx) deleteQuotaOf(ctx context.Context, owner latchkey.QuotaOwner) error {
	for _, table := range []string{"quotas", "quota_changes"} {
		if _, err := t.exec(ctx, `DELETE FROM `+table+` WHERE owner_kind = ? AND owner_id = ?`, owner.Kind, owner.ID); err != nil {
			return err
		}
	}
	return nil
}

// AddQuotaChange implements latchkey.QuotaTx.
func (t *Tx) AddQuotaChange(ctx context.Context, owner latchkey.QuotaOwner, c *latchkey.QuotaChange) error {
	if _, err := t.exec(ctx, `INSERT INTO quota_changes (owner_kind, owner_id, at, kind, amount, remaining, actor)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, owner.Kind, owner.ID, toMicros(c.At), c.Kind, c.Amount, c.Remaining, c.Actor); err != nil {
		return err
	}
	_, err := t.exec(ctx, `DELETE FROM quota_changes WHERE owner_kind = ? AND owner_id = ? AND id <= (
		SELECT id FROM quota_changes WHERE owner_kind = ? AND owner_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
		owner.Kind, owner.ID, owner.Kind, owner.ID, latchkey.MaxQuotaHistory)
	return err
}

// ListQuotaChanges implements latchkey.QuotaTx.
func (t *Tx) ListQuotaChanges(ctx context.Context, owner latchkey.QuotaOwner, limit int) ([]*latchkey.QuotaChange, error) {
	rows, err := t.query(ctx, `SELECT at, kind, amount, remaining, actor FROM quota_changes
		WHERE owner_kind = ? AND owner_id = ? ORDER BY id DESC LIMIT ?`, owner.Kind, owner.ID, pageSize(limit))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*latchkey.QuotaChange{}
	for rows.Next() {
		var c latchkey.QuotaChange
		var at int64
		if err := rows.Scan(&at, &c.Kind, &c.Amount, &c.Remaining, &c.Actor); err != nil {
			return nil, mapErr(t.d, err)
		}
		c.At = fromMicros(at)
		out = append(out, &c)
	}
	return out, mapErr(t.d, rows.Err())
}

// LeaseQuota implements latchkey.QuotaTx. The row is locked (FOR UPDATE;
// SQLite's one writer) from the read to the write, so two replicas never
// lease the same units.
func (t *Tx) LeaseQuota(ctx context.Context, owner latchkey.QuotaOwner, gen, want int64, now time.Time) (*latchkey.QuotaLease, error) {
	r, err := t.findQuota(ctx, owner)
	if err != nil {
		return nil, err
	}
	q := &r.q
	if q.Generation != gen {
		return &latchkey.QuotaLease{Generation: q.Generation, Stale: true}, nil
	}
	prevLeft := q.Left()
	if q.Roll(now) {
		if err := t.AddQuotaChange(ctx, owner, &latchkey.QuotaChange{At: now, Kind: latchkey.QuotaRefilled, Amount: prevLeft, Remaining: q.Budget}); err != nil {
			return nil, err
		}
		r.lowSent, r.exhaustedSent = sql.NullInt64{}, sql.NullInt64{}
	}
	l := &latchkey.QuotaLease{Generation: gen, Period: q.Period, Granted: min(max(want, 0), q.Left())}
	q.Used += l.Granted
	l.Left = q.Left()
	if q.LowThreshold > 0 && l.Left <= q.LowThreshold && !(r.lowSent.Valid && r.lowSent.Int64 == q.Period) {
		l.Low, r.lowSent = true, sql.NullInt64{Int64: q.Period, Valid: true}
	}
	if l.Left == 0 && !(r.exhaustedSent.Valid && r.exhaustedSent.Int64 == q.Period) {
		l.Exhausted, r.exhaustedSent = true, sql.NullInt64{Int64: q.Period, Valid: true}
		if err := t.AddQuotaChange(ctx, owner, &latchkey.QuotaChange{At: now, Kind: latchkey.QuotaExhausted, Remaining: 0}); err != nil {
			return nil, err
		}
	}
	_, err = t.exec(ctx, `UPDATE quotas SET budget = ?, used = ?, period = ?, low_sent_period = ?, exhausted_sent_period = ?
		WHERE owner_kind = ? AND owner_id = ?`, q.Budget, q.Used, q.Period, r.lowSent, r.exhaustedSent, owner.Kind, owner.ID)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// ReturnQuota implements latchkey.QuotaTx.
func (t *Tx) ReturnQuota(ctx context.Context, owner latchkey.QuotaOwner, gen, period, n int64) error {
	if n <= 0 {
		return nil
	}
	_, err := t.exec(ctx, `UPDATE quotas SET used = CASE WHEN used > ? THEN used - ? ELSE 0 END
		WHERE owner_kind = ? AND owner_id = ? AND generation = ? AND period = ?`, n, n, owner.Kind, owner.ID, gen, period)
	return err
}

// ownerQuotas reads the quota configuration of every owner of a kind
// that has one, for the index, by owner ID.
func (db *DB) ownerQuotas(ctx context.Context, kind string) (map[string]*latchkey.Quota, error) {
	out := map[string]*latchkey.Quota{}
	err := db.scanRows(ctx, `SELECT owner_id, `+quotaColumns+` FROM quotas WHERE owner_kind = '`+kind+`'`, func(rows *sql.Rows) error {
		var id string
		var r *quotaRow
		r, err := scanQuota(scanPrefix{rows, &id})
		if err != nil {
			return db.Err(err)
		}
		out[id] = &r.q
		return nil
	})
	return out, err
}

// scanPrefix scans its own destinations before those of the caller.
type scanPrefix struct {
	s     interface{ Scan(...any) error }
	first any
}

func (p scanPrefix) Scan(dest ...any) error { return p.s.Scan(append([]any{p.first}, dest...)...) }
