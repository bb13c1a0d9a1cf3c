// Package sqlite is latchkey's embedded store: one SQLite file in WAL mode,
// through the pure-Go modernc.org/sqlite driver (no cgo).
//
// Writes go through a single connection that begins transactions with
// BEGIN IMMEDIATE, so read-modify-write rules (two keys per application,
// delete only when Inactive) hold without row locks. Reads use a pool.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/sqlstore"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Store is the SQLite implementation of latchkey.Store.
type Store struct {
	*sqlstore.DB
	path string
	// ckpt is a connection of its own for WAL checkpoints, which the
	// usage flush runs (see RecordUsage); nil for ":memory:".
	ckpt *sql.DB

	// ckptMu guards the usage written since the last checkpoint.
	ckptMu   sync.Mutex
	ckptKeys int       // keys written by RecordUsage since then
	ckptAt   time.Time // when it ran
}

// checkpointKeys and checkpointEvery pace the usage flush's checkpoints:
// one once the flushes since the last have written checkpointKeys keys
// (a full flush of the recorder's, verify.DefaultMaxBatch) or once
// checkpointEvery has passed, whichever comes first. A checkpoint after
// each of a flush's transactions (8 for a full flush) copied the pages
// they share (the B-tree's inner pages, the leaves where one transaction
// ended and the next began) 8 times, and fsynced the database file 8
// times: about 30% of the flush's CPU at 100,000 keys (docs/benchmarks.md,
// "Usage flush: fewer JSON fields, fewer checkpoints"). A full flush is
// a few hundred WAL pages, far below the writer's own checkpoint at
// 10,000, so management writes still never run one.
const (
	checkpointKeys  = 2000
	checkpointEvery = time.Second
)

var _ latchkey.Store = (*Store)(nil)

var dialect = sqlstore.Dialect{MapError: mapError}

// Open opens (creating if needed) the database file at path, with its
// directory, and applies pending migrations. The file is created with mode
// 0600: it holds digests, not secrets, but also every key's metadata.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fileError(path, fmt.Errorf("sqlite: creating database directory: %w", err))
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fileError(path, fmt.Errorf("sqlite: opening %s: %w", path, err))
		}
		f.Close()
	}
	pragmas := "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + pragmas
	// The writing connection checkpoints the WAL itself only as a safety
	// net, past 10,000 pages (40 MB): see RecordUsage. It keeps up to
	// 32 MiB of pages (SQLite's default is 2 MiB, less than one usage
	// transaction dirties on a large table, which then spills pages to
	// the WAL before its commit and reads them back), and its statement
	// journal in memory: a usage batch is one UPDATE of many rows, whose
	// statement journal would otherwise be a temporary file written page
	// by page.
	write, err := sql.Open("sqlite", dsn+"&_txlock=immediate&_pragma=wal_autocheckpoint(10000)&_pragma=cache_size(-32768)&_pragma=temp_store(MEMORY)")
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	read := write
	var ckpt *sql.DB
	if path != ":memory:" {
		read, err = sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
		if err != nil {
			write.Close()
			return nil, err
		}
		read.SetMaxOpenConns(8)
		read.SetMaxIdleConns(8)
		ckpt, err = sql.Open("sqlite", dsn)
		if err != nil {
			write.Close()
			read.Close()
			return nil, err
		}
		ckpt.SetMaxOpenConns(1)
		ckpt.SetMaxIdleConns(1)
	}
	s := &Store{DB: &sqlstore.DB{Write: write, Read: read, Dialect: dialect}, path: path, ckpt: ckpt}
	if read != write {
		s.ScanKeyParts = s.scanKeyParts
	}
	s.EstimateKeys = s.estimateKeys
	if err := s.migrate(ctx); err != nil {
		s.Close()
		if m := mapError(err); latchkey.ErrorCode(m) == latchkey.EUNAVAILABLE {
			return nil, m
		}
		return nil, err
	}
	return s, nil
}

// fileError turns a permission error on the database file or its directory
// into EUNAVAILABLE with a message that says what to fix.
func fileError(path string, err error) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return latchkey.Errorf(latchkey.EUNAVAILABLE,
			"the database file %s cannot be opened for writing; check the permissions of the file and its directory", path).WithCause(err)
	}
	return err
}

func (s *Store) migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return err
	}
	var have int
	// A database migrated by a newer latchkey is refused rather than
	// misread.
	_ = s.Write.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have)
	if want := sqlstore.LatestVersion(sub); have > want {
		return fmt.Errorf("sqlite: database schema version %d is newer than this latchkey knows (%d); upgrade latchkey", have, want)
	}
	if _, err := sqlstore.Migrate(ctx, s.Write, dialect, sub); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.Write.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return latchkey.Unavailable(err)
	}
	return nil
}

// RecordUsage implements latchkey.Store. After writing, it copies what
// the WAL holds back into the database file (a passive checkpoint, on a
// connection of its own, which neither waits for nor blocks writers).
// Usage is most of what is written under load, a page per key: were the
// checkpoints left to SQLite, they would run every 1,000 pages in
// whichever commit crossed the line, most often a management write's,
// which would then wait tens of milliseconds for it.
func (s *Store) RecordUsage(ctx context.Context, batch []latchkey.UsageUpdate) error {
	if err := s.DB.RecordUsage(ctx, batch); err != nil {
		return err
	}
	if s.ckpt != nil && len(batch) > 0 && s.checkpointDue(len(batch)) {
		// A failed checkpoint loses nothing: the WAL keeps the pages, and
		// the next checkpoint, or the writer's own past 10,000 pages,
		// copies them.
		_, _ = s.ckpt.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
	}
	return nil
}

// checkpointDue counts n keys written and reports whether the usage
// flush should checkpoint now (see checkpointKeys).
func (s *Store) checkpointDue(n int) bool {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	s.ckptKeys += n
	now := time.Now()
	if s.ckptKeys < checkpointKeys && now.Sub(s.ckptAt) < checkpointEvery {
		return false
	}
	s.ckptKeys, s.ckptAt = 0, now
	return true
}

// Close closes the connection pools.
func (s *Store) Close() error {
	err := s.Write.Close()
	if s.Read != s.Write {
		err = errors.Join(err, s.Read.Close())
	}
	if s.ckpt != nil {
		err = errors.Join(err, s.ckpt.Close())
	}
	return err
}

// ParseURL returns the file path of a sqlite: database URL. It accepts
// "sqlite:/abs/path.db", "sqlite:relative.db", "sqlite:///abs/path.db" and
// "sqlite://./relative.db".
func ParseURL(u string) (string, bool) {
	rest, ok := strings.CutPrefix(u, "sqlite:")
	if !ok {
		return "", false
	}
	if p, ok := strings.CutPrefix(rest, "//"); ok {
		rest = p
	}
	if rest == "" {
		return "", false
	}
	return rest, true
}

func mapError(err error) error {
	// The driver's *sqlite.Error, or a rawConn's *rawError.
	var se interface{ Code() int }
	if !errors.As(err, &se) {
		return nil
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return latchkey.Errorf(latchkey.EEXISTS, "already exists").WithCause(err)
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return latchkey.Errorf(latchkey.ENOTFOUND, "referenced object not found").WithCause(err)
	case sqlite3.SQLITE_CONSTRAINT_CHECK:
		return latchkey.Errorf(latchkey.EINVALID, "a value breaks a rule of the schema").WithCause(err)
	}
	// The driver reports extended result codes (SQLITE_BUSY_SNAPSHOT,
	// SQLITE_READONLY_DIRECTORY, SQLITE_CANTOPEN_ISDIR, ...): the rest is
	// decided on the primary code in the low byte.
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL:
		return latchkey.Errorf(latchkey.EUNAVAILABLE, "the database disk is full; free space and retry").WithCause(err)
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN:
		return latchkey.Errorf(latchkey.EUNAVAILABLE, "the database cannot be written; check its file and directory permissions").WithCause(err)
	case sqlite3.SQLITE_IOERR:
		// The operating system refused a read or write of the database
		// or its WAL: a failing or read-only disk, an immutable file.
		return latchkey.Errorf(latchkey.EUNAVAILABLE, "the database cannot be written or read (I/O error); check the disk and the database file's permissions").WithCause(err)
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return latchkey.Errorf(latchkey.EUNAVAILABLE, "the database is busy; retry").WithCause(err)
	}
	return nil
}

// minPartRows is the fewest rowids a part of scanKeyParts spans: a
// smaller table is read in one part.
const minPartRows = 1_000

// Test hooks: partSnapshot(i) is called by scanKeyParts once part i has
// its snapshot (while the write lock is held, when it was taken);
// snapshotTaken once every part has its snapshot and the write lock, if
// any, is released, before a row is read.
var (
	partSnapshot  func(part int)
	snapshotTaken func()
)

// rowidSpanSQL reads access_keys' lowest and highest rowid, each from one
// end of the table's b-tree. The two in one query ("SELECT min(rowid),
// max(rowid)") are not optimised as one of them alone is: SQLite reads
// the whole of the table's smallest index for them (1.1 to 2.0 s at ten
// million keys, in SQLite's C build), once per part of a load.
const rowidSpanSQL = `SELECT (SELECT min(rowid) FROM access_keys), (SELECT max(rowid) FROM access_keys)`

// estimateKeys is the store's sqlstore.DB.EstimateKeys: the span of
// access_keys' rowids, which is the number of rows unless keys were
// deleted (SQLite gives a new row the highest rowid plus one).
func (s *Store) estimateKeys(ctx context.Context) (int, error) {
	var lo, hi sql.NullInt64
	if err := s.Read.QueryRowContext(ctx, rowidSpanSQL).Scan(&lo, &hi); err != nil || !lo.Valid {
		return 0, err
	}
	return int(hi.Int64 - lo.Int64 + 1), nil
}

// scanKeyParts is the store's sqlstore.DB.ScanKeyParts: the index's load
// reads the key rows in rowid ranges, each on a connection and in a read
// transaction of its own. The connections are rawConns (SQLite's API
// without the driver's per-call mutex; see rawConn). The parts'
// transactions begin while the writing connection holds the database's
// write lock (BEGIN IMMEDIATE), so no commit, this process's or
// another's, falls between them: every part reads as of the same commit,
// and a key changed, moved (a VACUUM renumbers rowids) or replaced by
// another meanwhile is read once, in the version that commit holds. When
// the write lock cannot be had (another process holds it past the busy
// timeout) the rows are read in one part. When one part is asked for
// (on one core) it is one transaction, its own snapshot: it takes no
// write lock, and waits for no writer. (A table found too small to split
// is read in one part too, after the lock was taken.)
func (s *Store) scanKeyParts(ctx context.Context, query string, parts int, fn func(part int, scan func(dest ...any) error) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parts = max(parts, 1)
	conns := make([]*rawConn, 0, parts)
	defer func() {
		// Read-only: closing ends their transactions and changes nothing.
		for _, c := range conns {
			c.Close()
		}
	}()
	var lock *sql.Tx
	if parts > 1 {
		var err error
		lock, err = s.Write.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			parts = 1
		}
	}
	var lo, hi sql.NullInt64
	for len(conns) < parts {
		c, err := openRaw(s.path)
		if err == nil && ctx.Err() != nil {
			c.Close()
			err = ctx.Err()
		}
		if err == nil {
			conns = append(conns, c)
			if err = c.exec("BEGIN"); err == nil {
				// The transaction's snapshot is taken by its first read.
				err = c.query(rowidSpanSQL, nil, func(r *rawRow) error { return r.Scan(&lo, &hi) })
			}
			if err == nil && partSnapshot != nil {
				partSnapshot(len(conns) - 1)
			}
		}
		if err != nil {
			if lock != nil {
				_ = lock.Rollback()
			}
			return err
		}
	}
	if lock != nil {
		if err := lock.Rollback(); err != nil {
			return err
		}
	}
	if snapshotTaken != nil {
		snapshotTaken()
	}
	if !lo.Valid || hi.Int64-lo.Int64 < int64(parts)*minPartRows {
		parts = 1
	}
	// Part i reads rowids from bound i up to bound i+1; the first and the
	// last are open below and above.
	span := (hi.Int64 - lo.Int64 + 1) / int64(parts)
	bound := func(i int) int64 { return lo.Int64 + int64(i)*span }
	return sqlstore.RunParts(parts, cancel, func(i int) error {
		where, args := "", []int64(nil)
		switch {
		case parts == 1:
		case i == 0:
			where, args = ` WHERE rowid < ?`, []int64{bound(1)}
		case i == parts-1:
			where, args = ` WHERE rowid >= ?`, []int64{bound(i)}
		default:
			where, args = ` WHERE rowid >= ? AND rowid < ?`, []int64{bound(i), bound(i + 1)}
		}
		n := 0
		var scan func(dest ...any) error // the row's Scan, made once
		return conns[i].query(query+where, args, func(r *rawRow) error {
			// A row is read in microseconds: the context is looked at
			// every 1,024 of them.
			if n++; n%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			if scan == nil {
				scan = r.Scan
			}
			return fn(i, scan)
		})
	})
}
