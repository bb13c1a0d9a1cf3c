package manage_test

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/verify"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a Service over a SQLite store in a temporary directory, with the
// default account, account "other", and an actor of every role.
type env struct {
	svc   *manage.Service
	store *sqlite.Store
	ix    *verify.Index
	clock *clock
	// dest is the webhook destination policy of svc and of e.dispatcher:
	// it opens 127.0.0.1, where the tests' receivers listen, as an
	// operator would with --webhook-allow-cidr, and asks no real DNS.
	dest *manage.Destinations

	operator, admin, otherAdmin, viewer, verifier latchkey.Actor
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latchkey.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{store: store, ix: verify.NewIndex(), clock: &clock{t: t0}, dest: &manage.Destinations{
		Policy:   latchkey.DestinationPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
		Resolver: noDNS{},
	}}
	e.svc = manage.New(store, e.ix, nil)
	e.svc.Now = e.clock.Now
	e.svc.Destinations = e.dest
	boot, err := e.svc.Bootstrap(t.Context())
	if err != nil || boot == nil {
		t.Fatalf("Bootstrap = %v, %v", boot, err)
	}
	if again, err := e.svc.Bootstrap(t.Context()); again != nil || err != nil {
		t.Fatalf("second Bootstrap = %v, %v; want nothing", again, err)
	}
	e.operator = actorOf(boot, "192.0.2.10")
	if _, err := e.svc.CreateAccount(t.Context(), e.operator, "other", latchkey.AccountUpdate{}); err != nil {
		t.Fatal(err)
	}
	e.admin = e.principal(t, latchkey.DefaultAccount, "alice", latchkey.RoleAdmin)
	e.viewer = e.principal(t, latchkey.DefaultAccount, "victor", latchkey.RoleViewer)
	e.verifier = e.principal(t, latchkey.DefaultAccount, "vera", latchkey.RoleVerifier)
	e.otherAdmin = e.principal(t, "other", "olga", latchkey.RoleAdmin)
	return e
}

// noDNS knows no name, so that tests never ask the network.
type noDNS struct{}

func (noDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// actorOf is the actor a principal's key signs in as.
func actorOf(k *manage.CreatedKey, ip string) latchkey.Actor {
	return latchkey.Actor{Principal: k.Principal, Account: k.Account, Role: k.Role, AccessKeyID: k.ID, SourceIP: ip, UserAgent: "test/1"}
}

func (e *env) principal(t *testing.T, account, name string, role latchkey.Role) latchkey.Actor {
	t.Helper()
	p, err := e.svc.CreatePrincipal(t.Context(), e.operator, account, name, role)
	if err != nil {
		t.Fatalf("CreatePrincipal(%s, %s): %v", account, name, err)
	}
	return actorOf(p.AccessKey, "192.0.2.11")
}

func (e *env) app(t *testing.T, account, name string) {
	t.Helper()
	if _, err := e.svc.CreateApplication(t.Context(), e.operator, account, name, "", nil); err != nil {
		t.Fatalf("CreateApplication(%s, %s): %v", account, name, err)
	}
}

func (e *env) key(t *testing.T, account, app string) *manage.CreatedKey {
	t.Helper()
	k, err := e.svc.CreateAccessKey(t.Context(), e.operator, account, app, latchkey.NewAccessKey{})
	if err != nil {
		t.Fatalf("CreateAccessKey(%s, %s): %v", account, app, err)
	}
	return k
}

func (e *env) deactivate(t *testing.T, id string) {
	t.Helper()
	st := latchkey.StatusInactive
	if _, err := e.svc.UpdateAccessKey(t.Context(), e.operator, id, latchkey.AccessKeyUpdate{Status: &st}); err != nil {
		t.Fatal(err)
	}
}

// events returns every audit event, oldest first.
func (e *env) events(t *testing.T) []*latchkey.AuditEvent {
	t.Helper()
	var all []*latchkey.AuditEvent
	f := latchkey.AuditFilter{Limit: 1000}
	for {
		evs, next, err := e.svc.ListAuditEvents(t.Context(), e.operator, f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
		if next == "" {
			break
		}
		f.After = next
	}
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	return all
}

// storedKey reads a key from the store; nil if it does not exist.
func (e *env) storedKey(t *testing.T, id string) *latchkey.AccessKey {
	t.Helper()
	var k *latchkey.AccessKey
	err := e.store.View(t.Context(), func(tx latchkey.Tx) (err error) {
		k, err = tx.FindAccessKey(t.Context(), id)
		return err
	})
	if latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	return k
}

// keyCount returns how many keys the store holds.
func (e *env) keyCount(t *testing.T) int {
	t.Helper()
	n := 0
	if err := e.store.ScanAccessKeys(t.Context(), func(*latchkey.AccessKey) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := latchkey.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}
