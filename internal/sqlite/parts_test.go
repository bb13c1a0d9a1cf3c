package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/storetest"
	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
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

// TestScanKeyPartsNoCommitBetweenParts: the parts take their snapshots
// one after another while the store holds the write lock, so no commit
// (this process's or another's) falls between two parts' snapshots. A
// write from another connection between them waits and gives up busy.
func TestScanKeyPartsNoCommitBetweenParts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	s := open(t, path)
	ctx := t.Context()
	ids := storetest.SeedKeys(t, s, 6000)
	other, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(200)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var tried bool
	var writeErr error
	defer sqlite.SetPartSnapshot(func(part int) {
		if part != 0 || tried {
			return
		}
		tried = true
		_, writeErr = other.ExecContext(ctx, `DELETE FROM access_keys WHERE id = ?`, ids[len(ids)-1])
		if writeErr == nil {
			_, writeErr = other.ExecContext(ctx, `VACUUM`)
		}
	})()
	n := 0
	var mu sync.Mutex
	err = s.ScanKeyIndexParts(ctx, 2, func(int) *latchkey.AccessKey { return new(latchkey.AccessKey) },
		func(int, *latchkey.AccessKey) error { mu.Lock(); n++; mu.Unlock(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !tried {
		t.Fatal("the hook never ran; the test's premise does not hold")
	}
	var se *sqlitedriver.Error
	if !errors.As(writeErr, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY {
		t.Errorf("a write between the parts' snapshots: %v, want SQLITE_BUSY", writeErr)
	}
	if n != len(ids) {
		t.Errorf("the parts read %d keys, want %d", n, len(ids))
	}
}

// TestScanKeyPartsOnePart: on one core the index load asks for one part,
// and it is still read by scanKeyParts (SQLite's API, not the driver's),
// in one transaction: keys deleted once its snapshot is taken are read
// all the same. It takes no write lock, so a writer that holds the lock
// the whole time (another process's long transaction) neither delays nor
// fails it.
func TestScanKeyPartsOnePart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	s := open(t, path)
	ids := storetest.SeedKeys(t, s, 3000)
	other, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	writer, err := other.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Rollback()
	// The write takes the database's write lock until the rollback.
	if _, err := writer.ExecContext(t.Context(), `DELETE FROM access_keys WHERE id = ?`, ids[0]); err != nil {
		t.Fatal(err)
	}
	snapshots := 0
	defer sqlite.SetSnapshotTaken(func() {
		snapshots++
		// The other writer's delete commits once the part has its
		// snapshot: the part must not see it.
		if err := writer.Commit(); err != nil {
			t.Errorf("committing the other writer's delete after the snapshot: %v", err)
		}
	})()
	// Half the store's busy timeout (10 s): waiting for the write lock
	// would run out of time.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	n := 0
	err = s.ScanKeyIndexParts(ctx, 1, func(int) *latchkey.AccessKey { return new(latchkey.AccessKey) },
		func(part int, k *latchkey.AccessKey) error {
			if part != 0 {
				t.Errorf("key %s in part %d, want 0", k.ID, part)
			}
			n++
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if snapshots != 1 {
		t.Fatalf("scanKeyParts took %d snapshots, want 1: one part must still read through it", snapshots)
	}
	if n != len(ids) {
		t.Errorf("one part read %d keys, want the %d of its snapshot", n, len(ids))
	}
}

// TestRawConnErrors: a rawConn's errors carry SQLite's code, so the store
// maps them as it maps the driver's: a database that cannot be opened is
// unavailable, with what to check, not an internal error.
func TestRawConnErrors(t *testing.T) {
	err := sqlite.OpenRaw(filepath.Join(t.TempDir(), "missing", "latchkey.db"))
	if err == nil {
		t.Fatal("opened a database in a directory that does not exist")
	}
	if m := sqlite.MapError(err); latchkey.ErrorCode(m) != latchkey.EUNAVAILABLE {
		t.Errorf("mapError(%v) = %v, want EUNAVAILABLE", err, m)
	}
}

// TestKeyCountEstimate: the estimate an index load aims its tables at
// is the number of key rows, or more once keys were deleted, and it is
// read from the ends of the table's b-tree: its query searches, it does
// not scan (SQLite reads a whole index for min(rowid), max(rowid) in one
// SELECT).
func TestKeyCountEstimate(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "latchkey.db"))
	ctx := t.Context()
	count := func() int {
		var n int
		if err := s.Read.QueryRowContext(ctx, `SELECT count(*) FROM access_keys`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got, err := s.KeyCountEstimate(ctx); err != nil || got != count() {
		t.Errorf("estimate of an empty store = %d, %v; want %d", got, err, count())
	}
	ids := storetest.SeedKeys(t, s, 3000)
	if got, err := s.KeyCountEstimate(ctx); err != nil || got != count() {
		t.Errorf("estimate = %d, %v; want %d", got, err, count())
	}
	del := func(ids []string) {
		t.Helper()
		if err := s.Update(ctx, func(tx latchkey.Tx) error {
			for _, id := range ids {
				if err := tx.DeleteAccessKey(ctx, id); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	// The oldest keys gone (the lowest rowids): still the row count.
	del(ids[:100])
	if got, err := s.KeyCountEstimate(ctx); err != nil || got != count() {
		t.Errorf("estimate after deleting the oldest keys = %d, %v; want %d", got, err, count())
	}
	// Keys gone from the middle: the span, more than the rows.
	var middle []string
	for i := 101; i < len(ids)-1; i += 2 {
		middle = append(middle, ids[i])
	}
	del(middle)
	if got, err := s.KeyCountEstimate(ctx); err != nil || got < count() {
		t.Errorf("estimate after deletions = %d, %v; want at least %d", got, err, count())
	}

	plan := storetest.QueryPlan(t, s.Read, sqlite.RowidSpanSQL)
	searches := 0
	for _, step := range plan {
		if strings.HasPrefix(step, "SCAN") && step != "SCAN CONSTANT ROW" {
			t.Errorf("the rowid span query scans the table: plan %q", plan)
		}
		if strings.HasPrefix(step, "SEARCH access_keys") {
			searches++
		}
	}
	if searches != 2 {
		t.Errorf("the rowid span query's plan %q has %d searches of access_keys, want 2", plan, searches)
	}
}
