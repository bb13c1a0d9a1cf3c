// Package storetest is the conformance suite of latchkey.Store: one set of
// tests that every storage adapter (internal/sqlite, internal/postgres) runs
// against itself, so that both keep exactly the contract documented in
// store.go, error codes included.
//
// An adapter's test calls Run with a function that opens a new, empty store
// (no accounts at all) and closes it with t.Cleanup:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) latchkey.Store {
//			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "test.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The subtests of a group run in parallel, so open must be safe for
// concurrent use. Close may be called twice: one subtest closes its store
// itself. Key material is generated at run time with keyformat; no secret
// is a fixture.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// Run runs every conformance test against stores made by open. Each subtest
// gets its own store.
func Run(t *testing.T, open func(t *testing.T) latchkey.Store) {
	t.Helper()
	groups := []struct {
		name  string
		tests []test
	}{
		{"Account", accountTests},
		{"AuditChain", auditChainTests},
		{"AuditStream", auditStreamTests},
		{"Application", applicationTests},
		{"Principal", principalTests},
		{"AccessKey", accessKeyTests},
		{"Audit", auditTests},
		{"Usage", usageTests},
		{"Restrictions", restrictionTests},
		{"Store", storeTests},
		{"Policy", policyTests},
		{"Webhook", webhookTests},
		{"Portal", portalTests},
		{"Identity", identityTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tt := range g.tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.fn(t, open(t))
				})
			}
		})
	}
}

// test is one conformance test; it receives a new, empty store.
type test struct {
	name string
	fn   func(t *testing.T, s latchkey.Store)
}

// base is the time the fixtures are created at. It has microseconds, so a
// store that keeps only milliseconds or seconds fails the round trips.
var base = time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)

// at returns base plus n seconds.
func at(n int) time.Time { return base.Add(time.Duration(n) * time.Second) }

func ptr[T any](v T) *T { return &v }

// update runs fn in an Update transaction and fails the test on error.
func update(t *testing.T, s latchkey.Store, fn func(ctx context.Context, tx latchkey.Tx) error) {
	t.Helper()
	ctx := t.Context()
	if err := s.Update(ctx, func(tx latchkey.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// view runs fn in a View transaction and fails the test on error.
func view(t *testing.T, s latchkey.Store, fn func(ctx context.Context, tx latchkey.Tx) error) {
	t.Helper()
	ctx := t.Context()
	if err := s.View(ctx, func(tx latchkey.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// tryUpdate runs fn in an Update transaction and returns its error.
func tryUpdate(t *testing.T, s latchkey.Store, fn func(ctx context.Context, tx latchkey.Tx) error) error {
	t.Helper()
	ctx := t.Context()
	return s.Update(ctx, func(tx latchkey.Tx) error { return fn(ctx, tx) })
}

// wantCode fails the test unless err carries the latchkey error code want
// ("" for no error).
func wantCode(t *testing.T, err error, want string) {
	t.Helper()
	if got := latchkey.ErrorCode(err); got != want {
		t.Fatalf("error code = %q, want %q (error: %v)", got, want, err)
	}
	if want == "" {
		return
	}
	var le *latchkey.Error
	if !errors.As(err, &le) {
		t.Fatalf("error %v is not a *latchkey.Error", err)
	}
	if le.Message == "" {
		t.Fatalf("error %v has an empty public message", err)
	}
}

func createAccount(t *testing.T, s latchkey.Store, name string) *latchkey.Account {
	t.Helper()
	a := &latchkey.Account{Name: name, CreatedAt: base}
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.CreateAccount(ctx, a) })
	return a
}

func createApplication(t *testing.T, s latchkey.Store, account, name string) *latchkey.Application {
	t.Helper()
	app := &latchkey.Application{Account: account, Name: name, Description: "app " + name, CreatedAt: base}
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.CreateApplication(ctx, app) })
	return app
}

func createPrincipal(t *testing.T, s latchkey.Store, account, name string, role latchkey.Role) *latchkey.Principal {
	t.Helper()
	p := &latchkey.Principal{Account: account, Name: name, Role: role, CreatedAt: base}
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.CreatePrincipal(ctx, p) })
	return p
}

// newKey returns an Active key with fresh key material, owned by the
// application app or, when app is "", by nobody (the caller sets an owner).
func newKey(t testing.TB, account, app string, created time.Time) *latchkey.AccessKey {
	t.Helper()
	id, err := keyformat.NewID()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := keyformat.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return &latchkey.AccessKey{
		ID:           id,
		Account:      account,
		Application:  app,
		Description:  "key of " + app,
		Status:       latchkey.StatusActive,
		CreatedAt:    created,
		UpdatedAt:    created,
		SecretDigest: keyformat.Sum(secret),
		KeyType:      latchkey.KeyTypeBearer,
	}
}

func newPrincipalKey(t *testing.T, account, principal string, created time.Time) *latchkey.AccessKey {
	t.Helper()
	k := newKey(t, account, "", created)
	k.Principal = principal
	k.Description = "key of " + principal
	return k
}

func createKey(t *testing.T, s latchkey.Store, k *latchkey.AccessKey) *latchkey.AccessKey {
	t.Helper()
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.CreateAccessKey(ctx, k) })
	return k
}

func findKey(t *testing.T, s latchkey.Store, id string) (*latchkey.AccessKey, error) {
	t.Helper()
	var k *latchkey.AccessKey
	err := s.View(t.Context(), func(tx latchkey.Tx) (err error) {
		k, err = tx.FindAccessKey(t.Context(), id)
		return err
	})
	return k, err
}

func mustFindKey(t *testing.T, s latchkey.Store, id string) *latchkey.AccessKey {
	t.Helper()
	k, err := findKey(t, s, id)
	if err != nil {
		t.Fatalf("FindAccessKey(%s): %v", id, err)
	}
	return k
}

// allKeys returns every key the store has, through ScanAccessKeys.
func allKeys(t *testing.T, s latchkey.Store) map[string]*latchkey.AccessKey {
	t.Helper()
	out := map[string]*latchkey.AccessKey{}
	err := s.ScanAccessKeys(t.Context(), func(k *latchkey.AccessKey) error {
		if _, dup := out[k.ID]; dup {
			t.Errorf("ScanAccessKeys returned %s twice", k.ID)
		}
		out[k.ID] = k
		return nil
	})
	if err != nil {
		t.Fatalf("ScanAccessKeys: %v", err)
	}
	return out
}

// keyIDs returns the IDs of keys, in order.
func keyIDs(keys []*latchkey.AccessKey) []string {
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	return ids
}
