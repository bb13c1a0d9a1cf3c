package manage_test

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/verify"
)

func TestIdentityCRUDAndValidation(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	id, err := e.svc.CreateIdentity(ctx, e.admin, latchkey.DefaultAccount, latchkey.NewIdentity{Name: "acme", ExternalID: "cus_1",
		Metadata: json.RawMessage(`{ "plan" : "pro" }`), RateLimit: &latchkey.RateLimit{PerMinute: 60},
		Quota: &latchkey.Quota{Remaining: 100, Refill: &latchkey.Refill{Amount: 100, Interval: "monthly:1"}, LowThreshold: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if !latchkey.ValidIdentityID(id.ID) || string(id.Metadata) != `{"plan":"pro"}` || id.Quota == nil || id.Quota.Remaining != 100 {
		t.Fatalf("created %+v", id)
	}
	got, err := e.svc.GetIdentity(ctx, e.viewer, latchkey.DefaultAccount, id.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "acme" || got.ExternalID != "cus_1" || got.RateLimit.PerMinute != 60 || got.Quota.Remaining != 100 || got.Quota.NextRefillAt == nil {
		t.Errorf("GetIdentity = %+v, quota %+v", got, got.Quota)
	}
	for _, tc := range []struct {
		name string
		in   latchkey.NewIdentity
		code string
	}{
		{"no name", latchkey.NewIdentity{}, latchkey.EINVALID},
		{"bad name", latchkey.NewIdentity{Name: "-x"}, latchkey.EINVALID},
		{"bad external ID", latchkey.NewIdentity{Name: "x", ExternalID: "a b"}, latchkey.EINVALID},
		{"metadata not an object", latchkey.NewIdentity{Name: "x", Metadata: json.RawMessage(`[1]`)}, latchkey.EMALFORMED},
		{"metadata repeats a key", latchkey.NewIdentity{Name: "x", Metadata: json.RawMessage(`{"a":1,"a":2}`)}, latchkey.EINVALID},
		{"rate limit without a rate", latchkey.NewIdentity{Name: "x", RateLimit: &latchkey.RateLimit{}}, latchkey.EINVALID},
		{"bad quota", latchkey.NewIdentity{Name: "x", Quota: &latchkey.Quota{Remaining: -1}}, latchkey.EINVALID},
		{"bad refill", latchkey.NewIdentity{Name: "x", Quota: &latchkey.Quota{Remaining: 1, Refill: &latchkey.Refill{Amount: 1, Interval: "monthly:31"}}}, latchkey.EINVALID},
		{"name taken", latchkey.NewIdentity{Name: "acme"}, latchkey.EEXISTS},
		{"external ID taken", latchkey.NewIdentity{Name: "acme2", ExternalID: "cus_1"}, latchkey.EEXISTS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.CreateIdentity(ctx, e.admin, latchkey.DefaultAccount, tc.in)
			wantCode(t, err, tc.code)
		})
	}
	// The same name in another account is another identity.
	if _, err := e.svc.CreateIdentity(ctx, e.otherAdmin, "other", latchkey.NewIdentity{Name: "acme", ExternalID: "cus_1"}); err != nil {
		t.Fatal(err)
	}
	// Roles and accounts: a viewer may not write; another account's
	// identity is not found.
	_, err = e.svc.CreateIdentity(ctx, e.viewer, latchkey.DefaultAccount, latchkey.NewIdentity{Name: "v"})
	wantCode(t, err, latchkey.EFORBIDDEN)
	_, err = e.svc.GetIdentity(ctx, e.otherAdmin, "other", id.ID)
	wantCode(t, err, latchkey.ENOTFOUND)
	_, err = e.svc.GetIdentity(ctx, e.admin, latchkey.DefaultAccount, "idn_nothing")
	wantCode(t, err, latchkey.ENOTFOUND)

	list, _, err := e.svc.ListIdentities(ctx, e.admin, latchkey.IdentityFilter{Account: latchkey.DefaultAccount, ExternalID: "cus_1"})
	if err != nil || len(list) != 1 || list[0].ID != id.ID {
		t.Fatalf("ListIdentities by external ID = %v, %v", list, err)
	}
	_, _, err = e.svc.ListIdentities(ctx, e.admin, latchkey.IdentityFilter{Account: latchkey.DefaultAccount, ExternalID: "a b"})
	wantCode(t, err, latchkey.EINVALID)

	name, ext := "acme-corp", ""
	up, err := e.svc.UpdateIdentity(ctx, e.admin, latchkey.DefaultAccount, id.ID, latchkey.IdentityUpdate{Name: &name, ExternalID: &ext,
		Metadata: json.RawMessage(`{}`), RemoveRateLimit: true, RemoveQuota: true})
	if err != nil {
		t.Fatal(err)
	}
	if up.Name != name || up.ExternalID != "" || up.Metadata != nil || up.RateLimit != nil || up.Quota != nil {
		t.Errorf("after update: %+v", up)
	}
	_, err = e.svc.UpdateIdentity(ctx, e.admin, latchkey.DefaultAccount, id.ID, latchkey.IdentityUpdate{Quota: &latchkey.Quota{Remaining: 1}, RemoveQuota: true})
	wantCode(t, err, latchkey.EINVALID)

	// An application in the identity holds it: delete is refused until
	// the application leaves.
	if _, err := e.svc.CreateApplicationWith(ctx, e.admin, latchkey.DefaultAccount, latchkey.NewApplication{Name: "web", IdentityID: id.ID,
		Metadata: json.RawMessage(`{"tier":"gold"}`)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.CreateApplicationWith(ctx, e.admin, latchkey.DefaultAccount, latchkey.NewApplication{Name: "lost", IdentityID: "idn_aaaaaaaaaaaaaaaa"})
	wantCode(t, err, latchkey.EINVALID)
	// another account's identity is no identity of this one
	otherID, err := e.svc.CreateIdentity(ctx, e.otherAdmin, "other", latchkey.NewIdentity{Name: "o"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.CreateApplicationWith(ctx, e.admin, latchkey.DefaultAccount, latchkey.NewApplication{Name: "lost", IdentityID: otherID.ID})
	wantCode(t, err, latchkey.EINVALID)
	err = e.svc.DeleteIdentity(ctx, e.admin, latchkey.DefaultAccount, id.ID)
	wantCode(t, err, latchkey.ECONFLICT)
	none := ""
	app, err := e.svc.UpdateApplicationWith(ctx, e.admin, latchkey.DefaultAccount, "web", latchkey.ApplicationUpdate{IdentityID: &none})
	if err != nil || app.IdentityID != "" || string(app.Metadata) != `{"tier":"gold"}` {
		t.Fatalf("UpdateApplicationWith = %+v, %v", app, err)
	}
	if err := e.svc.DeleteIdentity(ctx, e.admin, latchkey.DefaultAccount, id.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.GetIdentity(ctx, e.admin, latchkey.DefaultAccount, id.ID)
	wantCode(t, err, latchkey.ENOTFOUND)

	// Every change is audited, and no event holds more than the public
	// objects.
	var actions []string
	for _, ev := range e.events(t) {
		if ev.TargetType == "identity" {
			actions = append(actions, ev.Action)
		}
	}
	want := []string{latchkey.ActionIdentityCreate, latchkey.ActionIdentityCreate, latchkey.ActionIdentityUpdate,
		latchkey.ActionIdentityQuotaUpdate, latchkey.ActionIdentityCreate, latchkey.ActionIdentityDelete}
	if !equalStrings(actions, want) {
		t.Errorf("identity audit events %v, want %v", actions, want)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// meteredIdentity makes an identity with quota q and two applications in
// it, "shop" and "mobile", each with one key of quota keyQuota (nil:
// none); it returns the identity and the two keys.
func (e *env) meteredIdentity(t *testing.T, q *latchkey.Quota, keyQuota *latchkey.Quota) (*latchkey.Identity, []*manage.CreatedKey) {
	t.Helper()
	return meteredIdentityWith(t, e.svc, e.operator, q, keyQuota)
}

func meteredIdentityWith(t *testing.T, svc *manage.Service, op latchkey.Actor, q *latchkey.Quota, keyQuota *latchkey.Quota) (*latchkey.Identity, []*manage.CreatedKey) {
	t.Helper()
	ctx := t.Context()
	id, err := svc.CreateIdentity(ctx, op, latchkey.DefaultAccount, latchkey.NewIdentity{Name: "customer", ExternalID: "cus_9", Quota: q})
	if err != nil {
		t.Fatal(err)
	}
	var keys []*manage.CreatedKey
	for _, app := range []string{"shop", "mobile"} {
		if _, err := svc.CreateApplicationWith(ctx, op, latchkey.DefaultAccount, latchkey.NewApplication{Name: app, IdentityID: id.ID}); err != nil {
			t.Fatal(err)
		}
		var kq *latchkey.Quota
		if keyQuota != nil {
			c := *keyQuota
			kq = &c
		}
		k, err := svc.CreateAccessKey(ctx, op, latchkey.DefaultAccount, app, latchkey.NewAccessKey{Quota: kq})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return id, keys
}

// drawKeys makes calls with every key's secret from 8 goroutines per key
// and replica until each has made calls calls, and returns how many were
// granted.
func drawKeys(t *testing.T, keys []*manage.CreatedKey, calls int, rs ...*replica) int64 {
	t.Helper()
	var granted atomic.Int64
	var wg sync.WaitGroup
	for _, r := range rs {
		for _, k := range keys {
			for range 8 {
				wg.Go(func() {
					for range calls {
						res := r.v.Verify(&verify.Request{Secret: k.Secret})
						switch res.Code {
						case latchkey.CodeValid:
							granted.Add(1)
						case latchkey.CodeQuotaExceeded:
						default:
							t.Errorf("code %s", res.Code)
							return
						}
					}
				})
			}
		}
	}
	wg.Wait()
	return granted.Load()
}

// own is a replica over the env's own index, which the service keeps
// current: what the service changes, it decides on at once.
func (e *env) own(lease int64) *replica {
	v := verify.New(e.ix, verify.NewRecorder(e.store, time.Hour, nil))
	v.Now = e.clock.Now
	v.Quotas, v.QuotaLease = e.svc, lease
	return &replica{e.svc, v}
}

func (e *env) identityLedger(t *testing.T, id string) int64 {
	t.Helper()
	v, err := e.svc.GetIdentityQuota(t.Context(), e.operator, latchkey.DefaultAccount, id)
	if err != nil {
		t.Fatal(err)
	}
	return v.Quota.Remaining
}

// Keys of two applications of one identity draw from its quota of N from
// many goroutines on one replica: exactly N are granted.
func TestIdentityQuotaExactAcrossApplications(t *testing.T) {
	for _, lease := range []int64{1, 7, 100} {
		e := newEnv(t)
		id, keys := e.meteredIdentity(t, &latchkey.Quota{Remaining: 500}, nil)
		if got := drawKeys(t, keys, 60, e.own(lease)); got != 500 {
			t.Errorf("lease %d: %d calls granted from an identity quota of 500 over two applications' keys", lease, got)
		}
		if left := e.identityLedger(t, id.ID); left != 0 {
			t.Errorf("lease %d: identity ledger has %d left", lease, left)
		}
	}
}

// A key quota and an identity quota: each call pays both, and the one
// that refuses leaves the other untouched.
func TestKeyAndIdentityQuotaBothPay(t *testing.T) {
	t.Run("the key refuses", func(t *testing.T) {
		e := newEnv(t)
		id, keys := e.meteredIdentity(t, &latchkey.Quota{Remaining: 100}, &latchkey.Quota{Remaining: 3})
		r := e.own(1)
		if got := drawKeys(t, keys[:1], 20, r); got != 3 {
			t.Fatalf("%d granted on a key quota of 3", got)
		}
		r.v.ReturnQuotaLeases()
		if left := e.identityLedger(t, id.ID); left != 97 {
			t.Errorf("identity has %d left after 3 granted calls and refusals by the key's quota, want 97", left)
		}
	})
	t.Run("the identity refuses", func(t *testing.T) {
		e := newEnv(t)
		_, keys := e.meteredIdentity(t, &latchkey.Quota{Remaining: 4}, &latchkey.Quota{Remaining: 100})
		r := e.own(1)
		if got := drawKeys(t, keys, 20, r); got != 4 {
			t.Fatalf("%d granted on an identity quota of 4", got)
		}
		r.v.ReturnQuotaLeases()
		var spent int64
		for _, k := range keys {
			spent += 100 - e.ledger(t, k.ID).Remaining
		}
		if spent != 4 {
			t.Errorf("the keys' quotas paid %d in all, want the 4 granted calls", spent)
		}
	})
}

// Moving an application to another identity (or to none) changes what
// its keys draw from at once, and what verification says of them.
func TestMovingApplicationReachesIndex(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	dry, keys := e.meteredIdentity(t, &latchkey.Quota{Remaining: 0}, nil)
	r := e.own(10)
	res := r.v.Verify(&verify.Request{Secret: keys[0].Secret})
	if res.Code != latchkey.CodeQuotaExceeded || res.Entry.IdentityID() != dry.ID || res.Entry.IdentityExternalID() != "cus_9" {
		t.Fatalf("in a spent identity: %s, identity %q", res.Code, res.Entry.IdentityID())
	}
	rich, err := e.svc.CreateIdentity(ctx, e.operator, latchkey.DefaultAccount, latchkey.NewIdentity{Name: "rich",
		Metadata: json.RawMessage(`{"plan":"enterprise"}`), Quota: &latchkey.Quota{Remaining: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.UpdateApplicationWith(ctx, e.operator, latchkey.DefaultAccount, "shop", latchkey.ApplicationUpdate{IdentityID: &rich.ID,
		Metadata: json.RawMessage(`{"channel":"web"}`)}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []latchkey.Code{latchkey.CodeValid, latchkey.CodeValid, latchkey.CodeQuotaExceeded} {
		res := r.v.Verify(&verify.Request{Secret: keys[0].Secret})
		if res.Code != want || res.Entry.IdentityID() != rich.ID || string(res.Entry.IdentityMetadata()) != `{"plan":"enterprise"}` ||
			string(res.Entry.ApplicationMetadata()) != `{"channel":"web"}` {
			t.Fatalf("call %d after the move: %s, identity %q %s, application metadata %s", i, res.Code, res.Entry.IdentityID(),
				res.Entry.IdentityMetadata(), res.Entry.ApplicationMetadata())
		}
	}
	// The other application stayed in the spent identity.
	if res := r.v.Verify(&verify.Request{Secret: keys[1].Secret}); res.Code != latchkey.CodeQuotaExceeded {
		t.Errorf("the application left behind: %s", res.Code)
	}
	// Out of any identity: no budget but its own (none).
	none := ""
	if _, err := e.svc.UpdateApplicationWith(ctx, e.operator, latchkey.DefaultAccount, "shop", latchkey.ApplicationUpdate{IdentityID: &none}); err != nil {
		t.Fatal(err)
	}
	if res := r.v.Verify(&verify.Request{Secret: keys[0].Secret}); res.Code != latchkey.CodeValid || res.Entry.IdentityID() != "" || res.Quota.Limited {
		t.Errorf("out of every identity: %s, identity %q, quota %+v", res.Code, res.Entry.IdentityID(), res.Quota)
	}
	// A top-up of the spent identity reaches its keys.
	if _, err := e.svc.TopUpIdentityQuota(ctx, e.operator, latchkey.DefaultAccount, dry.ID, 1); err != nil {
		t.Fatal(err)
	}
	if res := r.v.Verify(&verify.Request{Secret: keys[1].Secret}); res.Code != latchkey.CodeValid {
		t.Errorf("after a top-up of 1: %s", res.Code)
	}
}

// An identity's rate limit is shared by the keys of all its applications.
func TestIdentityRateLimitShared(t *testing.T) {
	e := newEnv(t)
	id, keys := e.meteredIdentity(t, nil, nil)
	if _, err := e.svc.UpdateIdentity(t.Context(), e.operator, latchkey.DefaultAccount, id.ID,
		latchkey.IdentityUpdate{RateLimit: &latchkey.RateLimit{PerMinute: 5}}); err != nil {
		t.Fatal(err)
	}
	r := e.own(0)
	granted := 0
	for i := range 10 {
		res := r.v.Verify(&verify.Request{Secret: keys[i%2].Secret})
		switch res.Code {
		case latchkey.CodeValid:
			granted++
		case latchkey.CodeRateLimited:
		default:
			t.Fatalf("call %d: %s", i, res.Code)
		}
	}
	if granted != 5 {
		t.Errorf("%d of 10 calls over two applications granted under an identity limit of 5 a minute", granted)
	}
}

// quota.low and quota.exhausted of an identity's quota name the
// identity, through the real dispatcher to a receiver that checks their
// signatures.
func TestIdentityQuotaWebhookNamesIdentity(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, e.clock.Now, 0)
	e.hook(t, rcv, latchkey.EventQuotaLow, latchkey.EventQuotaExhausted)
	id, keys := e.meteredIdentity(t, &latchkey.Quota{Remaining: 3, LowThreshold: 1}, nil)
	if got := drawKeys(t, keys, 5, e.own(1)); got != 3 {
		t.Fatalf("%d granted of 3", got)
	}
	e.deliver(t, e.dispatcher())
	seen := map[string]bool{}
	for _, g := range rcv.got {
		data := g.Body["data"].(map[string]any)
		if data["identity_id"] != id.ID || data["external_id"] != "cus_9" || data["access_key_id"] != nil {
			t.Errorf("%s names %v", g.Type, data)
		}
		seen[g.Type] = true
	}
	if !seen[latchkey.EventQuotaLow] || !seen[latchkey.EventQuotaExhausted] || len(rcv.got) != 2 {
		t.Errorf("events sent: %v", rcv.types())
	}
}

// On one replica an identity's top-up keeps what the replica holds
// leased, as a key's does: a top-up of 10 after 37 of 500 calls leaves
// exactly 473, and exactly 473 more calls are granted over the
// identity's keys, whatever the lease.
func TestIdentityTopUpKeepsLease(t *testing.T) {
	for _, lease := range []int64{1, 10, 100} {
		e := newEnv(t)
		id, keys := e.meteredIdentity(t, &latchkey.Quota{Remaining: 500}, nil)
		r := e.own(lease)
		spend(t, r, keys[0].Secret, 37)
		if left := e.identityLedger(t, id.ID); left != 463 {
			t.Errorf("lease %d: after 37 calls of 500 the read says %d left, want exactly 463", lease, left)
		}
		top, err := e.svc.TopUpIdentityQuota(t.Context(), e.operator, latchkey.DefaultAccount, id.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		if top.Remaining != 473 || top.Leased != 0 {
			t.Errorf("lease %d: a top-up of 10 on 463 gives %d (leased %d), want 473 (0)", lease, top.Remaining, top.Leased)
		}
		if got := drawKeys(t, keys, 60, r); got != 473 {
			t.Errorf("lease %d: %d calls granted after the top-up, want exactly 473", lease, got)
		}
		if left := e.identityLedger(t, id.ID); left != 0 {
			t.Errorf("lease %d: spent, the identity's ledger says %d left", lease, left)
		}
	}
}

// Top-ups of an identity's quota while its keys spend from 16 goroutines:
// nothing deadlocks, and exactly the quota plus the top-ups is granted.
func TestIdentityTopUpWhileSpending(t *testing.T) {
	const n, topUps, amount = 1000, 5, 10
	e := newEnv(t)
	id, keys := e.meteredIdentity(t, &latchkey.Quota{Remaining: n}, nil)
	r := e.own(100)
	var granted atomic.Int64
	var wg sync.WaitGroup
	for _, k := range keys {
		for range 8 {
			wg.Go(func() {
				for range 200 {
					if r.v.Verify(&verify.Request{Secret: k.Secret}).Code == latchkey.CodeValid {
						granted.Add(1)
					}
				}
			})
		}
	}
	wg.Go(func() {
		for i := range topUps {
			if _, err := e.svc.TopUpIdentityQuota(t.Context(), e.operator, latchkey.DefaultAccount, id.ID, amount); err != nil {
				t.Errorf("top-up %d: %v", i, err)
			}
		}
	})
	wg.Wait()
	got := granted.Load() + drawKeys(t, keys, 60, r)
	if want := int64(n + topUps*amount); got != want {
		t.Errorf("%d calls granted, want exactly %d", got, want)
	}
}
