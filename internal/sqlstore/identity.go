package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/latchkey/latchkey"
)

const identityColumns = `i.id, i.account, i.name, i.external_id, i.metadata, i.rate_limit, i.created_at, i.updated_at,
	(SELECT COUNT(*) FROM applications a WHERE a.identity_id = i.id)`

func scanIdentity(s interface{ Scan(...any) error }) (*latchkey.Identity, error) {
	var (
		id                   latchkey.Identity
		ext, meta, rateLimit sql.NullString
		created, updated     int64
	)
	if err := s.Scan(&id.ID, &id.Account, &id.Name, &ext, &meta, &rateLimit, &created, &updated, &id.ApplicationCount); err != nil {
		return nil, err
	}
	id.ExternalID = ext.String
	if meta.Valid && meta.String != "" {
		id.Metadata = json.RawMessage(meta.String)
	}
	rl, err := unmarshalRateLimit(rateLimit)
	if err != nil {
		return nil, fmt.Errorf("identity %s: rate limit: %w", id.ID, err)
	}
	id.RateLimit = rl
	id.CreatedAt, id.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &id, nil
}

func marshalRateLimit(rl *latchkey.RateLimit) (sql.NullString, error) {
	if rl == nil {
		return sql.NullString{}, nil
	}
	b, err := json.Marshal(rl)
	if err != nil {
		return sql.NullString{}, latchkey.Internal(err)
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

func unmarshalRateLimit(s sql.NullString) (*latchkey.RateLimit, error) {
	if !s.Valid || s.String == "" {
		return nil, nil
	}
	var rl latchkey.RateLimit
	if err := json.Unmarshal([]byte(s.String), &rl); err != nil {
		return nil, err
	}
	return &rl, nil
}

// identityTaken names what is in the way of writing id: its name or its
// external ID, used by another identity of the account.
func (t *Tx) identityTaken(ctx context.Context, id *latchkey.Identity) error {
	var other string
	err := t.queryRow(ctx, `SELECT id FROM identities WHERE account = ? AND name = ? AND id <> ?`, id.Account, id.Name, id.ID).Scan(&other)
	if err == nil {
		return latchkey.Errorf(latchkey.EEXISTS, "identity %q already exists (%s)", id.Name, other)
	}
	if err != sql.ErrNoRows {
		return mapErr(t.d, err)
	}
	if id.ExternalID == "" {
		return nil
	}
	err = t.queryRow(ctx, `SELECT id FROM identities WHERE account = ? AND external_id = ? AND id <> ?`, id.Account, id.ExternalID, id.ID).Scan(&other)
	if err == nil {
		return latchkey.Errorf(latchkey.EEXISTS, "identity %s already has the external_id %q", other, id.ExternalID)
	}
	if err != sql.ErrNoRows {
		return mapErr(t.d, err)
	}
	return nil
}

// CreateIdentity implements latchkey.IdentityTx.
func (t *Tx) CreateIdentity(ctx context.Context, id *latchkey.Identity) error {
	if err := t.accountExists(ctx, id.Account); err != nil {
		return err
	}
	if err := t.identityTaken(ctx, id); err != nil {
		return err
	}
	rl, err := marshalRateLimit(id.RateLimit)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO identities (id, account, name, external_id, metadata, rate_limit, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, id.ID, id.Account, id.Name, nullString(id.ExternalID), nullJSON(id.Metadata), rl,
		toMicros(id.CreatedAt), toMicros(id.UpdatedAt))
	if latchkey.ErrorCode(err) == latchkey.EEXISTS {
		return latchkey.Errorf(latchkey.EEXISTS, "identity %q already exists", id.Name)
	}
	return err
}

// FindIdentity implements latchkey.IdentityTx.
func (t *Tx) FindIdentity(ctx context.Context, account, id string, now time.Time) (*latchkey.Identity, error) {
	nf := latchkey.Errorf(latchkey.ENOTFOUND, "identity %s not found", id)
	if t.writable && t.d.ForUpdate != "" {
		// Lock the row first: FOR UPDATE cannot go with an aggregate.
		var one int
		err := t.queryRow(ctx, `SELECT 1 FROM identities WHERE account = ? AND id = ? `+t.d.ForUpdate, account, id).Scan(&one)
		if err != nil {
			return nil, notFound(t.d, err, nf)
		}
	}
	out, err := scanIdentity(t.queryRow(ctx, `SELECT `+identityColumns+` FROM identities i WHERE i.account = ? AND i.id = ?`, account, id))
	if err != nil {
		return nil, notFound(t.d, err, nf)
	}
	q, err := t.FindQuota(ctx, latchkey.QuotaOwner{Kind: latchkey.QuotaOwnerIdentity, ID: id}, now)
	switch latchkey.ErrorCode(err) {
	case "":
		out.Quota = q
	case latchkey.ENOTFOUND:
	default:
		return nil, err
	}
	return out, nil
}

// ListIdentities implements latchkey.IdentityTx.
func (t *Tx) ListIdentities(ctx context.Context, f latchkey.IdentityFilter) ([]*latchkey.Identity, string, error) {
	limit := pageSize(f.Limit)
	// IDs are unique across accounts: the token is the last ID.
	rows, err := t.query(ctx, `SELECT `+identityColumns+` FROM identities i
		WHERE (? = '' OR i.account = ?) AND (? = '' OR i.external_id = ?) AND i.id > ?
		ORDER BY i.id LIMIT ?`, f.Account, f.Account, f.ExternalID, f.ExternalID, f.After, limit+1)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []*latchkey.Identity
	for rows.Next() {
		id, err := scanIdentity(rows)
		if err != nil {
			return nil, "", mapErr(t.d, err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, "", mapErr(t.d, err)
	}
	rows.Close()
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	// Each identity's quota, as FindIdentity gives it (a page holds at
	// most 1,000, and few identities have a quota).
	now := nowFunc()
	for _, id := range out {
		q, err := t.FindQuota(ctx, latchkey.QuotaOwner{Kind: latchkey.QuotaOwnerIdentity, ID: id.ID}, now)
		switch latchkey.ErrorCode(err) {
		case "":
			id.Quota = q
		case latchkey.ENOTFOUND:
		default:
			return nil, "", err
		}
	}
	return out, next, nil
}

// UpdateIdentity implements latchkey.IdentityTx.
func (t *Tx) UpdateIdentity(ctx context.Context, id *latchkey.Identity) error {
	if err := t.identityTaken(ctx, id); err != nil {
		return err
	}
	rl, err := marshalRateLimit(id.RateLimit)
	if err != nil {
		return err
	}
	res, err := t.exec(ctx, `UPDATE identities SET name = ?, external_id = ?, metadata = ?, rate_limit = ?, updated_at = ?
		WHERE account = ? AND id = ?`, id.Name, nullString(id.ExternalID), nullJSON(id.Metadata), rl, toMicros(id.UpdatedAt),
		id.Account, id.ID)
	if err != nil {
		return err
	}
	return mustAffect(res, latchkey.Errorf(latchkey.ENOTFOUND, "identity %s not found", id.ID))
}

// DeleteIdentity implements latchkey.IdentityTx.
func (t *Tx) DeleteIdentity(ctx context.Context, account, id string) error {
	var n int
	if err := t.queryRow(ctx, `SELECT COUNT(*) FROM applications WHERE account = ? AND identity_id = ?`, account, id).Scan(&n); err != nil {
		return mapErr(t.d, err)
	}
	if n > 0 {
		return latchkey.Errorf(latchkey.ECONFLICT, "identity %s still has %d application(s); move them to another identity or none first", id, n)
	}
	res, err := t.exec(ctx, `DELETE FROM identities WHERE account = ? AND id = ?`, account, id)
	if err != nil {
		return err
	}
	if err := mustAffect(res, latchkey.Errorf(latchkey.ENOTFOUND, "identity %s not found", id)); err != nil {
		return err
	}
	return t.deleteQuotaOf(ctx, latchkey.QuotaOwner{Kind: latchkey.QuotaOwnerIdentity, ID: id})
}

// IdentityKeyIDs implements latchkey.IdentityTx.
func (t *Tx) IdentityKeyIDs(ctx context.Context, account, id string) ([]string, error) {
	rows, err := t.query(ctx, `SELECT k.id FROM access_keys k JOIN applications a ON a.account = k.account AND a.name = k.application
		WHERE a.account = ? AND a.identity_id = ? ORDER BY k.id`, account, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, mapErr(t.d, err)
		}
		out = append(out, s)
	}
	return out, mapErr(t.d, rows.Err())
}

// keyIdentities reads every identity that has applications, with its
// quota configuration, for the index: by identity ID.
func (db *DB) keyIdentities(ctx context.Context) (map[string]*latchkey.KeyIdentity, error) {
	out := map[string]*latchkey.KeyIdentity{}
	err := db.scanRows(ctx, `SELECT id, account, external_id, metadata, rate_limit FROM identities`, func(rows *sql.Rows) error {
		var ki latchkey.KeyIdentity
		var ext, meta, rl sql.NullString
		if err := rows.Scan(&ki.ID, &ki.Account, &ext, &meta, &rl); err != nil {
			return db.Err(err)
		}
		ki.ExternalID = ext.String
		if meta.Valid && meta.String != "" {
			ki.Metadata = json.RawMessage(meta.String)
		}
		var err error
		if ki.RateLimit, err = unmarshalRateLimit(rl); err != nil {
			return latchkey.Internal(fmt.Errorf("identity %s: rate limit: %w", ki.ID, err))
		}
		out[ki.ID] = &ki
		return nil
	})
	if err != nil {
		return nil, err
	}
	qs, err := db.ownerQuotas(ctx, latchkey.QuotaOwnerIdentity)
	if err != nil {
		return nil, err
	}
	for id, q := range qs {
		if ki := out[id]; ki != nil {
			ki.Quota = q
		}
	}
	return out, nil
}

// FindKeyIdentity implements latchkey.IdentityTx.
func (t *Tx) FindKeyIdentity(ctx context.Context, id string) (*latchkey.KeyIdentity, error) {
	if id == "" {
		return nil, nil
	}
	var c identityColumnsScan
	err := t.queryRow(ctx, `SELECT i.id, i.account, i.external_id, i.metadata, i.rate_limit,
		iq.generation, iq.budget, iq.used, iq.period, iq.refill_amount, iq.refill_interval, iq.anchor, iq.low_threshold, iq.updated_at
		FROM identities i LEFT JOIN quotas iq ON iq.owner_kind = 'identity' AND iq.owner_id = i.id WHERE i.id = ?`, id).Scan(
		&c.id, &c.account, &c.externalID, &c.metadata, &c.rateLimit,
		&c.q.gen, &c.q.budget, &c.q.used, &c.q.period, &c.q.amount, &c.q.interval, &c.q.anchor, &c.q.low, &c.q.updated)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, mapErr(t.d, err)
	}
	ki, err := c.keyIdentity()
	if err != nil {
		return nil, latchkey.Internal(err)
	}
	return ki, nil
}

// nullQuota is a quota's columns read through a LEFT JOIN.
type nullQuota struct {
	gen, budget, used, period, amount, anchor, low, updated sql.NullInt64
	interval                                                sql.NullString
}

func (n *nullQuota) quota() *latchkey.Quota {
	if !n.gen.Valid {
		return nil
	}
	q := &latchkey.Quota{Generation: n.gen.Int64, Budget: n.budget.Int64, Used: n.used.Int64, Period: n.period.Int64,
		Anchor: fromMicros(n.anchor.Int64), LowThreshold: n.low.Int64, UpdatedAt: fromMicros(n.updated.Int64)}
	if n.amount.Valid {
		q.Refill = &latchkey.Refill{Amount: n.amount.Int64, Interval: n.interval.String}
	}
	q.Present(nowFunc())
	return q
}

// identityColumnsScan is a key's identity read through a LEFT JOIN.
type identityColumnsScan struct {
	id, account, externalID, metadata, rateLimit sql.NullString
	q                                            nullQuota
}

func (c *identityColumnsScan) keyIdentity() (*latchkey.KeyIdentity, error) {
	if !c.id.Valid {
		return nil, nil
	}
	ki := &latchkey.KeyIdentity{ID: c.id.String, Account: c.account.String, ExternalID: c.externalID.String, Quota: c.q.quota()}
	if c.metadata.Valid && c.metadata.String != "" {
		ki.Metadata = json.RawMessage(c.metadata.String)
	}
	var err error
	if ki.RateLimit, err = unmarshalRateLimit(c.rateLimit); err != nil {
		return nil, fmt.Errorf("identity %s: rate limit: %w", ki.ID, err)
	}
	return ki, nil
}
