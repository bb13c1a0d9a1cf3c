package verify_test

import (
	"errors"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
)

// TestIndexReload: what a change feed loads replaces the entry, unless
// this process changed the key while the load ran; then the load may be
// older than the change, and must not undo it.
func TestIndexReload(t *testing.T) {
	ix := verify.NewIndex()
	a := newKey(t, "acme", "billing")
	ix.Put(a.AccessKey)
	inactive := *a.AccessKey
	inactive.Status = latchkey.StatusInactive
	stale := *a.AccessKey // what a load read before the changes below

	// A plain reload applies what it read.
	if err := ix.Reload(a.ID, func() (*latchkey.AccessKey, error) { return &inactive, nil }); err != nil {
		t.Fatal(err)
	}
	if e := ix.Get(a.ID); e == nil || e.Active {
		t.Fatalf("after reloading an Inactive key: %+v", e)
	}
	if err := ix.Reload(a.ID, func() (*latchkey.AccessKey, error) { return nil, nil }); err != nil || ix.Get(a.ID) != nil {
		t.Fatalf("reloading a key gone from the store: %v, entry %+v", err, ix.Get(a.ID))
	}

	// Deleted here while the load ran: the stale load does not bring the
	// key back.
	ix.Put(a.AccessKey)
	err := ix.Reload(a.ID, func() (*latchkey.AccessKey, error) {
		ix.Delete(a.ID) // this process's DeleteAccessKey, just committed
		return &stale, nil
	})
	if err != nil || ix.Get(a.ID) != nil {
		t.Fatalf("a key deleted during a reload is back in the index (err %v)", err)
	}

	// Deactivated here while the load ran: it stays Inactive.
	ix.Put(a.AccessKey)
	_ = ix.Reload(a.ID, func() (*latchkey.AccessKey, error) {
		ix.Put(&inactive)
		return &stale, nil
	})
	if e := ix.Get(a.ID); e == nil || e.Active {
		t.Fatalf("a key deactivated during a reload is Active again: %+v", e)
	}

	// A failed load changes nothing, and leaves no state behind: the next
	// reload applies.
	boom := errors.New("store down")
	if err := ix.Reload(a.ID, func() (*latchkey.AccessKey, error) { return &stale, boom }); !errors.Is(err, boom) {
		t.Fatalf("Reload error = %v, want the load's", err)
	}
	if e := ix.Get(a.ID); e == nil || e.Active {
		t.Fatalf("a failed reload changed the entry: %+v", e)
	}
	if err := ix.Reload(a.ID, func() (*latchkey.AccessKey, error) { return &stale, nil }); err != nil {
		t.Fatal(err)
	}
	if e := ix.Get(a.ID); e == nil || !e.Active {
		t.Fatalf("the next reload did not apply: %+v", e)
	}
	// A change to another key does not stop a reload.
	b := newKey(t, "acme", "billing")
	_ = ix.Reload(a.ID, func() (*latchkey.AccessKey, error) {
		ix.Put(b.AccessKey)
		return &inactive, nil
	})
	if e := ix.Get(a.ID); e == nil || e.Active {
		t.Fatalf("a change to another key stopped the reload: %+v", e)
	}
}
