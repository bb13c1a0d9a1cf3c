package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/verify"
)

var storeTests = []test{
	{"ScanAccessKeys", testScanAccessKeys},
	{"ScanKeyIndex", testScanKeyIndex},
	{"ScanKeyIndexParts", testScanKeyIndexParts},
	{"ScanStops", testScanStops},
	{"UpdateRollsBackOnError", testUpdateRollsBackOnError},
	{"UpdateRollsBackAfterTxError", testUpdateRollsBackAfterTxError},
	{"UpdateRollsBackOnPanic", testUpdateRollsBackOnPanic},
	{"ViewReturnsError", testViewReturnsError},
	{"ViewIsReadOnly", testViewIsReadOnly},
	{"ConcurrentKeyLimit", testConcurrentKeyLimit},
	{"ConcurrentPrincipalKeyLimit", testConcurrentPrincipalKeyLimit},
	{"FindAccessKeyLocks", testFindAccessKeyLocks},
	{"Ping", testPing},
	{"Close", testClose},
}

func testScanAccessKeys(t *testing.T, s latchkey.Store) {
	if keys := allKeys(t, s); len(keys) != 0 {
		t.Fatalf("ScanAccessKeys on an empty store: %v", keys)
	}
	createAccount(t, s, "acme")
	createAccount(t, s, "other")
	createApplication(t, s, "acme", "billing")
	createApplication(t, s, "other", "billing")
	createPrincipal(t, s, "acme", "alice", latchkey.RoleOperator)
	createPrincipal(t, s, "other", "bob", latchkey.RoleVerifier)
	want := map[string]*latchkey.AccessKey{}
	add := func(k *latchkey.AccessKey, role latchkey.Role) {
		createKey(t, s, k)
		w := *k
		w.Role = role
		want[k.ID] = &w
	}
	add(newKey(t, "acme", "billing", at(1)), "")
	inactive := newKey(t, "acme", "billing", at(2))
	inactive.Status = latchkey.StatusInactive
	inactive.ExpiresAt = ptr(at(50))
	add(inactive, "")
	add(newKey(t, "other", "billing", at(3)), "")
	add(newPrincipalKey(t, "acme", "alice", at(4)), latchkey.RoleOperator)
	add(newPrincipalKey(t, "other", "bob", at(5)), latchkey.RoleVerifier)

	if diff := cmp.Diff(want, allKeys(t, s)); diff != "" {
		t.Errorf("ScanAccessKeys mismatch (-want +got):\n%s", diff)
	}
}

// testScanStops: both scans stop at the callback's first error and return
// it, and the store is usable afterwards.
func testScanStops(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "billing")
	createKey(t, s, newKey(t, "acme", "billing", at(1)))
	createKey(t, s, newKey(t, "acme", "billing", at(2)))
	scans := []struct {
		name string
		scan func(context.Context, func(*latchkey.AccessKey) error) error
	}{
		{"ScanAccessKeys", s.ScanAccessKeys},
		{"ScanKeyIndex", s.ScanKeyIndex},
	}
	for _, sc := range scans {
		stop := errors.New("stop here")
		calls := 0
		err := sc.scan(t.Context(), func(*latchkey.AccessKey) error {
			calls++
			return stop
		})
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("%s returned %v after %d calls, want the callback's error after 1", sc.name, err, calls)
		}
		// The store is still usable afterwards.
		if n := len(allKeys(t, s)); n != 2 {
			t.Errorf("after a stopped %s, ScanAccessKeys found %d keys, want 2", sc.name, n)
		}
	}
}

// testScanKeyIndex: ScanKeyIndex returns every key with exactly the
// fields a decision needs, equal to what ScanAccessKeys returns for them,
// whatever else the key carries (usage, exposure, descriptions), and each
// application's restrictions from its own account.
func testScanKeyIndex(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createAccount(t, s, "other")
	restricted := sampleRestrictions()
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		return tx.CreateApplication(ctx, &latchkey.Application{Account: "acme", Name: "web", CreatedAt: at(0), Restrictions: restricted})
	})
	createApplication(t, s, "other", "web") // same name, no restrictions
	createApplication(t, s, "acme", "batch")
	createPrincipal(t, s, "acme", "alice", latchkey.RoleAdmin)
	createPrincipal(t, s, "other", "alice", latchkey.RoleViewer)

	plain := newKey(t, "acme", "web", at(1))
	own := newKey(t, "acme", "batch", at(2))
	own.Restrictions = &latchkey.Restrictions{Scopes: []string{"shipments:read"}}
	own.ReportOnly = &latchkey.Restrictions{AllowedIPs: []string{"192.0.2.0/24"}}
	own.ExpiresAt = ptr(at(90))
	own.Description = "nightly batch"
	own.ExternalID, own.Metadata = "cus_42", json.RawMessage(`{"plan":"pro"}`)
	inactive := newKey(t, "other", "web", at(3))
	inactive.Status = latchkey.StatusInactive
	inactive.Exposed = &latchkey.Exposure{At: at(4), Where: "a public gist"}
	for _, k := range []*latchkey.AccessKey{plain, own, inactive,
		newPrincipalKey(t, "acme", "alice", at(5)), newPrincipalKey(t, "other", "alice", at(6))} {
		createKey(t, s, k)
	}
	err := s.RecordUsage(t.Context(), []latchkey.UsageUpdate{{AccessKeyID: plain.ID, Uses: 3,
		LastUsed: &latchkey.Use{At: at(7), IP: "192.0.2.1", UserAgent: "curl"}}})
	if err != nil {
		t.Fatal(err)
	}

	want := map[string]*latchkey.AccessKey{}
	for id, k := range allKeys(t, s) {
		want[id] = &latchkey.AccessKey{ID: k.ID, Account: k.Account, Application: k.Application, Principal: k.Principal,
			Role: k.Role, SecretDigest: k.SecretDigest, Status: k.Status, ExpiresAt: k.ExpiresAt,
			Restrictions: k.Restrictions, ReportOnly: k.ReportOnly, AppRestrictions: k.AppRestrictions,
			ExternalID: k.ExternalID, Metadata: k.Metadata, KeyType: k.KeyType, PublicKey: k.PublicKey}
	}
	if len(want) != 5 || want[plain.ID].AppRestrictions == nil || want[inactive.ID].AppRestrictions != nil || want[own.ID].ExternalID != "cus_42" {
		t.Fatalf("ScanAccessKeys gives %d keys, application restrictions %v and %v; the test's premise does not hold",
			len(want), want[plain.ID].AppRestrictions, want[inactive.ID].AppRestrictions)
	}
	got := map[string]*latchkey.AccessKey{}
	err = s.ScanKeyIndex(t.Context(), func(k *latchkey.AccessKey) error {
		if _, dup := got[k.ID]; dup {
			t.Errorf("ScanKeyIndex returned %s twice", k.ID)
		}
		got[k.ID] = k
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ScanKeyIndex mismatch (-want +got):\n%s", diff)
	}
}

// writeEverything makes one object of every kind in tx.
func writeEverything(ctx context.Context, t *testing.T, tx latchkey.Tx) error {
	if err := tx.CreateAccount(ctx, &latchkey.Account{Name: "acme", CreatedAt: base}); err != nil {
		return err
	}
	if err := tx.CreateApplication(ctx, &latchkey.Application{Account: "acme", Name: "billing", CreatedAt: base}); err != nil {
		return err
	}
	if err := tx.CreatePrincipal(ctx, &latchkey.Principal{Account: "acme", Name: "alice", Role: latchkey.RoleAdmin, CreatedAt: base}); err != nil {
		return err
	}
	if err := tx.CreateAccessKey(ctx, newKey(t, "acme", "billing", base)); err != nil {
		return err
	}
	if err := tx.CreateAccessKey(ctx, newPrincipalKey(t, "acme", "alice", base)); err != nil {
		return err
	}
	return tx.AppendAudit(ctx, &latchkey.AuditEvent{Time: base, Account: "acme", Actor: "system",
		Action: latchkey.ActionAccountCreate, TargetType: "account", Target: "acme"})
}

// wantEmpty fails the test if the store holds any object.
func wantEmpty(t *testing.T, s latchkey.Store) {
	t.Helper()
	view(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		accounts, err := tx.ListAccounts(ctx)
		if err != nil {
			return err
		}
		apps, _, err := tx.ListApplications(ctx, latchkey.ApplicationFilter{})
		if err != nil {
			return err
		}
		ps, err := tx.ListPrincipals(ctx, "")
		if err != nil {
			return err
		}
		keys, _, err := tx.ListAccessKeys(ctx, latchkey.AccessKeyFilter{})
		if err != nil {
			return err
		}
		evs, _, err := tx.ListAuditEvents(ctx, latchkey.AuditFilter{})
		if err != nil {
			return err
		}
		if len(accounts)+len(apps)+len(ps)+len(keys)+len(evs) > 0 {
			t.Errorf("store not empty: %d accounts, %d applications, %d principals, %d keys, %d audit events",
				len(accounts), len(apps), len(ps), len(keys), len(evs))
		}
		return nil
	})
	if keys := allKeys(t, s); len(keys) != 0 {
		t.Errorf("ScanAccessKeys finds %d keys", len(keys))
	}
}

func testUpdateRollsBackOnError(t *testing.T, s latchkey.Store) {
	boom := errors.New("boom")
	err := tryUpdate(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		if err := writeEverything(ctx, t, tx); err != nil {
			t.Errorf("writing: %v", err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	wantEmpty(t, s)

	// The store is still writable, and the names are free.
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return writeEverything(ctx, t, tx) })
}

func testUpdateRollsBackAfterTxError(t *testing.T, s latchkey.Store) {
	err := tryUpdate(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		if err := writeEverything(ctx, t, tx); err != nil {
			t.Errorf("writing: %v", err)
		}
		return tx.CreateAccount(ctx, &latchkey.Account{Name: "acme", CreatedAt: base})
	})
	wantCode(t, err, latchkey.EEXISTS)
	wantEmpty(t, s)
}

// testUpdateRollsBackOnPanic checks that a panic in fn (which net/http
// recovers from in a handler) rolls the transaction back instead of leaving
// it open and holding the write lock or connection forever.
func testUpdateRollsBackOnPanic(t *testing.T, s latchkey.Store) {
	for _, kind := range []string{"Update", "View"} {
		t.Run(kind, func(t *testing.T) {
			func() {
				defer func() {
					if r := recover(); r != "boom" {
						t.Errorf("recovered %v, want the panic of fn", r)
					}
				}()
				run := s.Update
				if kind == "View" {
					run = s.View
				}
				_ = run(context.Background(), func(tx latchkey.Tx) error {
					if kind == "Update" {
						if err := writeEverything(t.Context(), t, tx); err != nil {
							t.Errorf("writing: %v", err)
						}
					}
					panic("boom")
				})
			}()
			wantEmpty(t, s)
		})
	}
	// Writes still go through, more of them than a pool has connections.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for i := range 20 {
		err := s.Update(ctx, func(tx latchkey.Tx) error {
			return tx.CreateAccount(ctx, &latchkey.Account{Name: fmt.Sprint("a", i), CreatedAt: base})
		})
		if err != nil {
			t.Fatalf("Update %d after a panic: %v", i, err)
		}
	}
}

func testViewReturnsError(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	boom := errors.New("boom")
	err := s.View(t.Context(), func(tx latchkey.Tx) error {
		if _, err := tx.FindAccount(t.Context(), "acme"); err != nil {
			t.Errorf("FindAccount in a View: %v", err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("View returned %v, want fn's error", err)
	}
}

func testViewIsReadOnly(t *testing.T, s latchkey.Store) {
	err := s.View(t.Context(), func(tx latchkey.Tx) error {
		return tx.CreateAccount(t.Context(), &latchkey.Account{Name: "acme", CreatedAt: base})
	})
	if err == nil {
		t.Error("a write in a View succeeded")
	}
	wantEmpty(t, s)
}

// runConcurrently calls fn from n goroutines that start together and
// returns the error codes they got, counted.
func runConcurrently(n int, fn func(i int) error) map[string]int {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[string]int{}
		start = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			err := fn(i)
			mu.Lock()
			codes[latchkey.ErrorCode(err)]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return codes
}

// testConcurrentKeyLimit creates keys for one application from many
// goroutines, each through its own manage.Service (as separate replicas
// would, so no in-process mutex orders them). The limit is checked in the
// transaction, on the count FindApplication returns: only the store's
// locking keeps it.
func testConcurrentKeyLimit(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "billing")
	ix := verify.NewIndex()
	codes := runConcurrently(10, func(int) error {
		svc := manage.New(s, ix, nil)
		svc.MaxKeysPerApplication = 2
		_, err := svc.CreateAccessKey(context.Background(), latchkey.System(), "acme", "billing", latchkey.NewAccessKey{})
		return err
	})
	if diff := cmp.Diff(map[string]int{"": 2, latchkey.ELIMIT: 8}, codes); diff != "" {
		t.Errorf("outcomes by error code (-want +got):\n%s", diff)
	}
	app, err := findApp(t, s, "acme", "billing")
	if err != nil {
		t.Fatal(err)
	}
	if app.KeyCount != 2 {
		t.Errorf("KeyCount = %d, want 2", app.KeyCount)
	}
	if n := ix.Len(); n != 2 {
		t.Errorf("index holds %d keys, want 2", n)
	}
	var evs []*latchkey.AuditEvent
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		evs, _, err = tx.ListAuditEvents(ctx, latchkey.AuditFilter{Action: latchkey.ActionAccessKeyCreate})
		return err
	})
	if len(evs) != 2 {
		t.Errorf("%d audit events for created keys, want 2", len(evs))
	}
}

// testConcurrentPrincipalKeyLimit is the same for a principal's keys,
// whose limit is checked after FindPrincipal locked the principal.
func testConcurrentPrincipalKeyLimit(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createPrincipal(t, s, "acme", "alice", latchkey.RoleAdmin)
	createKey(t, s, newPrincipalKey(t, "acme", "alice", at(1)))
	ix := verify.NewIndex()
	codes := runConcurrently(10, func(int) error {
		svc := manage.New(s, ix, nil)
		svc.MaxKeysPerApplication = 2
		_, err := svc.CreatePrincipalKey(context.Background(), latchkey.System(), "acme", "alice", "second key")
		return err
	})
	if diff := cmp.Diff(map[string]int{"": 1, latchkey.ELIMIT: 9}, codes); diff != "" {
		t.Errorf("outcomes by error code (-want +got):\n%s", diff)
	}
	var keys []*latchkey.AccessKey
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		keys, _, err = tx.ListAccessKeys(ctx, latchkey.AccessKeyFilter{Account: "acme", Principal: "alice"})
		return err
	})
	if len(keys) != 2 {
		t.Errorf("principal has %d keys, want 2", len(keys))
	}
}

// testFindAccessKeyLocks increments a counter kept in a key's description
// from many goroutines: without the row lock of FindAccessKey in an Update,
// increments are lost.
func testFindAccessKeyLocks(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "billing")
	k := newKey(t, "acme", "billing", at(1))
	k.Description = "0"
	createKey(t, s, k)
	const n = 10
	codes := runConcurrently(n, func(int) error {
		ctx := context.Background()
		return s.Update(ctx, func(tx latchkey.Tx) error {
			cur, err := tx.FindAccessKey(ctx, k.ID)
			if err != nil {
				return err
			}
			v, err := strconv.Atoi(cur.Description)
			if err != nil {
				return err
			}
			cur.Description = strconv.Itoa(v + 1)
			return tx.UpdateAccessKey(ctx, cur)
		})
	})
	if diff := cmp.Diff(map[string]int{"": n}, codes); diff != "" {
		t.Errorf("outcomes by error code (-want +got):\n%s", diff)
	}
	if got := mustFindKey(t, s, k.ID).Description; got != strconv.Itoa(n) {
		t.Errorf("counter = %s after %d locked increments, want %d", got, n, n)
	}
}

func testPing(t *testing.T, s latchkey.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func testClose(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := t.Context()
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping after Close succeeded")
	}
	if err := s.Update(ctx, func(tx latchkey.Tx) error {
		return tx.CreateAccount(ctx, &latchkey.Account{Name: "other", CreatedAt: base})
	}); err == nil {
		t.Error("Update after Close succeeded")
	}
	if err := s.View(ctx, func(tx latchkey.Tx) error {
		_, err := tx.FindAccount(ctx, "acme")
		return err
	}); err == nil {
		t.Error("View after Close succeeded")
	}
	if err := s.ScanAccessKeys(ctx, func(*latchkey.AccessKey) error { return nil }); err == nil {
		t.Error("ScanAccessKeys after Close succeeded")
	}
}
