package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/postgres"
	"github.com/latchkey/latchkey/internal/storetest"
	"github.com/latchkey/latchkey/internal/verify"
)

// adminURL is the database that the tests connect to in order to create
// and drop their own throwaway databases.
func adminURL() string {
	if u := os.Getenv("LATCHKEY_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// reach remembers whether the first connection worked. Parallel subtests
// read and write it, so under a lock.
var reach struct {
	mu   sync.Mutex
	done bool
	err  error
}

// connectAdmin connects to adminURL. When PostgreSQL cannot be reached the
// test fails if CI is set, and is skipped otherwise.
func connectAdmin(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL())
	reach.mu.Lock()
	if !reach.done {
		reach.done, reach.err = true, err
	}
	reach.mu.Unlock()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is unreachable (set LATCHKEY_TEST_POSTGRES_URL): %v", err)
		}
		t.Skipf("PostgreSQL is unreachable; set LATCHKEY_TEST_POSTGRES_URL to run these tests: %v", err)
	}
	return conn
}

// newDatabase creates an empty database for this test, dropped when the
// test ends, and returns its URL.
func newDatabase(t testing.TB) string {
	t.Helper()
	reach.mu.Lock()
	unreachable := reach.err
	reach.mu.Unlock()
	if unreachable != nil && os.Getenv("CI") == "" {
		t.Skipf("PostgreSQL is unreachable: %v", unreachable)
	}
	conn := connectAdmin(t)
	defer conn.Close(context.Background())
	var b [6]byte
	rand.Read(b[:])
	name := "lk_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(t.Context(), "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		conn := connectAdmin(t)
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	u, err := url.Parse(adminURL())
	if err != nil {
		t.Fatalf("LATCHKEY_TEST_POSTGRES_URL must be a postgres:// URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// openDB opens a store on the database at dbURL, closed when the test ends.
func openDB(t testing.TB, dbURL string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) latchkey.Store {
		return openDB(t, newDatabase(t))
	})
}

func TestAuditTamper(t *testing.T) {
	open := func(t *testing.T) latchkey.Store { return openDB(t, newDatabase(t)) }
	raw := func(s latchkey.Store) *sql.DB { return s.(*postgres.Store).Write }
	storetest.AuditTamper(t, open, raw)
	storetest.AuditRewrite(t, open, raw)
}

func TestAuditChainBackfill(t *testing.T) {
	dbURL := newDatabase(t)
	storetest.AuditChainBackfill(t, func() (latchkey.Store, error) { return postgres.Open(t.Context(), dbURL) },
		func(s latchkey.Store) *sql.DB { return s.(*postgres.Store).Write })
}

func TestKeyUsageMigration(t *testing.T) {
	dbURL := newDatabase(t)
	storetest.KeyUsageMigration(t, func() (latchkey.Store, error) { return postgres.Open(t.Context(), dbURL) },
		func(s latchkey.Store) *sql.DB { return s.(*postgres.Store).Write })
}

func TestFoldedNamesMigration(t *testing.T) {
	dbURL := newDatabase(t)
	storetest.FoldedNamesMigration(t, func() (latchkey.Store, error) { return postgres.Open(t.Context(), dbURL) },
		func(s latchkey.Store) *sql.DB { return s.(*postgres.Store).Write })
}

func TestConcurrentMigrations(t *testing.T) {
	dbURL := newDatabase(t)
	const n = 3
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = postgres.Open(t.Context(), dbURL)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	if t.Failed() {
		return
	}
	var versions []int
	rows, err := stores[0].Pool().Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	versions, err = pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	// Each migration exactly once, in order, whichever replica ran it.
	// Versions may have gaps (a number reserved by a branch not merged
	// yet): the migration files say which exist.
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for _, f := range files {
		v, err := strconv.Atoi(strings.SplitN(filepath.Base(f), "_", 2)[0])
		if err != nil {
			t.Fatalf("migration %s: %v", f, err)
		}
		want = append(want, v)
	}
	if !slices.Equal(versions, want) {
		t.Errorf("schema_migrations = %v, want %v once each", versions, want)
	}
	if len(versions) < 3 {
		t.Errorf("schema_migrations = %v, want at least 3 versions", versions)
	}
	// Every store works on the migrated schema.
	for i, s := range stores {
		name := "acme" + string(rune('0'+i))
		err := s.Update(t.Context(), func(tx latchkey.Tx) error {
			return tx.CreateAccount(t.Context(), &latchkey.Account{Name: name, CreatedAt: latchkey.Now()})
		})
		if err != nil {
			t.Errorf("store %d: %v", i, err)
		}
	}
}

func TestReopenKeepsData(t *testing.T) {
	dbURL := newDatabase(t)
	s, err := postgres.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(t.Context(), func(tx latchkey.Tx) error {
		return tx.CreateAccount(t.Context(), &latchkey.Account{Name: "acme", CreatedAt: latchkey.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openDB(t, dbURL)
	err = s.View(t.Context(), func(tx latchkey.Tx) error {
		_, err := tx.FindAccount(t.Context(), "acme")
		return err
	})
	if err != nil {
		t.Errorf("after reopening: %v", err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	dbURL := newDatabase(t)
	s := openDB(t, dbURL)
	if _, err := s.Pool().Exec(t.Context(), `INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)`); err != nil {
		t.Fatal(err)
	}
	s2, err := postgres.Open(t.Context(), dbURL)
	if err == nil {
		s2.Close()
		t.Fatal("Open accepted a database migrated by a newer latchkey")
	}
	if msg := err.Error(); !strings.Contains(msg, "9999") || !strings.Contains(msg, "newer") {
		t.Errorf("error %q does not say the schema is newer", msg)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want string
	}{
		{"nothing listens", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5", latchkey.EUNAVAILABLE},
		{"not a URL", "postgres://[::1", latchkey.EINVALID},
		{"unknown parameter value", "postgres://127.0.0.1/test?sslmode=sometimes", latchkey.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := postgres.Open(t.Context(), tt.url)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if got := latchkey.ErrorCode(err); got != tt.want {
				t.Errorf("error code = %q, want %q (error: %v)", got, tt.want, err)
			}
		})
	}
}

func TestOpenHidesPassword(t *testing.T) {
	var b [9]byte
	rand.Read(b[:])
	password := hex.EncodeToString(b[:]) // made here, so no credential sits in the source
	_, err := postgres.Open(t.Context(), "postgres://postgres:"+password+"@127.0.0.1:1/test?sslmode=sometimes")
	if err == nil || strings.Contains(err.Error(), password) {
		t.Errorf("error %v shows the password", err)
	}
	_, err = postgres.Open(t.Context(), "postgres://postgres:"+password+"@127.0.0.1:1/test?sslmode=disable&connect_timeout=5")
	if err == nil || strings.Contains(err.Error(), password) {
		t.Errorf("error %v shows the password", err)
	}
}

// TestReadOnlyDatabase checks that a database that accepts no writes (as a
// standby does) makes Ping and Update fail with EUNAVAILABLE.
func TestReadOnlyDatabase(t *testing.T) {
	dbURL := newDatabase(t)
	s := openDB(t, dbURL)
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	name := strings.TrimPrefix(must(url.Parse(dbURL)).Path, "/")
	if _, err := s.Pool().Exec(ctx, "ALTER DATABASE "+name+" SET default_transaction_read_only = on"); err != nil {
		t.Fatal(err)
	}
	s.Pool().Reset() // new connections pick up the setting

	err := s.Ping(ctx)
	if got := latchkey.ErrorCode(err); got != latchkey.EUNAVAILABLE {
		t.Errorf("Ping: error code %q, want %q (error: %v)", got, latchkey.EUNAVAILABLE, err)
	}
	err = s.Update(ctx, func(tx latchkey.Tx) error {
		return tx.CreateAccount(ctx, &latchkey.Account{Name: "acme", CreatedAt: latchkey.Now()})
	})
	if got := latchkey.ErrorCode(err); got != latchkey.EUNAVAILABLE {
		t.Errorf("Update: error code %q, want %q (error: %v)", got, latchkey.EUNAVAILABLE, err)
	}
	_, err = postgres.Open(ctx, dbURL)
	if got := latchkey.ErrorCode(err); got != latchkey.EUNAVAILABLE {
		t.Errorf("Open: error code %q, want %q (error: %v)", got, latchkey.EUNAVAILABLE, err)
	}
}

// TestServerGone closes every connection of the store from the server
// side; the store reports EUNAVAILABLE or recovers on new connections, and
// never panics.
func TestServerGone(t *testing.T) {
	dbURL := newDatabase(t)
	s := openDB(t, dbURL)
	ctx := t.Context()
	name := strings.TrimPrefix(must(url.Parse(dbURL)).Path, "/")
	admin := connectAdmin(t)
	defer admin.Close(context.Background())
	// Forbid new connections, then end the existing ones.
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" WITH ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name); err != nil {
		t.Fatal(err)
	}
	err := s.Update(ctx, func(tx latchkey.Tx) error {
		return tx.CreateAccount(ctx, &latchkey.Account{Name: "acme", CreatedAt: latchkey.Now()})
	})
	if got := latchkey.ErrorCode(err); got != latchkey.EUNAVAILABLE {
		t.Errorf("Update: error code %q, want %q (error: %v)", got, latchkey.EUNAVAILABLE, err)
	}
	if got := latchkey.ErrorCode(s.Ping(ctx)); got != latchkey.EUNAVAILABLE {
		t.Errorf("Ping: error code %q, want %q", got, latchkey.EUNAVAILABLE)
	}
	err = s.ScanAccessKeys(ctx, func(*latchkey.AccessKey) error { return nil })
	if got := latchkey.ErrorCode(err); got != latchkey.EUNAVAILABLE {
		t.Errorf("ScanAccessKeys: error code %q, want %q (error: %v)", got, latchkey.EUNAVAILABLE, err)
	}
	err = s.ScanKeyIndex(ctx, func(*latchkey.AccessKey) error { return nil })
	if got := latchkey.ErrorCode(err); got != latchkey.EUNAVAILABLE {
		t.Errorf("ScanKeyIndex: error code %q, want %q (error: %v)", got, latchkey.EUNAVAILABLE, err)
	}

	if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" WITH ALLOW_CONNECTIONS true"); err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx latchkey.Tx) error {
		return tx.CreateAccount(ctx, &latchkey.Account{Name: "acme", CreatedAt: latchkey.Now()})
	})
	if err != nil {
		t.Errorf("Update once the server is back: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestIsolationPinned checks that a database whose default isolation is
// REPEATABLE READ, under which counting after a row lock sees a stale
// snapshot, still keeps the key limit: the store pins READ COMMITTED.
func TestIsolationPinned(t *testing.T) {
	dbURL := newDatabase(t)
	name := strings.TrimPrefix(must(url.Parse(dbURL)).Path, "/")
	admin := connectAdmin(t)
	defer admin.Close(context.Background())
	if _, err := admin.Exec(t.Context(), "ALTER DATABASE "+name+" SET default_transaction_isolation = 'repeatable read'"); err != nil {
		t.Fatal(err)
	}
	s := openDB(t, dbURL)
	ctx := t.Context()

	tx, err := s.Write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var level string
	err = tx.QueryRowContext(ctx, `SHOW transaction_isolation`).Scan(&level)
	tx.Rollback()
	if err != nil {
		t.Fatal(err)
	}
	if level != "read committed" {
		t.Errorf("transaction isolation = %q, want read committed", level)
	}

	svc := manage.New(s, verify.NewIndex(), nil)
	if _, err := svc.CreateAccount(ctx, latchkey.System(), "acme", latchkey.AccountUpdate{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateApplication(ctx, latchkey.System(), "acme", "billing", "", nil); err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		created atomic.Int32
		start   = make(chan struct{})
	)
	for range 10 {
		wg.Go(func() {
			<-start
			svc := manage.New(s, verify.NewIndex(), nil) // no shared in-process lock
			_, err := svc.CreateAccessKey(ctx, latchkey.System(), "acme", "billing", latchkey.NewAccessKey{})
			switch latchkey.ErrorCode(err) {
			case "":
				created.Add(1)
			case latchkey.ELIMIT:
			default:
				t.Errorf("CreateAccessKey: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := created.Load(); n != latchkey.DefaultMaxKeysPerApplication {
		t.Errorf("%d keys created concurrently, want %d", n, latchkey.DefaultMaxKeysPerApplication)
	}
}

// BenchmarkAuditWrite is the audit chain's cost on a management write
// (storetest.BenchAuditWrite); docs/benchmarks.md has the figures.
func BenchmarkAuditWrite(b *testing.B) {
	s := openDB(b, newDatabase(b))
	storetest.BenchAuditWrite(b, s, s.Write, true, "FOR UPDATE")
}

// BenchmarkRecordUsageAll is sqlite's BenchmarkRecordUsageAll on
// PostgreSQL: one interval's usage of every key of 10,000, 100,000 and
// 1,000,000, in the recorder's batches of 250. cpu-ns/key and
// flush-%cpu are this process's CPU only, not the server's.
func BenchmarkRecordUsageAll(b *testing.B) {
	for _, n := range storetest.BenchSizes(10_000, 100_000, 1_000_000) {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			s := openDB(b, newDatabase(b))
			ids := storetest.SeedKeysFast(b, s, s.Write, n, true)
			storetest.BenchRecordUsage(b, s, ids, verify.DefaultMaxBatch, time.Second)
		})
	}
}

// TestKeyCountEstimate: the estimate an index load aims its tables at
// comes from the server's statistics, without counting: never negative
// (reltuples is -1 for a table never analysed), about the number of key
// rows once the statistics have seen them, and the planner's figure when
// the table's counters were reset.
func TestKeyCountEstimate(t *testing.T) {
	s := openDB(t, newDatabase(t))
	ctx := t.Context()
	if got, err := s.KeyCountEstimate(ctx); err != nil || got < 0 {
		t.Errorf("estimate of an empty store = %d, %v", got, err)
	}
	storetest.SeedKeys(t, s, 500)
	if _, err := s.Write.ExecContext(ctx, `ANALYZE access_keys`); err != nil {
		t.Fatal(err)
	}
	var count int
	if err := s.Read.QueryRowContext(ctx, `SELECT count(*) FROM access_keys`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	// The seeding backends may report their inserts after ANALYZE, which
	// adds them to the live count ANALYZE set: at most twice the rows.
	if got, err := s.KeyCountEstimate(ctx); err != nil || got < count || got > 2*count {
		t.Errorf("estimate after ANALYZE = %d, %v; want %d (at most %d)", got, err, count, 2*count)
	}
	// Without the live count, the planner's estimate.
	if _, err := s.Write.ExecContext(ctx, `SELECT pg_stat_reset_single_table_counters('access_keys'::regclass)`); err != nil {
		t.Fatal(err)
	}
	if got, err := s.KeyCountEstimate(ctx); err != nil || got < count || got > 2*count {
		t.Errorf("estimate with the table's counters reset = %d, %v; want %d from reltuples", got, err, count)
	}
}
