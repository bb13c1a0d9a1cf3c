package sqlstore

import (
	"context"

	"github.com/latchkey/latchkey"
)

// CreateAccount implements latchkey.Tx.
func (t *Tx) CreateAccount(ctx context.Context, a *latchkey.Account) error {
	b := brandingOf(a)
	_, err := t.exec(ctx, `INSERT INTO accounts (name, key_prefix, brand_name, brand_logo_url, brand_primary_color, brand_accent_color, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, a.Name, a.KeyPrefix, b.Name, b.LogoURL, b.PrimaryColor, b.AccentColor, toMicros(a.CreatedAt))
	if latchkey.ErrorCode(err) == latchkey.EEXISTS {
		return latchkey.Errorf(latchkey.EEXISTS, "account %q already exists", a.Name)
	}
	return err
}

// FindAccount implements latchkey.Tx.
func (t *Tx) FindAccount(ctx context.Context, name string) (*latchkey.Account, error) {
	a, err := scanAccount(t.queryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE name = ?`+t.forUpdate(), name))
	if err != nil {
		return nil, notFound(t.d, err, latchkey.Errorf(latchkey.ENOTFOUND, "account %q not found", name))
	}
	return a, nil
}

// ListAccounts implements latchkey.Tx.
func (t *Tx) ListAccounts(ctx context.Context) ([]*latchkey.Account, error) {
	rows, err := t.query(ctx, `SELECT `+accountColumns+` FROM accounts ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*latchkey.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, mapErr(t.d, err)
		}
		out = append(out, a)
	}
	return out, mapErr(t.d, rows.Err())
}

// UpdateAccount implements latchkey.Tx.
func (t *Tx) UpdateAccount(ctx context.Context, a *latchkey.Account) error {
	b := brandingOf(a)
	res, err := t.exec(ctx, `UPDATE accounts SET key_prefix = ?, brand_name = ?, brand_logo_url = ?, brand_primary_color = ?, brand_accent_color = ?
		WHERE name = ?`, a.KeyPrefix, b.Name, b.LogoURL, b.PrimaryColor, b.AccentColor, a.Name)
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

const accountColumns = `name, key_prefix, brand_name, brand_logo_url, brand_primary_color, brand_accent_color, created_at`

func scanAccount(s interface{ Scan(...any) error }) (*latchkey.Account, error) {
	var a latchkey.Account
	var b latchkey.Branding
	var created int64
	if err := s.Scan(&a.Name, &a.KeyPrefix, &b.Name, &b.LogoURL, &b.PrimaryColor, &b.AccentColor, &created); err != nil {
		return nil, err
	}
	if !b.Empty() {
		a.Branding = &b
	}
	a.CreatedAt = fromMicros(created)
	return &a, nil
}

func brandingOf(a *latchkey.Account) latchkey.Branding {
	if a.Branding == nil {
		return latchkey.Branding{}
	}
	return *a.Branding
}
