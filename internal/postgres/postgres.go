// Package postgres is latchkey's store on PostgreSQL, for running any
// number of stateless latchkey replicas against one database.
//
// It connects with pgx (a pgxpool.Pool) and runs the SQL shared with the
// SQLite store (internal/sqlstore) through database/sql on that pool. Row
// locks (SELECT ... FOR UPDATE) keep the read-modify-write rules, such as
// two keys per application, under concurrent writers on every replica.
//
// Migrations are embedded and applied by Open under an advisory lock, so
// replicas may start together. Triggers in the schema NOTIFY every change
// to a key; a Watcher LISTENs and keeps a replica's verification index
// current, with a periodic full resync for anything it missed.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLock is the key of the advisory lock held while migrating: the
// bytes of "latchkey". Advisory locks are per database.
const migrationLock int64 = 0x6c617463686b6579

// DefaultOperationTimeout is Store.OperationTimeout after Open, and the
// connect timeout when the database URL sets none.
const DefaultOperationTimeout = 5 * time.Second

// idleInTransactionTimeout is the server's idle_in_transaction_session_timeout
// on the store's connections when the database URL sets none (see Open).
const idleInTransactionTimeout = 2 * DefaultOperationTimeout

// Store is the PostgreSQL implementation of latchkey.Store.
//
// Its OperationTimeout (sqlstore.DB's) bounds each transaction, every
// statement in it, usage writes and reads, and Ping. Open sets it to
// DefaultOperationTimeout; zero or less means no bound.
type Store struct {
	*sqlstore.DB
	pool      *pgxpool.Pool
	closeOnce sync.Once
}

var _ latchkey.Store = (*Store)(nil)

var dialect = sqlstore.Dialect{Numbered: true, ForUpdate: "FOR UPDATE", ForShare: "FOR SHARE", MapError: mapError}

// Open connects to the database at url (postgres://user:pass@host/db?...,
// or key=value pairs; pgxpool's pool_* parameters are accepted) and applies
// pending migrations. Returns EUNAVAILABLE when the server cannot be
// reached, and an error when the database was migrated by a newer latchkey.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn redacts the password from its parse errors.
		return nil, latchkey.Errorf(latchkey.EINVALID, "postgres: the database URL is not valid").WithCause(err)
	}
	// The row locks keep the rules only under READ COMMITTED, where each
	// statement sees what was committed before it: FindApplication locks
	// the application, then counts its keys in a second statement that
	// must see a key committed by the transaction it waited for. A server
	// or database default of REPEATABLE READ would count from a snapshot
	// taken before the wait, so the store pins the level.
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "read committed"
	// A replica cut off mid-transaction (a partition) gives the
	// transaction up after the operation timeout, but the server hears
	// of it only when TCP keepalives fail, two hours by default, and
	// keeps its row locks meanwhile: every other replica's writes to
	// those rows would fail. latchkey runs a transaction's statements
	// back to back, so one idle this long has been abandoned, and the
	// server ends it.
	if _, ok := cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"]; !ok {
		cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt(idleInTransactionTimeout.Milliseconds(), 10)
	}
	// Without a connect_timeout in the URL, a server that accepts TCP
	// connections and then says nothing (a partition, a hung host) would
	// hold every new connection, and the pool's callers, indefinitely.
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultOperationTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connecting: %w", unavailable(err))
	}
	db := stdlib.OpenDBFromPool(pool)
	s := &Store{DB: &sqlstore.DB{Write: db, Read: db, Dialect: dialect, OperationTimeout: DefaultOperationTimeout}, pool: pool}
	s.ScanKeyRows = s.scanKeyRows
	s.ScanKeyParts = s.scanKeyParts
	s.EstimateKeys = s.estimateKeys
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// scanKeyRows is the store's sqlstore.DB.ScanKeyRows: the index's load
// reads every key, and pgx's own row reading scans each column straight
// into its destination, where database/sql over pgx's stdlib boxes it in
// a driver.Value first and converts it again.
func (s *Store) scanKeyRows(ctx context.Context, query string, fn func(scan func(dest ...any) error) error) error {
	return scanPart(ctx, s.pool, query, fn)
}

// estimateKeys is the store's sqlstore.DB.EstimateKeys: the rows the
// statistics system counts live in access_keys (from the inserts and
// deletes each backend reports, within about a second; kept across a
// clean restart, lost in a crash), or the planner's estimate when that is
// larger (after a statistics reset, or on a standby).
func (s *Store) estimateKeys(ctx context.Context) (int, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT greatest(
		coalesce((SELECT n_live_tup FROM pg_stat_user_tables WHERE relid = 'access_keys'::regclass), 0),
		(SELECT reltuples::bigint FROM pg_class WHERE oid = 'access_keys'::regclass))`).Scan(&n)
	return int(n), err
}

// minPartBlocks is the fewest pages of access_keys a part of
// scanKeyParts spans: a smaller table is read in one part.
const minPartBlocks = 16

// scanKeyParts is the store's sqlstore.DB.ScanKeyParts: the index's load
// reads the key rows in ranges of the table's pages (ctid ranges, a TID
// range scan each), on a connection each, all in one snapshot: the first
// connection's REPEATABLE READ transaction exports it and the others take
// it up (SET TRANSACTION SNAPSHOT), as pg_dump's parallel workers do. A
// key updated while the parts are read is read once, in the version that
// snapshot holds, whichever page holds which version. The snapshot is
// taken after the call begins: after the change feed's LISTEN, so a change
// it misses is notified. One part asked for (on one core) is one query,
// as scanKeyRows reads: one statement is its own snapshot, and it needs
// no snapshot to export (which a standby before PostgreSQL 10, or a
// compatible server, may refuse).
func (s *Store) scanKeyParts(ctx context.Context, query string, parts int, fn func(part int, scan func(dest ...any) error) error) error {
	if parts <= 1 {
		return scanPart(ctx, s.pool, query, func(scan func(dest ...any) error) error { return fn(0, scan) })
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	txs := make([]pgx.Tx, 0, parts)
	defer func() {
		// Read-only: ending it changes nothing. A connection whose
		// query was cancelled is closed by pgx instead.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		for _, tx := range txs {
			_ = tx.Rollback(rctx)
		}
	}()
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	txs = append(txs, tx)
	var snapshot string
	var blocks int64
	if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot(), pg_relation_size('access_keys'::regclass) / current_setting('block_size')::bigint`).
		Scan(&snapshot, &blocks); err != nil {
		return err
	}
	if blocks < int64(parts)*minPartBlocks {
		parts = 1
	}
	// The snapshot's name is the server's (hex digits and dashes); it is
	// checked before it goes into a statement, which takes no parameter.
	for _, c := range snapshot {
		if (c < '0' || c > '9') && (c < 'A' || c > 'F') && c != '-' {
			return fmt.Errorf("postgres: unexpected snapshot name %q", snapshot)
		}
	}
	// A part that cannot join the snapshot (a pooler in front of the
	// server, no connection to spare) is left out: the parts that have
	// it share the table, down to the first alone.
	for len(txs) < parts {
		tx, err := s.pool.BeginTx(ctx, opts)
		if err == nil {
			if _, err = tx.Exec(ctx, `SET TRANSACTION SNAPSHOT '`+snapshot+`'`); err != nil {
				_ = tx.Rollback(ctx)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			parts = len(txs)
			break
		}
		txs = append(txs, tx)
	}
	// Part i reads the pages from bound i up to bound i+1; the first and
	// the last are open below and above (the table may grow meanwhile;
	// the snapshot sees none of it, but its pages may be new).
	bound := func(i int) string { return `'(` + strconv.FormatInt(blocks*int64(i)/int64(parts), 10) + `,0)'::tid` }
	return sqlstore.RunParts(parts, cancel, func(i int) error {
		where := ""
		switch {
		case parts == 1:
		case i == 0:
			where = ` WHERE ctid < ` + bound(1)
		case i == parts-1:
			where = ` WHERE ctid >= ` + bound(i)
		default:
			where = ` WHERE ctid >= ` + bound(i) + ` AND ctid < ` + bound(i+1)
		}
		return scanPart(ctx, txs[i], query+where, func(scan func(dest ...any) error) error { return fn(i, scan) })
	})
}

// querier is what scanPart reads with: the pool, or a part's
// transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// scanPart runs query on q and calls fn with each row's Scan.
func scanPart(ctx context.Context, q querier, query string, fn func(scan func(dest ...any) error) error) error {
	rows, err := q.Query(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

// unavailable returns err mapped to a latchkey error if it is one of the
// errors mapError knows, and EUNAVAILABLE otherwise.
func unavailable(err error) error {
	if m := mapError(err); m != nil {
		return m
	}
	return latchkey.Unavailable(err)
}

// migrate applies pending migrations while holding an advisory lock on a
// connection of its own, so that replicas starting at once take turns: the
// first migrates, the others then find nothing to do.
func (s *Store) migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return err
	}
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %w", unavailable(err))
	}
	// The lock belongs to the session: closing the connection afterwards
	// releases it, however migrate returns.
	conn := pc.Hijack()
	defer closeConn(ctx, conn)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("postgres: waiting for the migration lock: %w", unavailable(err))
	}

	// A database migrated by a newer latchkey is refused rather than
	// misread.
	var have int
	err = conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table: a new database
		err = nil
	}
	if err != nil {
		return fmt.Errorf("postgres: reading the schema version: %w", s.Err(err))
	}
	if want := sqlstore.LatestVersion(sub); have > want {
		return fmt.Errorf("postgres: database schema version %d is newer than this latchkey knows (%d); upgrade latchkey", have, want)
	}
	if _, err := sqlstore.Migrate(ctx, s.Write, dialect, sub); err != nil {
		if m := mapError(err); latchkey.ErrorCode(m) == latchkey.EUNAVAILABLE {
			return fmt.Errorf("postgres: migrating: %w", m)
		}
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// closeConn closes a connection taken out of the pool, even when ctx has
// ended, without waiting long for a server that does not answer.
func closeConn(ctx context.Context, conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// Pool returns the connection pool, for callers that need pgx itself.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping returns nil when the database answers and accepts writes. A server
// in recovery (a standby) or with default_transaction_read_only set gives
// EUNAVAILABLE.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.Bound(ctx)
	defer cancel()
	var readOnly string
	if err := s.pool.QueryRow(ctx, `SELECT current_setting('transaction_read_only')`).Scan(&readOnly); err != nil {
		return unavailable(err)
	}
	if readOnly != "off" {
		return latchkey.Errorf(latchkey.EUNAVAILABLE, "the database accepts no writes (a standby, or read-only by default)")
	}
	return nil
}

// Close closes the database/sql handle and the pool. It may be called more
// than once.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		err = s.Write.Close()
		s.pool.Close()
	})
	return err
}

// PostgreSQL error codes that mapError acts on.
// https://www.postgresql.org/docs/current/errcodes-appendix.html
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeCheckViolation      = "23514"
	codeNotNullViolation    = "23502"
	codeBadCharacter        = "22021" // character_not_in_repertoire: NUL, or not UTF-8
	codeUntranslatable      = "22P05"
	codeReadOnlyTransaction = "25006"
	codeIdleInTransaction   = "25P03" // the server ended a transaction left idle
	codeSerialization       = "40001"
	codeDeadlock            = "40P01"
	codeLockNotAvailable    = "55P03"
)

// mapError turns a pgx or PostgreSQL error into a latchkey error, or
// returns nil when it does not recognise it.
func mapError(err error) error {
	// Failing to connect is EUNAVAILABLE whatever the server said (it may
	// be shutting down, out of connections, or refusing this database).
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return latchkey.Unavailable(err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case codeUniqueViolation:
			return latchkey.Errorf(latchkey.EEXISTS, "already exists").WithCause(err)
		case codeForeignKeyViolation:
			return latchkey.Errorf(latchkey.ENOTFOUND, "referenced object not found").WithCause(err)
		case codeCheckViolation, codeNotNullViolation:
			return latchkey.Errorf(latchkey.EINVALID, "a value breaks a rule of the schema").WithCause(err)
		case codeBadCharacter, codeUntranslatable:
			return latchkey.Errorf(latchkey.EINVALID, "text values must be valid UTF-8 without NUL bytes").WithCause(err)
		case codeReadOnlyTransaction:
			return latchkey.Errorf(latchkey.EUNAVAILABLE, "the database cannot be written right now (read-only transaction or standby)").WithCause(err)
		case codeIdleInTransaction:
			return latchkey.Unavailable(err)
		case codeSerialization, codeDeadlock, codeLockNotAvailable:
			return latchkey.Errorf(latchkey.EUNAVAILABLE, "the database is busy; retry").WithCause(err)
		}
		switch pe.Code[:2] {
		case "08", // connection exception
			"53", // insufficient resources: disk full, too many connections
			"57", // operator intervention: shutdown, cannot connect now, query canceled
			"58": // system error: I/O
			return latchkey.Unavailable(err)
		}
		return nil
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne),
		pgconn.Timeout(err),
		pgconn.SafeToRetry(err),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return latchkey.Unavailable(err)
	}
	return nil
}
