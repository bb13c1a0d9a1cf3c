package verify_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
)

// TestEntryOwner: an entry names the application of an application key,
// and the principal and role of a principal key, the other ones empty; a
// principal whose role the index does not know gets no role (and so no
// permission), but stays a principal key.
func TestEntryOwner(t *testing.T) {
	tests := []struct {
		app, principal  string
		role            latchkey.Role
		wantApp, wantPr string
		wantRole        latchkey.Role
	}{
		{app: "billing", wantApp: "billing"},
		{principal: "olive", role: latchkey.RoleOperator, wantPr: "olive", wantRole: latchkey.RoleOperator},
		{principal: "alice", role: latchkey.RoleAdmin, wantPr: "alice", wantRole: latchkey.RoleAdmin},
		{principal: "victor", role: latchkey.RoleViewer, wantPr: "victor", wantRole: latchkey.RoleViewer},
		{principal: "vera", role: latchkey.RoleVerifier, wantPr: "vera", wantRole: latchkey.RoleVerifier},
		{principal: "nemo", role: "", wantPr: "nemo"},
		{principal: "zed", role: "superuser", wantPr: "zed"},
	}
	for _, tt := range tests {
		t.Run(tt.app+tt.principal, func(t *testing.T) {
			ix := verify.NewIndex()
			k := newKey(t, "acme", tt.app, func(k *latchkey.AccessKey) { k.Principal, k.Role = tt.principal, tt.role })
			ix.Put(k.AccessKey)
			e := ix.Get(k.ID)
			if e.Application() != tt.wantApp || e.Principal() != tt.wantPr || e.Role() != tt.wantRole || e.IsPrincipal() != (tt.principal != "") {
				t.Errorf("entry: application %q, principal %q, role %q, principal key %v; want %q, %q, %q",
					e.Application(), e.Principal(), e.Role(), e.IsPrincipal(), tt.wantApp, tt.wantPr, tt.wantRole)
			}
		})
	}
}

func TestIndexPutGetDelete(t *testing.T) {
	ix := verify.NewIndex()
	a := newKey(t, "acme", "billing", expiresAt(t0.Add(time.Hour)))
	ix.Put(a.AccessKey)
	d := keyformat.Sum(a.secret)
	e := ix.Lookup(&d)
	if e == nil || *ix.Get(a.ID) != *e {
		t.Fatal("Put key not found by digest and ID")
	}
	if e.ID != a.ID || e.Account != "acme" || e.Application() != "billing" || !e.Active || e.ExpiresAt != t0.Add(time.Hour).UnixNano() || e.IsPrincipal() {
		t.Errorf("entry %+v", e)
	}

	// A change replaces the entry; the old one is left as it was.
	changed := *a.AccessKey
	changed.Status = latchkey.StatusInactive
	ix.Put(&changed)
	if e2 := ix.Get(a.ID); *e2 == *e || e2.Active || !e.Active {
		t.Errorf("replace: new entry %+v, old %+v", e2, e)
	}
	if ix.Len() != 1 {
		t.Errorf("Len = %d after replacing, want 1", ix.Len())
	}

	ix.Delete(a.ID)
	if ix.Lookup(&d) != nil || ix.Get(a.ID) != nil || ix.Len() != 0 {
		t.Error("deleted key still in the index")
	}
	ix.Delete(a.ID) // deleting twice is harmless
	ix.Delete("LKIANOSUCHKEYATALL23")
}

// scanHook wraps a store and calls during(i) before it hands the i-th key
// to Sync, so a test can change the index in the middle of a scan.
type scanHook struct {
	latchkey.Store
	during func(i int)
}

func (s *scanHook) ScanKeyIndex(ctx context.Context, fn func(*latchkey.AccessKey) error) error {
	i := 0
	return s.Store.ScanKeyIndex(ctx, func(k *latchkey.AccessKey) error {
		s.during(i)
		i++
		return fn(k)
	})
}

// TestIndexSyncOneAtATime: a Sync called while another runs waits for
// it, never running a second pass beside it, and gives up with its
// context's error when that context ends first.
func TestIndexSyncOneAtATime(t *testing.T) {
	store := openStore(t)
	for i := range 3 {
		seedKey(t, store, "acme", fmt.Sprintf("app-%d", i))
	}
	ix := verify.NewIndex()
	started, release := make(chan struct{}), make(chan struct{})
	var scans sync.WaitGroup // Syncs inside their scan
	var inScan, most int
	var mu sync.Mutex
	var held atomic.Bool
	hook := &scanHook{Store: store, during: func(i int) {
		if i != 0 {
			return
		}
		mu.Lock()
		inScan++
		most = max(most, inScan)
		mu.Unlock()
		if held.CompareAndSwap(false, true) {
			started <- struct{}{}
			<-release // the first Sync holds its pass until released
		}
		mu.Lock()
		inScan--
		mu.Unlock()
	}}
	type result struct {
		n   int
		err error
	}
	first := make(chan result, 1)
	scans.Go(func() {
		n, err := ix.Sync(t.Context(), hook)
		first <- result{n, err}
	})
	<-started

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if n, err := ix.Sync(ctx, hook); !errors.Is(err, context.Canceled) || n != 0 {
		t.Errorf("a Sync whose context ended while another ran = %d, %v; want 0, context.Canceled", n, err)
	}
	queued := make(chan result, 1)
	scans.Go(func() {
		n, err := ix.Sync(t.Context(), hook)
		queued <- result{n, err}
	})
	// Time for the queued Sync to reach its scan, were it let in beside
	// the first: it cannot make a correct index fail.
	time.Sleep(100 * time.Millisecond)
	close(release)
	scans.Wait()
	for _, r := range []result{<-first, <-queued} {
		if r.err != nil || r.n != 3 {
			t.Errorf("Sync = %d, %v; want 3 keys", r.n, r.err)
		}
	}
	if most != 1 {
		t.Errorf("%d Syncs scanned at once, want 1", most)
	}
}

func TestIndexSync(t *testing.T) {
	store := openStore(t)
	var keys []testKey
	for i := range 6 {
		keys = append(keys, seedKey(t, store, "acme", fmt.Sprintf("app-%d", i%3)))
	}
	ix := verify.NewIndex()
	n, err := ix.Sync(t.Context(), store)
	if err != nil || n != 6 || ix.Len() != 6 {
		t.Fatalf("Sync = %d, %v; Len %d", n, err, ix.Len())
	}

	// Changes made in the store behind the index's back are picked up by
	// the next Sync: a deleted key goes, a new one comes, a changed one
	// changes.
	stale := newKey(t, "acme", "app-0")
	ix.Put(stale.AccessKey) // in the index, never in the store
	mustUpdate(t, store, func(tx latchkey.Tx) error { return tx.DeleteAccessKey(t.Context(), keys[0].ID) })
	keys[1].Status = latchkey.StatusInactive
	keys[1].UpdatedAt = t0.Add(time.Second)
	mustUpdate(t, store, func(tx latchkey.Tx) error { return tx.UpdateAccessKey(t.Context(), keys[1].AccessKey) })
	added := seedKey(t, store, "acme", "app-0")
	if n, err := ix.Sync(t.Context(), store); err != nil || n != 6 {
		t.Fatalf("resync = %d, %v", n, err)
	}
	for _, tc := range []struct {
		name   string
		id     string
		want   bool
		active bool
	}{
		{"deleted in the store", keys[0].ID, false, false},
		{"only in the index", stale.ID, false, false},
		{"changed in the store", keys[1].ID, true, false},
		{"added to the store", added.ID, true, true},
		{"unchanged", keys[2].ID, true, true},
	} {
		e := ix.Get(tc.id)
		if (e != nil) != tc.want || e != nil && e.Active != tc.active {
			t.Errorf("%s: entry %+v, want present=%v active=%v", tc.name, e, tc.want, tc.active)
		}
	}
}

// TestIndexSyncKeepsConcurrentChanges: a key deleted, added or changed
// while Sync scans the store keeps that change, whatever the scan read:
// in a resync, and in the first load into an empty index (which puts the
// keys it reads without looking them up first).
func TestIndexSyncKeepsConcurrentChanges(t *testing.T) {
	for _, first := range []bool{false, true} {
		t.Run(map[bool]string{false: "resync", true: "first load"}[first], func(t *testing.T) {
			store := openStore(t)
			var keys []testKey
			for i := range 5 {
				keys = append(keys, seedKey(t, store, "acme", fmt.Sprintf("app-%d", i)))
			}
			ix := verify.NewIndex()
			if !first {
				if _, err := ix.Sync(t.Context(), store); err != nil {
					t.Fatal(err)
				}
			}
			created := newKey(t, "acme", "app-0") // created meanwhile, not in the scan
			hook := &scanHook{Store: store, during: func(i int) {
				if i != 2 {
					return
				}
				// What the management service does after its commits.
				for _, k := range keys {
					ix.Delete(k.ID)
				}
				off := *keys[4].AccessKey
				off.Status = latchkey.StatusInactive
				ix.Put(&off)
				ix.Put(created.AccessKey)
			}}
			if _, err := ix.Sync(t.Context(), hook); err != nil {
				t.Fatal(err)
			}
			for i, k := range keys[:4] {
				if ix.Get(k.ID) != nil {
					t.Errorf("key %d, deleted during the sync, is back", i)
				}
			}
			if e := ix.Get(keys[4].ID); e == nil || e.Active {
				t.Errorf("key deactivated during the sync: entry %+v, want Inactive", e)
			}
			if ix.Get(created.ID) == nil {
				t.Error("key created during the sync was dropped")
			}
			if ix.Len() != 2 {
				t.Errorf("Len = %d, want 2 (the deactivated key and the one created)", ix.Len())
			}

			// The next Sync, with nothing happening meanwhile, follows the store.
			if _, err := ix.Sync(t.Context(), store); err != nil {
				t.Fatal(err)
			}
			if ix.Get(keys[0].ID) == nil || ix.Get(created.ID) != nil || ix.Len() != 5 {
				t.Errorf("a quiet resync does not follow the store: Len = %d, want 5", ix.Len())
			}
			// Another changes nothing: each key keeps its record.
			nums := map[string]uint32{}
			for _, k := range keys {
				nums[k.ID] = verify.EntryNum(ix.Get(k.ID))
			}
			if _, err := ix.Sync(t.Context(), store); err != nil {
				t.Fatal(err)
			}
			for i, k := range keys {
				if e := ix.Get(k.ID); e == nil || verify.EntryNum(e) != nums[k.ID] {
					t.Errorf("key %d: a resync of an unchanged key made it a new record (%v, was %d)", i, e, nums[k.ID])
				}
			}
		})
	}
}

// bigScan hands out keys without a database, for syncs larger than the
// index's batch size.
type bigScan struct {
	latchkey.Store
	keys   []*latchkey.AccessKey
	during func(i int)
	err    error
}

func (s *bigScan) ScanKeyIndex(ctx context.Context, fn func(*latchkey.AccessKey) error) error {
	for i, k := range s.keys {
		if s.during != nil {
			s.during(i)
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	return s.err
}

func TestIndexSyncLarge(t *testing.T) {
	const n = 10000 // more than one batch
	var keys []*latchkey.AccessKey
	for i := range n {
		keys = append(keys, &latchkey.AccessKey{ID: fmt.Sprintf("LKIA%016d", i), Account: "acme", Application: "app",
			Status: latchkey.StatusActive, SecretDigest: keyformat.Sum(fmt.Sprint(i))})
	}
	ix := verify.NewIndex()
	scan := &bigScan{keys: keys, during: func(i int) {
		switch i {
		case 9000: // key 10 was applied with the first batch
			ix.Delete(keys[10].ID)
		case 100: // key 9999 is not scanned yet
			off := *keys[n-1]
			off.Status = latchkey.StatusInactive
			ix.Put(&off)
		}
	}}
	got, err := ix.Sync(t.Context(), scan)
	if err != nil || got != n {
		t.Fatalf("Sync = %d, %v", got, err)
	}
	if ix.Len() != n-1 || ix.Get(keys[10].ID) != nil {
		t.Errorf("Len %d; deleted key present: %v", ix.Len(), ix.Get(keys[10].ID) != nil)
	}
	if e := ix.Get(keys[n-1].ID); e == nil || e.Active {
		t.Errorf("key changed during the sync: %+v", e)
	}
}

func TestIndexSyncError(t *testing.T) {
	ix := verify.NewIndex()
	kept := newKey(t, "acme", "billing")
	ix.Put(kept.AccessKey)
	boom := errors.New("connection reset")
	if _, err := ix.Sync(t.Context(), &bigScan{err: boom}); !errors.Is(err, boom) {
		t.Fatalf("Sync error = %v, want %v", err, boom)
	}
	if ix.Get(kept.ID) == nil {
		t.Error("a failed sync dropped keys")
	}
}

// TestIndexPutWhileFlushing: replacing an entry while the recorder flushes
// its usage is safe (run with -race).
func TestIndexPutWhileFlushing(t *testing.T) {
	a := newKey(t, "acme", "billing")
	r := newRig(t, a)
	var wg sync.WaitGroup
	wg.Go(func() {
		req := verify.Request{Secret: a.secret}
		for range 2000 {
			r.v.Verify(&req)
		}
	})
	wg.Go(func() {
		for range 2000 {
			changed := *a.AccessKey
			r.ix.Put(&changed)
		}
	})
	wg.Go(func() {
		for range 200 {
			if err := r.rec.Flush(context.Background()); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
}

func mustUpdate(t *testing.T, s latchkey.Store, fn func(latchkey.Tx) error) {
	t.Helper()
	if err := s.Update(t.Context(), fn); err != nil {
		t.Fatal(err)
	}
}

// TestIndexExternalIDAndMetadata: an entry carries its key's external ID,
// metadata and the metadata's header form; a change made in the store
// behind the index's back reaches it at the next Sync, in both directions.
func TestIndexExternalIDAndMetadata(t *testing.T) {
	store := openStore(t)
	k := seedKey(t, store, "acme", "shop")
	ix := verify.NewIndex()
	if _, err := ix.Sync(t.Context(), store); err != nil {
		t.Fatal(err)
	}
	check := func(step, id, metadata string) {
		t.Helper()
		e := ix.Get(k.ID)
		if e == nil {
			t.Fatalf("%s: no entry", step)
		}
		header := ""
		if metadata != "" {
			header = base64.RawURLEncoding.EncodeToString([]byte(metadata))
		}
		if e.ExternalID() != id || string(e.Metadata()) != metadata || e.MetadataHeader() != header {
			t.Errorf("%s: external ID %q, metadata %s, header %q; want %q, %s, %q", step,
				e.ExternalID(), e.Metadata(), e.MetadataHeader(), id, metadata, header)
		}
	}
	check("none", "", "")
	for _, step := range []struct{ name, id, metadata string }{
		{"set in the store", "cus_42", `{"plan":"pro"}`},
		{"changed in the store", "cus_42", `{"plan":"team"}`},
		{"removed in the store", "", ""},
	} {
		k.ExternalID, k.Metadata = step.id, nil
		if step.metadata != "" {
			k.Metadata = json.RawMessage(step.metadata)
		}
		mustUpdate(t, store, func(tx latchkey.Tx) error { return tx.UpdateAccessKey(t.Context(), k.AccessKey) })
		if _, err := ix.Sync(t.Context(), store); err != nil {
			t.Fatal(err)
		}
		check(step.name, step.id, step.metadata)
	}
}
