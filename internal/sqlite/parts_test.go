package sqlite_test

import (
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/storetest"
)

// TestScanKeyPartsOneSnapshot: the parts of an index load read the key
// rows as of one commit, taken before any of them reads a row. Keys
// deleted after it, and a VACUUM that renumbers every rowid, change
// nothing of what the parts read: each key of that commit once.
func TestScanKeyPartsOneSnapshot(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "latchkey.db"))
	ctx := t.Context()
	ids := storetest.SeedKeys(t, s, 6000)
	ran := false
	defer sqlite.SetSnapshotTaken(func() {
		if ran {
			return // the second load below
		}
		ran = true
		err := s.Update(ctx, func(tx latchkey.Tx) error {
			for i := 0; i < len(ids); i += 3 {
				if err := tx.DeleteAccessKey(ctx, ids[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			_, err = s.Write.ExecContext(ctx, `VACUUM`)
		}
		if err != nil {
			t.Errorf("changing the store after the snapshot: %v", err)
		}
	})()
	var mu sync.Mutex
	var got []string
	perPart := map[int]int{}
	err := s.ScanKeyIndexParts(ctx, 2, func(int) *latchkey.AccessKey { return new(latchkey.AccessKey) },
		func(part int, k *latchkey.AccessKey) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, k.ID)
			perPart[part]++
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if !ran {
		t.Fatal("the parts never took their snapshot; the test's premise does not hold")
	}
	if len(perPart) != 2 {
		t.Errorf("keys per part %v, want two parts", perPart)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(ids))
	if !slices.Equal(got, want) {
		t.Errorf("the parts read %d keys (%d distinct), want the %d of the snapshot", len(got), len(slices.Compact(slices.Clone(got))), len(want))
	}
	// The changes are there for the next load.
	n := 0
	if err := s.ScanKeyIndexParts(ctx, 2, func(int) *latchkey.AccessKey { return new(latchkey.AccessKey) },
		func(int, *latchkey.AccessKey) error { mu.Lock(); n++; mu.Unlock(); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := len(ids) - (len(ids)+2)/3; n != want {
		t.Errorf("the next load read %d keys, want %d", n, want)
	}
}
