package sqlstore

import (
	"context"

	"github.com/latchkey/latchkey"
)

// CreateAccount implements latchkey.Tx.
func (t *Tx) CreateAccount(ctx context.Context, a *latchkey.Account) error {
	_, err := t.exec(ctx, `INSERT INTO accounts (name, key_prefix, created_at) VALUES (?, ?, ?)`, a.Name, a.KeyPrefix, toMicros(a.CreatedAt))
	if latchkey.ErrorCode(err) == latchkey.EEXISTS {
		return latchkey.Errorf(latchkey.EEXISTS, "account %q already exists", a.Name)
	}
	return err
}

// FindAccount implements latchkey.Tx.
func (t *Tx) FindAccount(ctx context.Context, name string) (*latchkey.Account, error) {
	var a latchkey.Account
	var created int64
	err := t.queryRow(ctx, `SELECT name, key_prefix, created_at FROM accounts WHERE name = ?`+t.forUpdate(), name).Scan(&a.Name, &a.KeyPrefix, &created)
	if err != nil {
		return nil, notFound(t.d, err, latchkey.Errorf(latchkey.ENOTFOUND, "account %q not found", name))
	}
	a.CreatedAt = fromMicros(created)
	return &a, nil
}

// ListAccounts implements latchkey.Tx.
func (t *Tx) ListAccounts(ctx context.Context) ([]*latchkey.Account, error) {
	rows, err := t.query(ctx, `SELECT name, key_prefix, created_at FROM accounts ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*latchkey.Account
	for rows.Next() {
		var a latchkey.Account
		var created int64
		if err := rows.Scan(&a.Name, &a.KeyPrefix, &created); err != nil {
			return nil, mapErr(t.d, err)
		}
		a.CreatedAt = fromMicros(created)
		out = append(out, &a)
	}
	return out, mapErr(t.d, rows.Err())
}

// UpdateAccount implements latchkey.Tx.
func (t *Tx) UpdateAccount(ctx context.Context, a *latchkey.Account) error {
	res, err := t.exec(ctx, `UPDATE accounts SET key_prefix = ? WHERE name = ?`, a.KeyPrefix, a.Name)
	if err != nil {
		return err
	}
	return mustAffect(res, latchkey.Errorf(latchkey.ENOTFOUND, "account %q not found", a.Name))
}

// accountExists checks that an account exists and, on databases with row
// locks, keeps it from being deleted until commit without serialising the
// creates that share it. Returns ENOTFOUND.
func (t *Tx) accountExists(ctx context.Context, name string) error {
	lock := ""
	if t.writable && t.d.ForShare != "" {
		lock = " " + t.d.ForShare
	}
	var one int
	err := t.queryRow(ctx, `SELECT 1 FROM accounts WHERE name = ?`+lock, name).Scan(&one)
	if err != nil {
		return notFound(t.d, err, latchkey.Errorf(latchkey.ENOTFOUND, "account %q not found", name))
	}
	return nil
}
