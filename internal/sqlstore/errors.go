package sqlstore

import (
	"database/sql"
	"errors"

	"github.com/latchkey/latchkey"
)

// notFound returns nf for sql.ErrNoRows and the mapped error otherwise.
func notFound(d *Dialect, err error, nf *latchkey.Error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return nf
	}
	return mapErr(d, err)
}
