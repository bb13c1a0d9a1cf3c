package manage_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/internal/postgres"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/verify"
)

// rollReplicas are services over one database, each with its own index, as
// replicas of latchkey are: on PostgreSQL each has its own connection pool
// (its own Store), on SQLite they share the file's store.
type rollReplicas struct {
	stores []latchkey.Store
	svcs   []*manage.Service
	clock  *clock
	op     latchkey.Actor
}

func sqliteReplicas(t *testing.T) []latchkey.Store {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latchkey.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return []latchkey.Store{s}
}

func postgresReplicas(t *testing.T) []latchkey.Store {
	url := pgtest.NewDatabase(t)
	var out []latchkey.Store
	for range 2 {
		s, err := postgres.Open(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out = append(out, s)
	}
	return out
}

func newRollReplicas(t *testing.T, stores []latchkey.Store) *rollReplicas {
	t.Helper()
	r := &rollReplicas{stores: stores, clock: &clock{t: t0}}
	for i := range 2 {
		svc := manage.New(stores[i%len(stores)], verify.NewIndex(), nil)
		svc.Now = r.clock.Now
		r.svcs = append(r.svcs, svc)
	}
	boot, err := r.svcs[0].Bootstrap(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r.op = actorOf(boot, "192.0.2.10")
	if _, err := r.svcs[0].CreateApplication(t.Context(), r.op, latchkey.DefaultAccount, "billing", "", nil); err != nil {
		t.Fatal(err)
	}
	return r
}

// enforce runs a round of EnforcePolicies on every replica at once and
// adds up what they did.
func (r *rollReplicas) enforce(t *testing.T) manage.EnforceResult {
	t.Helper()
	var (
		mu  sync.Mutex
		sum manage.EnforceResult
		wg  sync.WaitGroup
	)
	for _, svc := range r.svcs {
		wg.Go(func() {
			res, err := svc.EnforcePolicies(t.Context())
			if err != nil {
				t.Errorf("EnforcePolicies: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			sum.Rolled += res.Rolled
			sum.Stalled += res.Stalled
			sum.Deactivated += res.Deactivated
		})
	}
	wg.Wait()
	return sum
}

// use records a valid call of key id at the clock's time, as a replica's
// usage recorder writes it.
func (r *rollReplicas) use(t *testing.T, id string) {
	t.Helper()
	at := r.clock.Now()
	err := r.stores[0].RecordUsage(t.Context(), []latchkey.UsageUpdate{{AccessKeyID: id, Uses: 1,
		LastUsed: &latchkey.Use{At: at, IP: "198.51.100.7", UserAgent: "billing/1"}}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRollDrivenToTheEnd rolls a key with a 2-minute grace and a 1-minute
// quiet period on an injected clock, and drives it to the end on SQLite
// and on two PostgreSQL replicas running every round at the same time:
//   - quiet: the old key was last used at 30 s; at 2 min it has been quiet
//     for 90 s and is deactivated;
//   - stalled: the old key is used every 30 s until 6 min; at 2 min the
//     roll stalls and rotation.stalled is sent, once; it is deactivated at
//     7 min, a quiet period after its last use;
//   - hard limit: used every 30 s throughout, deactivated at the 5-minute
//     hard limit anyway.
//
// Each deactivation, stall and notice happens once in all: the sums over
// the replicas of every round are checked.
func TestRollDrivenToTheEnd(t *testing.T) {
	backends := []struct {
		name   string
		stores func(*testing.T) []latchkey.Store
	}{{"sqlite", sqliteReplicas}, {"postgres", postgresReplicas}}
	cases := []struct {
		name      string
		hardLimit *latchkey.Duration
		usedUntil time.Duration // the old key is used every 30 s up to here
		stallAt   time.Duration // 0: never stalls
		doneAt    time.Duration
		outcome   string
	}{
		{"quiet", nil, 30 * time.Second, 0, 2 * time.Minute, latchkey.RotationEndQuiet},
		{"stalled", nil, 6 * time.Minute, 2 * time.Minute, 7 * time.Minute, latchkey.RotationEndQuiet},
		{"hard limit", dur(5 * time.Minute), time.Hour, 2 * time.Minute, 5 * time.Minute, latchkey.RotationEndHardLimit},
	}
	for _, b := range backends {
		for _, c := range cases {
			t.Run(b.name+"/"+c.name, func(t *testing.T) {
				r := newRollReplicas(t, b.stores(t))
				ctx := t.Context()
				dest := &manage.Destinations{
					Policy:   latchkey.DestinationPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
					Resolver: noDNS{},
				}
				r.svcs[0].Destinations = dest
				rcv := newReceiver(t, r.clock.Now, 0)
				w, err := r.svcs[0].CreateWebhook(ctx, r.op, latchkey.DefaultAccount, latchkey.NewWebhook{URL: rcv.srv.URL + "/hook",
					Events: []string{latchkey.EventRotationStalled}})
				if err != nil {
					t.Fatal(err)
				}
				rcv.secret = w.Secret
				old, err := r.svcs[0].CreateAccessKey(ctx, r.op, latchkey.DefaultAccount, "billing", latchkey.NewAccessKey{Description: "billing prod"})
				if err != nil {
					t.Fatal(err)
				}
				rolled, err := r.svcs[1].RollAccessKey(ctx, r.op, old.ID, latchkey.Roll{
					OldKeyExpiresIn: dur(2 * time.Minute), QuietPeriod: dur(time.Minute), HardLimit: c.hardLimit})
				if err != nil {
					t.Fatal(err)
				}
				if rolled.AccessKey.Secret == "" || rolled.AccessKey.ID == old.ID || rolled.AccessKey.Description != "billing prod" {
					t.Fatalf("successor %+v", rolled.AccessKey.AccessKey)
				}
				if _, err := r.svcs[0].RollAccessKey(ctx, r.op, old.ID, latchkey.Roll{}); latchkey.ErrorCode(err) != latchkey.ELIMIT {
					t.Errorf("second roll: %v, want ELIMIT", err)
				}
				var rolledTotal, stalledTotal int
				for at := time.Duration(0); at <= 10*time.Minute; at += 30 * time.Second {
					r.clock.mu.Lock()
					r.clock.t = t0.Add(at)
					r.clock.mu.Unlock()
					if at <= c.usedUntil {
						r.use(t, old.ID)
					}
					res := r.enforce(t)
					wantRolled, wantStalled := 0, 0
					if at == c.doneAt {
						wantRolled = 1
					}
					if at == c.stallAt && c.stallAt != 0 {
						wantStalled = 1
					}
					if res.Rolled != wantRolled || res.Stalled != wantStalled || res.Deactivated != 0 {
						t.Fatalf("at %v: %+v, want %d rolled and %d stalled", at, res, wantRolled, wantStalled)
					}
					rolledTotal += res.Rolled
					stalledTotal += res.Stalled
					k, err := r.svcs[0].GetAccessKey(ctx, r.op, old.ID)
					if err != nil {
						t.Fatal(err)
					}
					if want := latchkey.StatusActive; at >= c.doneAt {
						if k.Status != latchkey.StatusInactive {
							t.Fatalf("at %v: old key %s, want Inactive", at, k.Status)
						}
					} else if k.Status != want {
						t.Fatalf("at %v: old key %s, want %s", at, k.Status, want)
					}
				}
				rots, err := r.svcs[1].ListRotations(ctx, r.op, latchkey.DefaultAccount, old.ID, false)
				if err != nil || len(rots) != 1 {
					t.Fatalf("ListRotations = %v, %v", rots, err)
				}
				got := rots[0]
				if got.State != latchkey.RotationDone || got.Outcome != c.outcome || !got.DoneAt.Equal(t0.Add(c.doneAt)) ||
					got.NewKeyID != rolled.AccessKey.ID {
					t.Errorf("roll at the end: %+v, want done (%s) at %v", got, c.outcome, c.doneAt)
				}
				if (got.StalledAt != nil) != (c.stallAt != 0) {
					t.Errorf("stalled_at %v, want a time: %v", got.StalledAt, c.stallAt != 0)
				}
				// The audit: one deactivation by the policy, and the roll's
				// own changes (stalled, done) once each.
				var policyActs []string
				err = r.stores[0].View(ctx, func(tx latchkey.Tx) error {
					evs, _, err := tx.ListAuditEvents(ctx, latchkey.AuditFilter{Limit: 1000})
					for _, ev := range evs {
						if ev.Actor == latchkey.PolicyActor {
							policyActs = append([]string{ev.Action}, policyActs...)
						}
					}
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				want := []string{latchkey.ActionAccessKeyUpdate, latchkey.ActionRotationUpdate}
				if c.stallAt != 0 {
					want = append([]string{latchkey.ActionRotationUpdate}, want...)
				}
				if diff := cmp.Diff(want, policyActs); diff != "" {
					t.Errorf("audit events by the policy (-want +got):\n%s", diff)
				}
				// The ledger holds the roll's entries, once each.
				var kinds []string
				err = r.stores[0].View(ctx, func(tx latchkey.Tx) error {
					as, err := tx.ListPolicyActions(ctx, latchkey.PolicyActionFilter{AccessKeyID: old.ID})
					for _, a := range as {
						kinds = append(kinds, a.Kind)
					}
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				wantKinds := []string{latchkey.ActionKindRollDeactivate}
				if c.stallAt != 0 {
					wantKinds = []string{latchkey.NoticeRotationStalled, latchkey.ActionKindRollDeactivate}
				}
				if diff := cmp.Diff(wantKinds, kinds); diff != "" {
					t.Errorf("ledger entries of the old key (-want +got):\n%s", diff)
				}
				d := manage.NewDispatcher(r.stores[1%len(r.stores)], nil)
				d.Destinations, d.Now = dest, r.clock.Now
				if _, err := d.RunOnce(ctx); err != nil {
					t.Fatal(err)
				}
				var wantHooks []string
				if c.stallAt != 0 {
					wantHooks = []string{latchkey.EventRotationStalled}
				}
				if diff := cmp.Diff(wantHooks, rcv.types()); diff != "" {
					t.Errorf("webhooks received (-want +got):\n%s", diff)
				}
				if rolledTotal != 1 || stalledTotal != min(1, int(c.stallAt)) {
					t.Errorf("%d deactivations and %d stalls in all", rolledTotal, stalledTotal)
				}
			})
		}
	}
}

// TestRollRefusesAndCarries: a canary and a signing key are not rolled (the
// server holds no private key to give a signing key's successor); a bearer
// key's successor keeps its external ID and metadata.
func TestRollRefusesAndCarries(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.app(t, "default", "web")
	e.app(t, "default", "api")
	canary, err := e.svc.CreateAccessKey(ctx, e.operator, "default", "web", latchkey.NewAccessKey{Canary: true})
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	signing, err := e.svc.CreateAccessKey(ctx, e.operator, "default", "web", latchkey.NewAccessKey{
		PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{canary.ID, signing.ID} {
		_, err := e.svc.RollAccessKey(ctx, e.operator, id, latchkey.Roll{})
		wantCode(t, err, latchkey.EINVALID)
	}
	_, err = e.svc.CreateAccessKey(ctx, e.operator, "default", "web", latchkey.NewAccessKey{Canary: true,
		PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))})
	wantCode(t, err, latchkey.EINVALID)

	old, err := e.svc.CreateAccessKey(ctx, e.operator, "default", "api", latchkey.NewAccessKey{
		ExternalID: "cus_42", Metadata: json.RawMessage(`{"plan":"pro"}`)})
	if err != nil {
		t.Fatal(err)
	}
	rolled, err := e.svc.RollAccessKey(ctx, e.operator, old.ID, latchkey.Roll{})
	if err != nil {
		t.Fatal(err)
	}
	succ, err := e.svc.GetAccessKey(ctx, e.operator, rolled.AccessKey.ID)
	if err != nil {
		t.Fatal(err)
	}
	if succ.ExternalID != "cus_42" || string(succ.Metadata) != `{"plan":"pro"}` || succ.KeyType != latchkey.KeyTypeBearer {
		t.Errorf("successor: external ID %q, metadata %s, type %q; want the old key's and bearer", succ.ExternalID, succ.Metadata, succ.KeyType)
	}
}
