package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"unicode/utf8"

	"github.com/latchkey/latchkey"
)

// errText is the answer to a text value that no store can hold the same
// way: PostgreSQL refuses NUL bytes and invalid UTF-8 in TEXT, SQLite keeps
// them. Refusing them here, before either database sees them, makes both
// stores answer alike (and never with an internal error).
var errText = latchkey.Errorf(latchkey.EINVALID, "text values (names, filters, page tokens) must be valid UTF-8 without NUL bytes")

// checkText returns errText if a string argument of a query is not valid
// UTF-8 or holds a NUL byte.
func checkText(args []any) error {
	for _, a := range args {
		var s string
		switch v := a.(type) {
		case string:
			s = v
		case sql.NullString:
			s = v.String
		default:
			continue
		}
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return errText
		}
	}
	return nil
}

// errRow is a row whose query was refused before it ran.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// queryRow runs a query that returns at most one row.
func (t *Tx) queryRow(ctx context.Context, query string, args ...any) interface{ Scan(...any) error } {
	if err := checkText(args); err != nil {
		return errRow{err}
	}
	return t.tx.QueryRowContext(t.within(ctx), t.q(query), args...)
}
