package sqlite

import (
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// rawConn is a connection to the database file made through SQLite's own
// API (modernc.org/sqlite/lib, the engine that the database/sql driver
// wraps), for the index load's bulk read alone. The driver opens every
// connection SQLITE_OPEN_FULLMUTEX and offers no other mode, so each of
// its calls into SQLite takes and releases the connection's mutex, two
// or three calls a column; it then boxes every column in a driver.Value
// that database/sql converts again. At ten million keys of sixteen
// columns, that was most of a load's reading time. A rawConn is opened
// SQLITE_OPEN_NOMUTEX and read straight into Scan's destinations.
//
// A rawConn is used by one goroutine, then closed. It only reads: it is
// opened query_only and runs no statement but the ones given it.
type rawConn struct {
	tls *libc.TLS
	db  uintptr
}

// ptrSize is the size of a C pointer (a uintptr: a uint's size on every
// platform Go supports).
const ptrSize = bits.UintSize / 8

// readPtr returns the pointer stored at p, in C memory.
func readPtr(p uintptr) uintptr {
	b := libc.GoBytes(p, ptrSize)
	if ptrSize == 4 {
		return uintptr(binary.NativeEndian.Uint32(b))
	}
	return uintptr(binary.NativeEndian.Uint64(b))
}

// openRaw opens a read-only rawConn to the database file at path, which
// must exist (it does: the Store has it open).
func openRaw(path string) (*rawConn, error) {
	c := &rawConn{tls: libc.NewTLS()}
	rc, err := c.open(path)
	if err == nil && rc != sqlite3.SQLITE_OK {
		err = c.err(rc)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	sqlite3.Xsqlite3_busy_timeout(c.tls, c.db, 10000)
	if err := c.exec("PRAGMA query_only = 1"); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// open calls sqlite3_open_v2, which sets the handle even when it fails
// (it must be closed then too).
func (c *rawConn) open(path string) (rc int32, err error) {
	rc, c.db, err = c.call(path, func(name, pdb uintptr) int32 {
		return sqlite3.Xsqlite3_open_v2(c.tls, name, pdb, sqlite3.SQLITE_OPEN_READWRITE|sqlite3.SQLITE_OPEN_NOMUTEX, 0)
	})
	return rc, err
}

// call runs f with s as a C string and a C pointer for f to write to
// (sqlite3_open_v2's and sqlite3_prepare_v2's argument and result), and
// returns f's result code and the pointer f wrote; both C values are
// freed before it returns.
func (c *rawConn) call(s string, f func(cs, out uintptr) int32) (rc int32, ptr uintptr, err error) {
	cs, err := libc.CString(s)
	if err != nil {
		return 0, 0, err
	}
	defer libc.Xfree(c.tls, cs)
	out := libc.Xmalloc(c.tls, ptrSize)
	if out == 0 {
		return 0, 0, errors.New("sqlite: out of memory")
	}
	defer libc.Xfree(c.tls, out)
	rc = f(cs, out)
	return rc, readPtr(out), nil
}

// Close closes the connection, finalizing nothing: every statement is
// finalized by the call that prepared it.
func (c *rawConn) Close() {
	if c.db != 0 {
		sqlite3.Xsqlite3_close_v2(c.tls, c.db)
		c.db = 0
	}
	c.tls.Close()
}

// err is SQLite's message for rc on this connection, with rc: mapError
// reads its Code as the driver's.
func (c *rawConn) err(rc int32) error {
	e := &rawError{code: int(rc), msg: "unknown error"}
	if c.db != 0 {
		e.code = int(sqlite3.Xsqlite3_extended_errcode(c.tls, c.db))
		e.msg = libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, c.db))
	}
	return e
}

// rawError is a rawConn's error: SQLite's extended result code and its
// message (no path, no value).
type rawError struct {
	code int
	msg  string
}

func (e *rawError) Error() string { return fmt.Sprintf("sqlite: %s (%d)", e.msg, e.code) }

// Code is SQLite's extended result code, as sqlite.Error's.
func (e *rawError) Code() int { return e.code }

// exec runs a statement that returns no rows.
func (c *rawConn) exec(query string) error {
	return c.query(query, nil, func(*rawRow) error { return nil })
}

// query runs query with args bound to its ? parameters in order and calls
// fn with each row; fn's error stops it and is returned as it is. The row
// is valid only during the call.
func (c *rawConn) query(query string, args []int64, fn func(*rawRow) error) error {
	stmt, err := c.prepare(query)
	if err != nil {
		return err
	}
	defer sqlite3.Xsqlite3_finalize(c.tls, stmt)
	for i, a := range args {
		if rc := sqlite3.Xsqlite3_bind_int64(c.tls, stmt, int32(i+1), a); rc != sqlite3.SQLITE_OK {
			return c.err(rc)
		}
	}
	row := &rawRow{c: c, stmt: stmt, cols: int(sqlite3.Xsqlite3_column_count(c.tls, stmt))}
	for {
		switch rc := sqlite3.Xsqlite3_step(c.tls, stmt); rc {
		case sqlite3.SQLITE_ROW:
			if err := fn(row); err != nil {
				return err
			}
		case sqlite3.SQLITE_DONE:
			return nil
		default:
			return c.err(rc)
		}
	}
}

func (c *rawConn) prepare(query string) (uintptr, error) {
	rc, stmt, err := c.call(query, func(z, pstmt uintptr) int32 {
		return sqlite3.Xsqlite3_prepare_v2(c.tls, c.db, z, -1, pstmt, 0)
	})
	if err != nil {
		return 0, err
	}
	if rc != sqlite3.SQLITE_OK {
		return 0, c.err(rc)
	}
	if stmt == 0 {
		return 0, errors.New("sqlite: empty statement")
	}
	return stmt, nil
}

// rawRow is the current row of a rawConn's query.
type rawRow struct {
	c    *rawConn
	stmt uintptr
	cols int // the statement's columns
}

// Scan stores the row's columns in dest, in order, for the destinations
// sqlstore.DB.ScanKeyRows names: *string, *[]byte (a copy), *int64,
// *sql.NullString and *sql.NullInt64. For NULLs, texts, empty texts and
// blobs, and integers it gives what database/sql's Rows.Scan gives over
// the driver (but nil for an empty text into a *[]byte); a NULL into a
// *string or an *int64, anything but an integer into an *int64 (the
// driver would parse a text or convert a real), or any other destination
// is an error, never a guess. The key index's columns hold none of those.
func (r *rawRow) Scan(dest ...any) error {
	tls, stmt := r.c.tls, r.stmt
	if r.cols != len(dest) {
		return fmt.Errorf("sqlite: %d destinations for %d columns", len(dest), r.cols)
	}
	for i, d := range dest {
		col := int32(i)
		typ := sqlite3.Xsqlite3_column_type(tls, stmt, col)
		switch d := d.(type) {
		case *string:
			if typ == sqlite3.SQLITE_NULL {
				return fmt.Errorf("sqlite: column %d: NULL into a string", i)
			}
			*d = r.text(col)
		case *sql.NullString:
			if d.Valid = typ != sqlite3.SQLITE_NULL; d.Valid {
				d.String = r.text(col)
			} else {
				d.String = ""
			}
		case *[]byte:
			if typ == sqlite3.SQLITE_NULL {
				*d = nil
				continue
			}
			*d = r.bytes(col)
		case *int64:
			if typ != sqlite3.SQLITE_INTEGER {
				return fmt.Errorf("sqlite: column %d: type %d into an int64", i, typ)
			}
			*d = sqlite3.Xsqlite3_column_int64(tls, stmt, col)
		case *sql.NullInt64:
			switch typ {
			case sqlite3.SQLITE_NULL:
				*d = sql.NullInt64{}
			case sqlite3.SQLITE_INTEGER:
				*d = sql.NullInt64{Int64: sqlite3.Xsqlite3_column_int64(tls, stmt, col), Valid: true}
			default:
				return fmt.Errorf("sqlite: column %d: type %d into an int64", i, typ)
			}
		default:
			return fmt.Errorf("sqlite: column %d: unsupported destination %T", i, d)
		}
	}
	return nil
}

// text is column col as text (a blob's bytes as they are), copied.
func (r *rawRow) text(col int32) string {
	p := sqlite3.Xsqlite3_column_text(r.c.tls, r.stmt, col)
	n := sqlite3.Xsqlite3_column_bytes(r.c.tls, r.stmt, col)
	if p == 0 || n == 0 {
		return ""
	}
	return string(libc.GoBytes(p, int(n)))
}

// bytes is column col as bytes, copied; nil when empty.
func (r *rawRow) bytes(col int32) []byte {
	p := sqlite3.Xsqlite3_column_blob(r.c.tls, r.stmt, col)
	n := sqlite3.Xsqlite3_column_bytes(r.c.tls, r.stmt, col)
	if p == 0 || n == 0 {
		return nil
	}
	return append([]byte(nil), libc.GoBytes(p, int(n))...)
}
