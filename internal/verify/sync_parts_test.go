package verify_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/postgres"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/storetest"
	"github.com/latchkey/latchkey/internal/verify"
)

// sequentialStore hides a store's ScanKeyIndexInto and ScanKeyIndexParts:
// Sync then reads it with ScanKeyIndex, one key after another.
type sequentialStore struct{ latchkey.Store }

// TestSyncInPartsSameAsSequential: an index loaded from a store read in
// parts, on a goroutine each, is the index a sequential load makes, for
// keys of every kind (restrictions, inactive, expired, canaries, imported,
// signing, bound to a certificate, identities, principals, quotas), on
// both stores that read in parts; and a resync in parts keeps it so. On
// one core (GOMAXPROCS 1) the load asks for one part (that SQLite reads
// it with its part reader, not the driver, is sqlite's
// TestScanKeyPartsOnePart).
func TestSyncInPartsSameAsSequential(t *testing.T) {
	for _, procs := range []int{2, 1} {
		t.Run(fmt.Sprintf("GOMAXPROCS=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			testSyncInPartsSameAsSequential(t)
		})
	}
}

func testSyncInPartsSameAsSequential(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) partStore
	}{
		{"sqlite", func(t *testing.T) partStore {
			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latchkey.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"postgres", func(t *testing.T) partStore {
			s, err := postgres.Open(t.Context(), postgresDatabase(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			s := tc.open(t)
			keys := storetest.SeedVariedKeys(t, s, 3000)
			if !s.KeyIndexParts() {
				t.Fatal("the store does not read its keys in parts; the test's premise does not hold")
			}
			seq, par := verify.NewIndex(), verify.NewIndex()
			if n, err := seq.Sync(ctx, sequentialStore{s}); err != nil || n != len(keys) {
				t.Fatalf("sequential Sync = %d, %v; want %d", n, err, len(keys))
			}
			if n, err := par.Sync(ctx, s); err != nil || n != len(keys) {
				t.Fatalf("Sync in parts = %d, %v; want %d", n, err, len(keys))
			}
			sameIndex(t, seq, par, keys)
			// A resync in parts of a full index changes nothing.
			if n, err := par.Sync(ctx, s); err != nil || n != len(keys) {
				t.Fatalf("resync in parts = %d, %v; want %d", n, err, len(keys))
			}
			sameIndex(t, seq, par, keys)
		})
	}
}

// partStore is a store that can read its key index in parts.
type partStore interface {
	latchkey.Store
	KeyIndexParts() bool
}

// postgresDatabase creates an empty PostgreSQL database for the test,
// dropped when it ends, on LATCHKEY_TEST_POSTGRES_URL's server (a local
// one by default), and returns its URL. Without a server the test is
// skipped, or fails when CI is set.
func postgresDatabase(t *testing.T) string {
	admin := os.Getenv("LATCHKEY_TEST_POSTGRES_URL")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is unreachable (set LATCHKEY_TEST_POSTGRES_URL): %v", err)
		}
		t.Skipf("PostgreSQL is unreachable; set LATCHKEY_TEST_POSTGRES_URL to run this test: %v", err)
	}
	defer conn.Close(context.Background())
	var b [6]byte
	rand.Read(b[:])
	name := "lk_test_verify_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err == nil {
			defer conn.Close(context.Background())
			_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		}
		if err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("LATCHKEY_TEST_POSTGRES_URL must be a postgres:// URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// sameIndex fails the test unless both indexes hold the same entries for
// keys, found both by ID and by digest, and nothing else.
func sameIndex(t *testing.T, want, got *verify.Index, keys map[string]*latchkey.AccessKey) {
	t.Helper()
	if want.Len() != len(keys) || got.Len() != len(keys) {
		t.Fatalf("Len = %d and %d, want %d", want.Len(), got.Len(), len(keys))
	}
	for id, k := range keys {
		we, ge := want.Get(id), got.Get(id)
		if we == nil || ge == nil {
			t.Fatalf("key %s: Get = %v, %v", id, we, ge)
		}
		if w, g := verify.EntryView(we), verify.EntryView(ge); !reflect.DeepEqual(w, g) {
			t.Errorf("key %s:\nsequential %+v\nin parts   %+v", id, w, g)
		}
		if le := got.Lookup(&k.SecretDigest); le == nil || le.ID != id {
			t.Errorf("key %s: Lookup by digest = %v", id, le)
		}
	}
}
