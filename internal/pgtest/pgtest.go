// Package pgtest gives tests outside internal/postgres a throwaway
// PostgreSQL database: created empty for one test, dropped WITH (FORCE) when
// it ends.
//
// The server is LATCHKEY_TEST_POSTGRES_URL, or postgres@127.0.0.1:5432
// database test. When it cannot be reached a test fails if the CI
// environment variable is set (CI must not pass by skipping), and is skipped
// otherwise.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// AdminURL is the database the helpers connect to in order to create and
// drop test databases.
func AdminURL() string {
	if u := os.Getenv("LATCHKEY_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// Connect connects to AdminURL, failing the test under CI and skipping it
// otherwise when the server cannot be reached.
func Connect(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is unreachable (set LATCHKEY_TEST_POSTGRES_URL): %v", err)
		}
		t.Skipf("PostgreSQL is unreachable; set LATCHKEY_TEST_POSTGRES_URL to run this test: %v", err)
	}
	return conn
}

// NewDatabase creates an empty database for this test, dropped when the
// test ends, and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	conn := Connect(t)
	defer conn.Close(context.Background())
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "lk_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		conn := Connect(t)
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	u, err := url.Parse(AdminURL())
	if err != nil {
		t.Fatalf("LATCHKEY_TEST_POSTGRES_URL must be a postgres:// URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Exec runs one statement on AdminURL (ALTER DATABASE, pg_terminate_backend).
func Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	conn := Connect(t)
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
