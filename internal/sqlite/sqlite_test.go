package sqlite_test

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/storetest"
)

func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) latchkey.Store {
		return open(t, filepath.Join(t.TempDir(), "latchkey.db"))
	})
}

func TestAuditTamper(t *testing.T) {
	open := func(t *testing.T) latchkey.Store { return open(t, filepath.Join(t.TempDir(), "latchkey.db")) }
	raw := func(s latchkey.Store) *sql.DB { return s.(*sqlite.Store).Write }
	storetest.AuditTamper(t, open, raw)
	storetest.AuditRewrite(t, open, raw)
}

func TestAuditChainBackfill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	storetest.AuditChainBackfill(t, func() (latchkey.Store, error) { return sqlite.Open(t.Context(), path) },
		func(s latchkey.Store) *sql.DB { return s.(*sqlite.Store).Write })
}

func TestKeyUsageMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	storetest.KeyUsageMigration(t, func() (latchkey.Store, error) { return sqlite.Open(t.Context(), path) },
		func(s latchkey.Store) *sql.DB { return s.(*sqlite.Store).Write })
}

func TestFoldedNamesMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	storetest.FoldedNamesMigration(t, func() (latchkey.Store, error) { return sqlite.Open(t.Context(), path) },
		func(s latchkey.Store) *sql.DB { return s.(*sqlite.Store).Write })
}

func TestFileMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "nested")
	path := filepath.Join(dir, "latchkey.db")
	s := open(t, path)
	// A write makes SQLite create the WAL and shared-memory files.
	err := s.Update(t.Context(), func(tx latchkey.Tx) error {
		return tx.CreateAccount(t.Context(), &latchkey.Account{Name: "acme", CreatedAt: latchkey.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want os.FileMode
	}{
		{path, 0o600},
		{path + "-wal", 0o600},
		{path + "-shm", 0o600},
		{dir, 0o700 | os.ModeDir},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			fi, err := os.Stat(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode(); got != tt.want {
				t.Errorf("mode = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	ctx := t.Context()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	acc := &latchkey.Account{Name: "acme", CreatedAt: latchkey.Now().Truncate(1000)}
	if err := s.Update(ctx, func(tx latchkey.Tx) error { return tx.CreateAccount(ctx, acc) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	var got *latchkey.Account
	err = s.View(ctx, func(tx latchkey.Tx) (err error) {
		got, err = tx.FindAccount(ctx, "acme")
		return err
	})
	if err != nil {
		t.Fatalf("after reopening: %v", err)
	}
	if got.Name != acc.Name || !got.CreatedAt.Equal(acc.CreatedAt) {
		t.Errorf("after reopening: %+v, want %+v", got, acc)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = sqlite.Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open accepted a database migrated by a newer latchkey")
	}
	if msg := err.Error(); !strings.Contains(msg, "9999") || !strings.Contains(msg, "newer") {
		t.Errorf("error %q does not say the schema is newer", msg)
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		name   string
		url    string
		want   string
		wantOK bool
	}{
		{"absolute", "sqlite:/var/lib/latchkey/latchkey.db", "/var/lib/latchkey/latchkey.db", true},
		{"relative", "sqlite:latchkey.db", "latchkey.db", true},
		{"absolute with slashes", "sqlite:///var/lib/latchkey.db", "/var/lib/latchkey.db", true},
		{"relative with slashes", "sqlite://./data/latchkey.db", "./data/latchkey.db", true},
		{"memory", "sqlite::memory:", ":memory:", true},
		{"empty path", "sqlite:", "", false},
		{"empty path with slashes", "sqlite://", "", false},
		{"postgres", "postgres://localhost/latchkey", "", false},
		{"bare path", "/var/lib/latchkey.db", "", false},
		{"empty", "", "", false},
		{"scheme is case sensitive", "SQLITE:/x.db", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := sqlite.ParseURL(tt.url)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseURL(%q) = %q, %v; want %q, %v", tt.url, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// makeReadOnly makes path unwritable. Root ignores file modes, so as root
// the file is made immutable instead (chattr +i), and the test is skipped
// where the file system does not support that.
func makeReadOnly(t *testing.T, path string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(path, 0o400); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(path, 0o600) })
		return
	}
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Skipf("running as root and cannot make %s immutable: %v: %s", path, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("chattr", "-i", path).CombinedOutput(); err != nil {
			t.Errorf("chattr -i %s: %v: %s", path, err, out)
		}
	})
}

func TestReadOnlyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	makeReadOnly(t, path)

	s, err = sqlite.Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a read-only database file succeeded")
	}
	if code := latchkey.ErrorCode(err); code != latchkey.EUNAVAILABLE {
		t.Errorf("error code = %q, want %q (error: %v)", code, latchkey.EUNAVAILABLE, err)
	}
	msg := latchkey.ErrorMessage(err)
	if !strings.Contains(msg, "permission") || !strings.Contains(msg, path) {
		t.Errorf("message %q should name the file and say to check its permissions", msg)
	}
}

// TestReadOnlyWhileOpen makes the database refuse writes under a running
// store (as a full or remounted disk would) and checks that a write fails
// with EUNAVAILABLE, and the store recovers once writes are allowed again.
func TestReadOnlyWhileOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	s := open(t, path)
	ctx := t.Context()
	// query_only is per connection; the store has one writing connection.
	if _, err := s.Write.ExecContext(ctx, `PRAGMA query_only = 1`); err != nil {
		t.Fatal(err)
	}
	err := s.Update(ctx, func(tx latchkey.Tx) error {
		return tx.CreateAccount(ctx, &latchkey.Account{Name: "acme", CreatedAt: latchkey.Now()})
	})
	if code := latchkey.ErrorCode(err); code != latchkey.EUNAVAILABLE {
		t.Errorf("error code = %q, want %q (error: %v)", code, latchkey.EUNAVAILABLE, err)
	}
	if _, err := s.Write.ExecContext(ctx, `PRAGMA query_only = 0`); err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx latchkey.Tx) error {
		return tx.CreateAccount(ctx, &latchkey.Account{Name: "acme", CreatedAt: latchkey.Now()})
	})
	if err != nil {
		t.Errorf("Update after writes are allowed again: %v", err)
	}
}
