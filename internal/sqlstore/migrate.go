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
// also records its version in schema_migrations, after its preflight check
// if it has one. It returns the versions it applied. Callers that may run
// concurrently (several replicas starting at once) hold a lock around it.
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
	if check := preflights[version]; check != nil {
		if err := check(ctx, tx); err != nil {
			return false, err
		}
	}
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return false, err
	}
	if fill := postflights[version]; fill != nil {
		if err := fill(ctx, tx, &d); err != nil {
			return false, err
		}
	}
	if _, err := tx.ExecContext(ctx, rebind(&d, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), version, toMicros(nowFunc())); err != nil {
		return false, err
	}
	return true, tx.Commit()
}

// preflights check, before a migration and in its transaction, for data
// that would make it fail with a database error nobody could act on, and
// refuse it with a message that says what to fix. Both stores number their
// migrations alike and share these.
var preflights = map[int]func(ctx context.Context, tx *sql.Tx) error{
	6: applicationNamesFoldCase,
}

// postflights complete a migration in its transaction, after its SQL, with
// what SQL alone cannot do in both databases.
var postflights = map[int]func(ctx context.Context, tx *sql.Tx, d *Dialect) error{
	8: backfillAuditChain,
}

// applicationNamesFoldCase refuses migration 6, which makes application
// names unique without regard to case, while an account holds names that
// differ only in case, and names them.
func applicationNamesFoldCase(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT a.account, a.name FROM applications a
		WHERE EXISTS (SELECT 1 FROM applications b WHERE b.account = a.account AND lower(b.name) = lower(a.name) AND b.name <> a.name)
		ORDER BY a.account, lower(a.name), a.name`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		groups     []string
		last, list string
	)
	flush := func() {
		if list != "" {
			groups = append(groups, list)
		}
	}
	for rows.Next() {
		var account, name string
		if err := rows.Scan(&account, &name); err != nil {
			return err
		}
		key := account + "\x00" + strings.ToLower(name)
		if key != last {
			flush()
			last, list = key, fmt.Sprintf("account %q: %q", account, name)
			continue
		}
		list += fmt.Sprintf(", %q", name)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	flush()
	if len(groups) == 0 {
		return nil
	}
	more := ""
	if len(groups) > 20 {
		groups, more = groups[:20], fmt.Sprintf("; and %d more", len(groups)-20)
	}
	return fmt.Errorf("application names are now unique without regard to case, and this database holds "+
		"applications whose names differ only in case (%s%s). Nothing was changed. Keep one of each: with the "+
		"latchkey that wrote this database, move the clients of the others to it, delete their access keys "+
		"and then the applications (delete-access-key, delete-application), and start this version again",
		strings.Join(groups, "; "), more)
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
