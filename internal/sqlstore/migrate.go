package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// Migrate applies the *.sql files of fsys (named NNNN_description.sql) that
// the database has not seen yet, in order, each in its own transaction that
// also records its version in schema_migrations. It returns the versions it
// applied. Callers that may run concurrently (several replicas starting at
// once) hold a lock around it.
func Migrate(ctx context.Context, db *sql.DB, d Dialect, fsys fs.FS) ([]int, error) {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("creating schema_migrations: %w", err)
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var applied []int
	for _, name := range names {
		v, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return applied, fmt.Errorf("migration %s: name must start with a version number", name)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return applied, err
		}
		done, err := applyOne(ctx, db, d, v, string(body))
		if err != nil {
			return applied, fmt.Errorf("migration %s: %w", name, err)
		}
		if done {
			applied = append(applied, v)
		}
	}
	return applied, nil
}

func applyOne(ctx context.Context, db *sql.DB, d Dialect, version int, body string) (bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback() }()
	var n int
	if err := tx.QueryRowContext(ctx, rebind(&d, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), version).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, rebind(&d, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), version, toMicros(nowFunc())); err != nil {
		return false, err
	}
	return true, tx.Commit()
}

// LatestVersion returns the highest version in fsys, so a server can refuse a
// database that a newer latchkey has migrated past.
func LatestVersion(fsys fs.FS) int {
	names, _ := fs.Glob(fsys, "*.sql")
	max := 0
	for _, name := range names {
		if v, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0]); err == nil && v > max {
			max = v
		}
	}
	return max
}
