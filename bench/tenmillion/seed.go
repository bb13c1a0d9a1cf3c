package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/postgres"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
	_ "modernc.org/sqlite" // the driver the store uses, for the bulk inserts
)

// keyID is key i's access key ID: LKIA and 16 base32 characters of a
// bijection of i, so that IDs are unique and spread over the primary key
// as random ones are, and the hot keys' rows can be found again by number.
func keyID(i int) string {
	var b [10]byte
	binary.BigEndian.PutUint64(b[:8], uint64(i)*0x9E3779B97F4A7C15)
	binary.BigEndian.PutUint16(b[8:], uint16(i))
	return "LKIA" + base32.StdEncoding.EncodeToString(b[:])
}

// coldDigest is the stored digest of key i: the SHA-256 of a label and
// the number, the digest of no secret anyone holds. The hot keys get
// real secrets at every run (hotSecrets).
func coldDigest(i int) []byte {
	var b [18]byte
	copy(b[:], "tenmillion")
	binary.BigEndian.PutUint64(b[10:], uint64(i))
	d := sha256.Sum256(b[:])
	return d[:]
}

// appName is the application of key i: two keys per application, as
// bench/load seeds them.
func appName(i int) string { return fmt.Sprintf("app-%07d", i/2) }

// bootstrap migrates a new database and makes the bootstrap operator
// through the management service, as serve would.
func bootstrap(ctx context.Context, store latchkey.Store) error {
	svc := manage.New(store, verify.NewIndex(), slog.New(slog.DiscardHandler))
	_, err := svc.Bootstrap(ctx)
	return err
}

// seedSQLite makes a database of n application keys at path: the schema
// and the operator through the store, then the applications and keys with
// prepared INSERTs, without audit events (a bench-only shortcut). It
// writes as a bulk load does: no rollback journal and no syncs (a crash
// mid-seed leaves a database to throw away), the keys in ID order so that
// the primary key's index is appended to rather than written at random
// (so the rows' order on disk is the IDs' order, where a real database's
// is the order the keys were made in),
// and access_keys' secondary indexes dropped first and made again after
// (one sort each). At 200,000-row transactions in WAL mode with the keys
// in random order it managed about 3,000 keys a second on a loaded host.
func seedSQLite(ctx context.Context, path string, n int) error {
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	if err := bootstrap(ctx, store); err != nil {
		store.Close()
		return err
	}
	store.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)&_pragma=locking_mode(EXCLUSIVE)&_pragma=cache_size(-1048576)&_pragma=foreign_keys(OFF)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var indexes []string
	rows, err := db.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'access_keys' AND sql IS NOT NULL`)
	if err != nil {
		return err
	}
	var names []string
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			rows.Close()
			return err
		}
		names, indexes = append(names, name), append(indexes, def)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for _, name := range names {
		if _, err := db.ExecContext(ctx, `DROP INDEX `+name); err != nil {
			return err
		}
	}
	order := make([]int32, n)
	ids := make([]string, n)
	for i := range n {
		order[i], ids[i] = int32(i), keyID(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return strings.Compare(ids[a], ids[b]) })
	now := time.Now().UnixMicro()
	const batch = 1_000_000
	insert := func(query string, count int, row func(st *sql.Stmt, j int) error) error {
		for done := 0; done < count; done += batch {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			st, err := tx.PrepareContext(ctx, query)
			if err != nil {
				tx.Rollback()
				return err
			}
			for j := done; j < min(done+batch, count); j++ {
				if err := row(st, j); err != nil {
					tx.Rollback()
					return err
				}
			}
			if err := tx.Commit(); err != nil {
				return err
			}
		}
		return nil
	}
	err = insert(`INSERT INTO applications (account, name, created_at) VALUES ('default', ?, ?)`, (n+1)/2, func(st *sql.Stmt, j int) error {
		_, err := st.ExecContext(ctx, appName(2*j), now)
		return err
	})
	if err != nil {
		return err
	}
	err = insert(`INSERT INTO access_keys (id, account, application, secret_digest, description, status, created_at, updated_at)
			VALUES (?, 'default', ?, ?, 'bench/tenmillion', 'Active', ?, ?)`, n, func(st *sql.Stmt, j int) error {
		i := int(order[j])
		_, err := st.ExecContext(ctx, ids[i], appName(i), coldDigest(i), now, now)
		return err
	})
	if err != nil {
		return err
	}
	for _, def := range indexes {
		if _, err := db.ExecContext(ctx, def); err != nil {
			return err
		}
	}
	return nil
}

// seedPostgres makes a database of n application keys at url: the schema
// and the operator through the store, then the applications and keys with
// COPY, with triggers (the change feed's NOTIFY per row) and foreign key
// checks off for the session.
func seedPostgres(ctx context.Context, url string, n int) error {
	store, err := postgres.Open(ctx, url)
	if err != nil {
		return err
	}
	if err := bootstrap(ctx, store); err != nil {
		store.Close()
		return err
	}
	store.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SET session_replication_role = replica; SET maintenance_work_mem = '1GB'; SET synchronous_commit = off`); err != nil {
		return err
	}
	// The secondary indexes of access_keys are made again after the copy:
	// one sort each instead of ten million random insertions. The primary
	// key and the digest's unique constraint stay.
	var indexes []string
	rows, err := conn.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'access_keys'
		AND indexname NOT IN (SELECT conname FROM pg_constraint)`)
	if err != nil {
		return err
	}
	var names []string
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			return err
		}
		names, indexes = append(names, name), append(indexes, def)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, name := range names {
		if _, err := conn.Exec(ctx, `DROP INDEX `+pgx.Identifier{name}.Sanitize()); err != nil {
			return err
		}
	}
	now := time.Now().UnixMicro()
	i := 0
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"applications"}, []string{"account", "name", "created_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i >= n {
				return nil, nil
			}
			row := []any{"default", appName(i), now}
			i += 2
			return row, nil
		}))
	if err != nil {
		return fmt.Errorf("copying applications: %w", err)
	}
	i = 0
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"access_keys"},
		[]string{"id", "account", "application", "secret_digest", "description", "status", "created_at", "updated_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i >= n {
				return nil, nil
			}
			row := []any{keyID(i), "default", appName(i), coldDigest(i), "bench/tenmillion", "Active", now, now}
			i++
			return row, nil
		}))
	if err != nil {
		return fmt.Errorf("copying access keys: %w", err)
	}
	for _, def := range indexes {
		if _, err := conn.Exec(ctx, def); err != nil {
			return err
		}
	}
	_, err = conn.Exec(ctx, `ANALYZE`)
	return err
}

// hotSecrets gives hot keys, spread evenly over the n, new secrets and
// stores their digests; the secrets live only in this process.
func hotSecrets(ctx context.Context, dbURL string, n, hot int) ([]string, error) {
	secrets := make([]string, hot)
	ids := make([]string, hot)
	digests := make([][]byte, hot)
	for h := range hot {
		s, err := keyformat.NewSecret()
		if err != nil {
			return nil, err
		}
		d := keyformat.Sum(s)
		secrets[h], ids[h], digests[h] = s, keyID(h*(n/hot)), d[:]
	}
	if path, ok := sqlite.ParseURL(dbURL); ok {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			return nil, err
		}
		defer db.Close()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		defer tx.Rollback()
		for h := range hot {
			if _, err := tx.ExecContext(ctx, `UPDATE access_keys SET secret_digest = ? WHERE id = ?`, digests[h], ids[h]); err != nil {
				return nil, err
			}
		}
		return secrets, tx.Commit()
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	b := &pgx.Batch{}
	b.Queue(`SET session_replication_role = replica`)
	for h := range hot {
		b.Queue(`UPDATE access_keys SET secret_digest = $1 WHERE id = $2`, digests[h], ids[h])
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return secrets, nil
}
