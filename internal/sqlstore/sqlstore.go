// Package sqlstore implements latchkey.Tx and the shared parts of
// latchkey.Store over database/sql. The sqlite and postgres adapters wrap it
// with their own connection setup, migrations, locking and error mapping, so
// the SQL that defines latchkey's data lives in one place.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
)

// Dialect is what differs between the databases.
type Dialect struct {
	// Numbered placeholders ($1, $2, ...) instead of '?'.
	Numbered bool
	// ForUpdate is appended to a SELECT that locks the row it reads in a
	// read-write transaction ("" where the whole database is locked, as in
	// SQLite's BEGIN IMMEDIATE).
	ForUpdate string
	// ForShare locks a row against change and deletion without blocking
	// other transactions that share it (the account a new object goes in).
	ForShare string
	// MapError turns a driver error into a latchkey error, or returns nil
	// when it does not recognise it.
	MapError func(err error) error
}

// DB is a database/sql database with a dialect.
type DB struct {
	Write   *sql.DB // read-write transactions
	Read    *sql.DB // read-only transactions; may be the same as Write
	Dialect Dialect

	// OperationTimeout bounds each transaction (Update, View,
	// RecordUsage), every statement in it, and each UsageSeries, when
	// their context has no earlier deadline; zero or less means no
	// bound. A database that stops answering without closing its
	// connections (a network partition, a hung server) would otherwise
	// hold a management call, and the client that made it, until TCP
	// gives up, minutes later; bounded, the call fails with EUNAVAILABLE
	// and the connection is closed.
	//
	// ScanAccessKeys, ScanKeyIndex and CompactUsage are not bounded: they
	// read or fold every row, which may take longer than any one
	// management call should; their callers' contexts govern them.
	OperationTimeout time.Duration

	// ScanKeyRows, when set, reads ScanKeyIndex's key rows with the
	// driver's own row reading rather than database/sql's (which boxes
	// every column in a driver.Value and converts it again): it runs the
	// read-only query and calls fn with each row's Scan, which takes
	// *string, *[]byte (copied), *int64, *sql.NullString and
	// *sql.NullInt64 destinations. fn's error stops it and is returned as
	// it is. The PostgreSQL store sets it to read through pgx.
	ScanKeyRows func(ctx context.Context, query string, fn func(scan func(dest ...any) error) error) error

	// ScanKeyParts, when set, reads ScanKeyIndex's key rows in parts
	// parts at once, each on a connection and a goroutine of its own,
	// for an index load that decodes on more than one core. It runs
	// query (which has no WHERE clause) restricted to each part, the
	// parts together holding every row exactly once, all of them read
	// as of one point in time (so that a row changed meanwhile is
	// neither read twice nor missed), and calls fn(part, scan) for each
	// row from that part's goroutine; scan takes what ScanKeyRows' takes.
	// fn's error stops every part and is returned as it is. It may read
	// fewer parts than asked (a table too small to split) but never
	// calls fn with a part outside [0, parts). It is also called with
	// parts 1, on one core.
	ScanKeyParts func(ctx context.Context, query string, parts int, fn func(part int, scan func(dest ...any) error) error) error

	// EstimateKeys, when set, returns about how many rows access_keys
	// holds, without counting them (from the store's statistics, or the
	// span of its row numbers): an index load into an empty index grows
	// its tables toward it. It may be off either way.
	EstimateKeys func(ctx context.Context) (int, error)

	// stmts holds the statements Prepared made on Write, by query.
	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
}

// Prepared returns query prepared on Write, made on the first call and
// kept: for the statements of a write that runs every second (the usage
// flush), which would otherwise be compiled again each time (on SQLite,
// about 90 µs a statement, 8% of the flush's CPU). Call it outside a
// transaction: on a pool of one connection (SQLite's writer), preparing
// inside one would wait for the connection the transaction holds. Run the
// statement in a transaction with Tx.execStmt, which finds it prepared on
// the transaction's connection (or prepares it there once).
func (db *DB) Prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	if st := db.stmts[query]; st != nil {
		return st, nil
	}
	ctx, cancel := db.Bound(ctx)
	defer cancel()
	st, err := db.Write.PrepareContext(ctx, query)
	if err != nil {
		return nil, db.Err(err)
	}
	if db.stmts == nil {
		db.stmts = map[string]*sql.Stmt{}
	}
	db.stmts[query] = st
	return st, nil
}

// RunParts runs run(i) for every part i in [0, parts), each on a
// goroutine of its own, for a store's ScanKeyParts. A part's error calls
// cancel, which must stop the other parts, and RunParts returns the first
// error that is not another part's cancellation, or else the first error.
func RunParts(parts int, cancel context.CancelFunc, run func(i int) error) error {
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for i := range parts {
		wg.Go(func() {
			if errs[i] = run(i); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Bound returns ctx with the operation timeout, unless ctx ends sooner.
func (db *DB) Bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if db.OperationTimeout <= 0 {
		return ctx, func() {}
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= db.OperationTimeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, db.OperationTimeout)
}

// Update runs fn in a read-write transaction, within the operation
// timeout.
func (db *DB) Update(ctx context.Context, fn func(latchkey.Tx) error) error {
	ctx, cancel := db.Bound(ctx)
	defer cancel()
	return db.run(ctx, db.Write, false, fn)
}

// View runs fn in a read-only transaction, within the operation timeout.
func (db *DB) View(ctx context.Context, fn func(latchkey.Tx) error) error {
	ctx, cancel := db.Bound(ctx)
	defer cancel()
	return db.run(ctx, db.Read, true, fn)
}

// run runs fn in a transaction that ends when ctx does: each statement
// runs within ctx as well as its caller's context (see Tx.within).
func (db *DB) run(ctx context.Context, sdb *sql.DB, readOnly bool, fn func(latchkey.Tx) error) error {
	// Cancelled when the transaction ends, which releases the contexts
	// of its statements.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stx, err := sdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: readOnly})
	if err != nil {
		return db.Err(err)
	}
	// Deferred so that a panic in fn also ends the transaction: otherwise
	// it stays open, holding its connection and locks (for SQLite, the one
	// writing connection) until its context ends, which may be never.
	// After Commit, Rollback is a no-op. It runs before cancel, so that
	// a rollback keeps the connection.
	defer func() { _ = stx.Rollback() }()
	t := &Tx{tx: stx, ctx: ctx, d: &db.Dialect, writable: !readOnly}
	if err := fn(t); err != nil {
		return err
	}
	if err := stx.Commit(); err != nil {
		return db.Err(err)
	}
	return nil
}

// Err maps a driver error to a latchkey error: the dialect's mapping first,
// then context and connection errors, then EINTERNAL.
func (db *DB) Err(err error) error { return mapErr(&db.Dialect, err) }

func mapErr(d *Dialect, err error) error {
	if err == nil {
		return nil
	}
	var le *latchkey.Error
	if errors.As(err, &le) {
		return err
	}
	if d.MapError != nil {
		if m := d.MapError(err); m != nil {
			return m
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return latchkey.Unavailable(err)
	}
	return latchkey.Internal(err)
}

// Tx is one transaction; it implements latchkey.Tx.
//
// Its statements go through exec, prepare, execStmt, query and queryRow,
// which run them within the transaction's context (see within); none uses
// tx directly (TestStatementsWithinTx).
type Tx struct {
	tx       *sql.Tx
	ctx      context.Context // ends with the transaction, or at its bound
	d        *Dialect
	writable bool
}

var _ latchkey.Tx = (*Tx)(nil)

// q rewrites '?' placeholders for dialects with numbered ones.
func (t *Tx) q(query string) string { return rebind(t.d, query) }

func rebind(d *Dialect, query string) string {
	if !d.Numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

func (t *Tx) forUpdate() string {
	if t.writable && t.d.ForUpdate != "" {
		return " " + t.d.ForUpdate
	}
	return ""
}

// within returns ctx, ended also when the transaction's context ends.
// Statements run on it. Bounding BEGIN and COMMIT alone is not enough: a
// statement waiting on its caller's context alone would hold the
// connection past the bound, and database/sql's rollback at the deadline
// waits for that statement, for ever over a partition.
//
// The context is released when the transaction ends, not before: the
// rows of a query are read after the call that ran it returns.
func (t *Tx) within(ctx context.Context) context.Context {
	if ctx == t.ctx {
		return ctx
	}
	ctx, cancel := context.WithCancelCause(ctx)
	context.AfterFunc(t.ctx, func() { cancel(context.Cause(t.ctx)) })
	return ctx
}

func (t *Tx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := checkText(args); err != nil {
		return nil, err
	}
	res, err := t.tx.ExecContext(t.within(ctx), t.q(query), args...)
	if err != nil {
		return nil, mapErr(t.d, err)
	}
	return res, nil
}

// execStmt runs st, a statement of DB.Prepared, in the transaction.
func (t *Tx) execStmt(ctx context.Context, st *sql.Stmt, args ...any) (sql.Result, error) {
	if err := checkText(args); err != nil {
		return nil, err
	}
	ctx = t.within(ctx)
	res, err := t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	if err != nil {
		return nil, mapErr(t.d, err)
	}
	return res, nil
}

func (t *Tx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := checkText(args); err != nil {
		return nil, err
	}
	rows, err := t.tx.QueryContext(t.within(ctx), t.q(query), args...)
	if err != nil {
		return nil, mapErr(t.d, err)
	}
	return rows, nil
}

// execOne runs a statement and reports whether it changed exactly one row:
// whether this transaction won a claim or a conditional update that a
// concurrent one may have made first.
func (t *Tx) execOne(ctx context.Context, query string, args ...any) (bool, error) {
	res, err := t.exec(ctx, query, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, latchkey.Internal(err)
	}
	return n == 1, nil
}

// mustAffect returns ENOTFOUND when res changed no row.
func mustAffect(res sql.Result, notFound *latchkey.Error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return latchkey.Internal(err)
	}
	if n == 0 {
		return notFound
	}
	return nil
}

func pageSize(limit int) int {
	switch {
	case limit <= 0:
		return 100
	case limit > 1000:
		return 1000
	}
	return limit
}
