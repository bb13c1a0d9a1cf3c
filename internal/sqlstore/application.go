package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/latchkey/latchkey"
)

// CreateApplication implements latchkey.Tx.
func (t *Tx) CreateApplication(ctx context.Context, app *latchkey.Application) error {
	if err := t.accountExists(ctx, app.Account); err != nil {
		return err
	}
	restr, err := marshalRestrictions(app.Restrictions)
	if err != nil {
		return err
	}
	// Names are unique without regard to case (an index on lower(name)
	// holds it); find the one that is in the way, to name it.
	var existing string
	err = t.queryRow(ctx, `SELECT name FROM applications WHERE account = ? AND lower(name) = lower(?)`, app.Account, app.Name).Scan(&existing)
	switch {
	case err == nil && existing == app.Name:
		return latchkey.Errorf(latchkey.EEXISTS, "application %q already exists", app.Name)
	case err == nil:
		return latchkey.Errorf(latchkey.EEXISTS, "application %q cannot be created: application %q exists, and names are unique without regard to case", app.Name, existing)
	case !errors.Is(err, sql.ErrNoRows):
		return mapErr(t.d, err)
	}
	_, err = t.exec(ctx, `INSERT INTO applications (account, name, description, created_at, restrictions, owner, identity_id, metadata)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		app.Account, app.Name, app.Description, toMicros(app.CreatedAt), restr, app.Owner, nullString(app.IdentityID), nullJSON(app.Metadata))
	if latchkey.ErrorCode(err) == latchkey.EEXISTS {
		return latchkey.Errorf(latchkey.EEXISTS, "application %q already exists", app.Name)
	}
	return err
}

const appColumns = `a.account, a.name, a.description, a.created_at, a.restrictions, a.owner, a.identity_id, a.metadata,
	(SELECT COUNT(*) FROM access_keys k WHERE k.account = a.account AND k.application = a.name AND k.canary = 0)`

func scanApp(s interface{ Scan(...any) error }) (*latchkey.Application, error) {
	var a latchkey.Application
	var created int64
	var restr, ident, meta sql.NullString
	if err := s.Scan(&a.Account, &a.Name, &a.Description, &created, &restr, &a.Owner, &ident, &meta, &a.KeyCount); err != nil {
		return nil, err
	}
	a.IdentityID = ident.String
	if meta.Valid && meta.String != "" {
		a.Metadata = json.RawMessage(meta.String)
	}
	r, err := unmarshalRestrictions(restr)
	if err != nil {
		return nil, err
	}
	a.Restrictions = r
	a.CreatedAt = fromMicros(created)
	return &a, nil
}

// FindApplication implements latchkey.Tx.
func (t *Tx) FindApplication(ctx context.Context, account, name string) (*latchkey.Application, error) {
	if t.writable && t.d.ForUpdate != "" {
		// Lock the row first: FOR UPDATE cannot go with an aggregate.
		var one int
		err := t.queryRow(ctx, `SELECT 1 FROM applications WHERE account = ? AND name = ? `+t.d.ForUpdate, account, name).Scan(&one)
		if err != nil {
			return nil, notFound(t.d, err, latchkey.Errorf(latchkey.ENOTFOUND, "application %q not found", name))
		}
	}
	row := t.queryRow(ctx, `SELECT `+appColumns+` FROM applications a WHERE a.account = ? AND a.name = ?`, account, name)
	app, err := scanApp(row)
	if err != nil {
		return nil, notFound(t.d, err, latchkey.Errorf(latchkey.ENOTFOUND, "application %q not found", name))
	}
	return app, nil
}

// ListApplications implements latchkey.Tx.
func (t *Tx) ListApplications(ctx context.Context, f latchkey.ApplicationFilter) ([]*latchkey.Application, string, error) {
	// The token is "account/name" of the last application of the page
	// before; account names hold no "/".
	var afterAccount, afterName string
	if f.After != "" {
		b, err := base64.RawURLEncoding.DecodeString(f.After)
		if err != nil {
			return nil, "", latchkey.Errorf(latchkey.EINVALID, "page_token is not valid")
		}
		var ok bool
		if afterAccount, afterName, ok = strings.Cut(string(b), "/"); !ok {
			return nil, "", latchkey.Errorf(latchkey.EINVALID, "page_token is not valid")
		}
	}
	limit := pageSize(f.Limit)
	// A row value against the primary key (account, name): each page is
	// a seek, not a sort of every application.
	rows, err := t.query(ctx, `SELECT `+appColumns+` FROM applications a
		WHERE (? = '' OR a.account = ?) AND (? = '' OR a.owner = ?) AND (? = '' OR a.identity_id = ?) AND (a.account, a.name) > (?, ?)
		ORDER BY a.account, a.name LIMIT ?`, f.Account, f.Account, f.Owner, f.Owner, f.IdentityID, f.IdentityID, afterAccount, afterName, limit+1)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []*latchkey.Application
	for rows.Next() {
		a, err := scanApp(rows)
		if err != nil {
			return nil, "", mapErr(t.d, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", mapErr(t.d, err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = base64.RawURLEncoding.EncodeToString([]byte(last.Account + "/" + last.Name))
	}
	return out, next, nil
}

// UpdateApplication implements latchkey.Tx.
func (t *Tx) UpdateApplication(ctx context.Context, app *latchkey.Application) error {
	restr, err := marshalRestrictions(app.Restrictions)
	if err != nil {
		return err
	}
	res, err := t.exec(ctx, `UPDATE applications SET description = ?, restrictions = ?, owner = ?, identity_id = ?, metadata = ? WHERE account = ? AND name = ?`,
		app.Description, restr, app.Owner, nullString(app.IdentityID), nullJSON(app.Metadata), app.Account, app.Name)
	if err != nil {
		return err
	}
	return mustAffect(res, latchkey.Errorf(latchkey.ENOTFOUND, "application %q not found", app.Name))
}

// DeleteApplication implements latchkey.Tx.
func (t *Tx) DeleteApplication(ctx context.Context, account, name string) error {
	app, err := t.FindApplication(ctx, account, name)
	if err != nil {
		return err
	}
	// KeyCount leaves canaries out (they do not take a place of the
	// two); they still belong to the application and must go first.
	n := app.KeyCount
	if err := t.queryRow(ctx, `SELECT COUNT(*) FROM access_keys WHERE account = ? AND application = ?`, account, name).Scan(&n); err != nil {
		return mapErr(t.d, err)
	}
	if n > 0 {
		return latchkey.Errorf(latchkey.ECONFLICT, "application %q still has %d access key(s); delete them first", name, n)
	}
	res, err := t.exec(ctx, `DELETE FROM applications WHERE account = ? AND name = ?`, account, name)
	if err != nil {
		return err
	}
	return mustAffect(res, latchkey.Errorf(latchkey.ENOTFOUND, "application %q not found", name))
}
