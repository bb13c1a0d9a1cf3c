package verify_test

import (
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	"github.com/latchkey/latchkey"
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
// signing, bound to a certificate, identities, principals, quotas); and a
// resync in parts keeps it so.
func TestSyncInPartsSameAsSequential(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	ctx := t.Context()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "latchkey.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys := storetest.SeedVariedKeys(t, s, 3000)
	if !s.KeyIndexParts() {
		t.Fatal("the SQLite store does not read its keys in parts; the test's premise does not hold")
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
