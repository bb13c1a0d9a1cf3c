package sqlstore

import (
	"context"

	"github.com/latchkey/latchkey"
)

// CreatePrincipal implements latchkey.Tx.
func (t *Tx) CreatePrincipal(ctx context.Context, p *latchkey.Principal) error {
	if err := t.accountExists(ctx, p.Account); err != nil {
		return err
	}
	_, err := t.exec(ctx, `INSERT INTO principals (account, name, role, created_at) VALUES (?, ?, ?, ?)`,
		p.Account, p.Name, string(p.Role), toMicros(p.CreatedAt))
	if latchkey.ErrorCode(err) == latchkey.EEXISTS {
		return latchkey.Errorf(latchkey.EEXISTS, "principal %q already exists", p.Name)
	}
	return err
}

// FindPrincipal implements latchkey.Tx.
func (t *Tx) FindPrincipal(ctx context.Context, account, name string) (*latchkey.Principal, error) {
	var p latchkey.Principal
	var created int64
	err := t.queryRow(ctx, `SELECT account, name, role, created_at FROM principals WHERE account = ? AND name = ?`+t.forUpdate(), account, name).
		Scan(&p.Account, &p.Name, &p.Role, &created)
	if err != nil {
		return nil, notFound(t.d, err, latchkey.Errorf(latchkey.ENOTFOUND, "principal %q not found", name))
	}
	p.CreatedAt = fromMicros(created)
	return &p, nil
}

// ListPrincipals implements latchkey.Tx.
func (t *Tx) ListPrincipals(ctx context.Context, account string) ([]*latchkey.Principal, error) {
	rows, err := t.query(ctx, `SELECT account, name, role, created_at FROM principals WHERE (? = '' OR account = ?) ORDER BY account, name`, account, account)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*latchkey.Principal
	for rows.Next() {
		var p latchkey.Principal
		var created int64
		if err := rows.Scan(&p.Account, &p.Name, &p.Role, &created); err != nil {
			return nil, mapErr(t.d, err)
		}
		p.CreatedAt = fromMicros(created)
		out = append(out, &p)
	}
	return out, mapErr(t.d, rows.Err())
}

// DeletePrincipal implements latchkey.Tx.
func (t *Tx) DeletePrincipal(ctx context.Context, account, name string) error {
	if _, err := t.exec(ctx, `DELETE FROM access_keys WHERE account = ? AND principal = ?`, account, name); err != nil {
		return err
	}
	res, err := t.exec(ctx, `DELETE FROM principals WHERE account = ? AND name = ?`, account, name)
	if err != nil {
		return err
	}
	return mustAffect(res, latchkey.Errorf(latchkey.ENOTFOUND, "principal %q not found", name))
}
