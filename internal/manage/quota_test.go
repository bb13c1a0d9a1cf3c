package manage_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/postgres"
	"github.com/latchkey/latchkey/internal/verify"
)

// replica is one latchkey process over the env's store: its own index,
// service and verifier, as serve wires them.
type replica struct {
	svc *manage.Service
	v   *verify.Verifier
}

func (e *env) replica(t *testing.T, lease int64) *replica {
	t.Helper()
	return newReplica(t, e.store, e.clock, lease)
}

func newReplica(t *testing.T, store latchkey.Store, clk *clock, lease int64) *replica {
	t.Helper()
	ix := verify.NewIndex()
	if _, err := ix.Sync(t.Context(), store); err != nil {
		t.Fatal(err)
	}
	svc := manage.New(store, ix, nil)
	svc.Now = clk.Now
	v := verify.New(ix, verify.NewRecorder(store, time.Hour, nil))
	v.Now = clk.Now
	v.Quotas, v.QuotaLease = svc, lease
	return &replica{svc, v}
}

// Replicas on PostgreSQL alone, each with its own connection pool, lease
// from one ledger: never more than the quota; what is not granted is at
// most one lease per replica, and a graceful stop gives it back.
func TestQuotaLeasesAcrossPostgresReplicas(t *testing.T) {
	const n, lease, replicas = 2000, 50, 3
	stores, clk, svc, op := meteredOnPostgres(t)
	k, err := svc.CreateAccessKey(t.Context(), op, latchkey.DefaultAccount, "metered", latchkey.NewAccessKey{Quota: &latchkey.Quota{Remaining: n}})
	if err != nil {
		t.Fatal(err)
	}
	var rs []*replica
	for i := range replicas {
		rs = append(rs, newReplica(t, stores[i%len(stores)], clk, lease))
	}
	// Fewer calls than the quota: every one is granted, and the ledger
	// counts as spent what the replicas hold leased besides.
	first := draw(t, k.Secret, 30, rs...)
	if first != replicas*16*30 {
		t.Fatalf("%d of %d calls granted with budget to spare", first, replicas*16*30)
	}
	v, err := svc.GetQuota(t.Context(), op, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	held := n - v.Quota.Remaining - first
	t.Logf("after %d calls the replicas hold %d leased (bound %d)", first, held, replicas*lease)
	if held < 0 || held > replicas*lease {
		t.Fatalf("replicas hold %d leased, bound %d", held, replicas*lease)
	}
	got := first + draw(t, k.Secret, 30, rs...)
	var returned int64
	for _, r := range rs {
		returned += r.v.ReturnQuotaLeases()
	}
	t.Logf("PostgreSQL, %d replicas leasing %d: granted %d of %d, %d returned at stop (bound %d)", replicas, lease, got, n, returned, replicas*lease)
	if got > n || got < n-replicas*lease {
		t.Fatalf("%d granted from %d: want %d to %d", got, n, n-replicas*lease, n)
	}
	if got+returned != n {
		t.Errorf("granted %d + returned %d != %d", got, returned, n)
	}
}

// meteredOnPostgres returns two connection pools on one new PostgreSQL
// database with an application "metered", the clock and the service that
// made it, and its operator.
func meteredOnPostgres(t *testing.T) ([]latchkey.Store, *clock, *manage.Service, latchkey.Actor) {
	t.Helper()
	stores := postgresReplicas(t)
	clk := &clock{t: t0}
	svc := manage.New(stores[0], verify.NewIndex(), nil)
	svc.Now = clk.Now
	boot, err := svc.Bootstrap(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	op := actorOf(boot, "192.0.2.10")
	if _, err := svc.CreateApplication(t.Context(), op, latchkey.DefaultAccount, "metered", "", nil); err != nil {
		t.Fatal(err)
	}
	return stores, clk, svc, op
}

func (e *env) quotaKey(t *testing.T, q latchkey.Quota) *manage.CreatedKey {
	t.Helper()
	k, err := e.svc.CreateAccessKey(t.Context(), e.operator, latchkey.DefaultAccount, "metered", latchkey.NewAccessKey{Quota: &q})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// draw makes calls with secret on the replicas from goroutines per
// replica until each has seen refusals only for a while, and returns how
// many were granted.
func draw(t *testing.T, secret string, calls int, rs ...*replica) int64 {
	t.Helper()
	return drawCost(t, secret, 0, calls, rs...)
}

// drawCost is draw with a cost per call (0: the default, 1).
func drawCost(t *testing.T, secret string, cost int64, calls int, rs ...*replica) int64 {
	t.Helper()
	var granted atomic.Int64
	var wg sync.WaitGroup
	for _, r := range rs {
		for range 16 {
			wg.Go(func() {
				for range calls {
					res := r.v.Verify(&verify.Request{Secret: secret, Cost: cost})
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
	wg.Wait()
	return granted.Load()
}

func (e *env) ledger(t *testing.T, id string) *latchkey.Quota {
	t.Helper()
	v, err := e.svc.GetQuota(t.Context(), e.operator, id)
	if err != nil {
		t.Fatal(err)
	}
	return v.Quota
}

func TestQuotaExactOnOneReplica(t *testing.T) {
	for _, lease := range []int64{1, 7, 100} {
		e := newEnv(t)
		e.app(t, latchkey.DefaultAccount, "metered")
		k := e.quotaKey(t, latchkey.Quota{Remaining: 500})
		r := e.replica(t, lease)
		if got := draw(t, k.Secret, 100, r); got != 500 {
			t.Errorf("lease %d: %d calls granted from a quota of 500", lease, got)
		}
		if q := e.ledger(t, k.ID); q.Remaining != 0 {
			t.Errorf("lease %d: ledger has %d left", lease, q.Remaining)
		}
	}
}

// Several replicas lease from one ledger: never more than the quota, and
// what is not granted is what replicas still hold leased, at most one
// lease each.
func TestQuotaLeasesAcrossReplicasWithinBound(t *testing.T) {
	const n, lease, replicas = 1000, 50, 4
	e := newEnv(t)
	e.app(t, latchkey.DefaultAccount, "metered")
	k := e.quotaKey(t, latchkey.Quota{Remaining: n})
	var rs []*replica
	for range replicas {
		rs = append(rs, e.replica(t, lease))
	}
	got := draw(t, k.Secret, 40, rs...)
	if got > n || got < n-replicas*lease {
		t.Fatalf("%d granted from %d over %d replicas leasing %d: want %d to %d", got, n, replicas, lease, n-replicas*lease, n)
	}
	t.Logf("granted %d of %d (undershoot %d, bound %d)", got, n, n-got, replicas*lease)
	// A graceful stop returns the unspent leases: then nothing is lost.
	var returned int64
	for _, r := range rs {
		returned += r.v.ReturnQuotaLeases()
	}
	if got+returned != n {
		t.Errorf("granted %d + returned %d != %d", got, returned, n)
	}
	if q := e.ledger(t, k.ID); q.Remaining != returned {
		t.Errorf("ledger has %d left, want the %d returned", q.Remaining, returned)
	}
}

// A replica that crashes loses at most its unspent lease; the ledger is
// kept, and a restarted replica never grants more than the quota.
func TestQuotaCrashLosesAtMostTheLease(t *testing.T) {
	const n, lease = 300, 20
	e := newEnv(t)
	e.app(t, latchkey.DefaultAccount, "metered")
	k := e.quotaKey(t, latchkey.Quota{Remaining: n})
	var granted int64
	for round := range 10 {
		r := e.replica(t, lease)
		for range 17 + round {
			if r.v.Verify(&verify.Request{Secret: k.Secret}).Valid() {
				granted++
			}
		}
		// crash: r is dropped without returning its lease
	}
	r := e.replica(t, lease)
	for range n {
		if r.v.Verify(&verify.Request{Secret: k.Secret}).Valid() {
			granted++
		}
	}
	if granted > n || granted < n-10*lease {
		t.Errorf("%d granted over 10 crashes from %d: want %d to %d", granted, n, n-10*lease, n)
	}
	if q := e.ledger(t, k.ID); q.Remaining != 0 {
		t.Errorf("ledger has %d left", q.Remaining)
	}
}

func TestQuotaRefillAtTheBoundary(t *testing.T) {
	e := newEnv(t)
	e.app(t, latchkey.DefaultAccount, "metered")
	k := e.quotaKey(t, latchkey.Quota{Remaining: 3, Refill: &latchkey.Refill{Amount: 5, Interval: "1h"}})
	r := e.replica(t, 100)
	call := func(cost int64) verify.Result { return r.v.Verify(&verify.Request{Secret: k.Secret, Cost: cost}) }
	for i := range 3 {
		if res := call(0); !res.Valid() {
			t.Fatalf("call %d: %s", i, res.Code)
		}
	}
	res := call(0)
	if res.Code != latchkey.CodeQuotaExceeded {
		t.Fatalf("fourth call: %s", res.Code)
	}
	if want := t0.Add(time.Hour); !res.Quota.Reset.Equal(want) {
		t.Errorf("reset %s, want %s", res.Quota.Reset, want)
	}
	e.clock.Advance(time.Hour - time.Nanosecond)
	if res := call(0); res.Code != latchkey.CodeQuotaExceeded {
		t.Fatalf("a nanosecond before the boundary: %s", res.Code)
	}
	e.clock.Advance(time.Nanosecond)
	if res := call(4); !res.Valid() {
		t.Fatalf("at the boundary, cost 4: %s", res.Code)
	}
	if res := call(2); res.Code != latchkey.CodeQuotaExceeded {
		t.Fatalf("cost 2 with 1 left: %s", res.Code)
	}
	if res := call(verify.FreeCost); !res.Valid() {
		t.Fatalf("free call with 1 left: %s", res.Code)
	}
	if res := call(1); !res.Valid() {
		t.Fatalf("last unit: %s", res.Code)
	}
	if res := call(verify.FreeCost); res.Code != latchkey.CodeQuotaExceeded {
		t.Fatalf("free call on a spent quota: %s", res.Code)
	}
	// Refusals are counted per minute as QUOTA_EXCEEDED, not as another
	// code (the usage chart and the metric read them).
	var refused int64
	for _, m := range r.v.Index.PendingUsage(k.ID).Minutes {
		switch m.Code {
		case latchkey.CodeQuotaExceeded:
			refused += m.Count
		case latchkey.CodeRateLimited:
			t.Errorf("a quota refusal counted as RATE_LIMITED: %+v", m)
		}
	}
	if refused != 4 {
		t.Errorf("%d refusals counted as QUOTA_EXCEEDED, want 4", refused)
	}
	// Unused units do not pile up: the next period has 5, not 5 + left.
	e.clock.Advance(3 * time.Hour)
	if q := e.ledger(t, k.ID); q.Remaining != 5 {
		t.Errorf("after three idle periods: %d left, want 5", q.Remaining)
	}
}

// Refused calls cost nothing; an admin's top-up and reset take effect at
// once, are audited and appear in the history.
func TestQuotaRefusalsFreeAndAdminChanges(t *testing.T) {
	e := newEnv(t)
	e.app(t, latchkey.DefaultAccount, "metered")
	k := e.quotaKey(t, latchkey.Quota{Remaining: 2, LowThreshold: 1})
	r := e.replica(t, 100)
	e.deactivate(t, k.ID)
	r.v.Index.Put(e.storedKey(t, k.ID))
	for range 5 {
		if res := r.v.Verify(&verify.Request{Secret: k.Secret}); res.Code != latchkey.CodeInactive {
			t.Fatalf("inactive key: %s", res.Code)
		}
	}
	if q := e.ledger(t, k.ID); q.Remaining != 2 {
		t.Fatalf("refused calls took from the quota: %d left", q.Remaining)
	}
	active := latchkey.StatusActive
	if _, err := r.svc.UpdateAccessKey(t.Context(), e.operator, k.ID, latchkey.AccessKeyUpdate{Status: &active}); err != nil {
		t.Fatal(err)
	}
	if got := draw(t, k.Secret, 2, r); got != 2 {
		t.Fatalf("granted %d of 2", got)
	}
	if _, err := r.svc.TopUpQuota(t.Context(), e.viewer, k.ID, 3); latchkey.ErrorCode(err) != latchkey.EFORBIDDEN {
		t.Fatalf("viewer top-up: %v", err)
	}
	if _, err := r.svc.TopUpQuota(t.Context(), e.admin, k.ID, 0); latchkey.ErrorCode(err) != latchkey.EINVALID {
		t.Fatalf("top-up 0: %v", err)
	}
	q, err := r.svc.TopUpQuota(t.Context(), e.admin, k.ID, 3)
	if err != nil || q.Remaining != 3 {
		t.Fatalf("top-up: %+v, %v", q, err)
	}
	if got := draw(t, k.Secret, 2, r); got != 3 {
		t.Fatalf("granted %d after a top-up of 3", got)
	}
	if _, err := r.svc.UpdateAccessKey(t.Context(), e.admin, k.ID, latchkey.AccessKeyUpdate{Quota: &latchkey.Quota{Remaining: 1}}); err != nil {
		t.Fatal(err)
	}
	if got := draw(t, k.Secret, 2, r); got != 1 {
		t.Fatalf("granted %d after a reset to 1", got)
	}
	v, err := e.svc.GetQuota(t.Context(), e.viewer, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, c := range v.History {
		kinds = append(kinds, c.Kind)
	}
	want := []string{"exhausted", "set", "exhausted", "top_up", "exhausted", "set"}
	if len(kinds) != len(want) {
		t.Fatalf("history %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("history %v, want %v", kinds, want)
		}
	}
	audits := 0
	for _, ev := range e.events(t) {
		if ev.Action == latchkey.ActionQuotaUpdate {
			audits++
		}
	}
	if audits != 3 {
		t.Errorf("%d quota audit events, want 3 (create, top-up, reset)", audits)
	}
	if _, err := e.svc.UpdateAccessKey(t.Context(), e.admin, k.ID, latchkey.AccessKeyUpdate{RemoveQuota: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.GetQuota(t.Context(), e.admin, k.ID); latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
		t.Fatalf("quota after removal: %v", err)
	}
}

// A key with a quota is not rolled: the successor would be unmetered, or
// double the budget.
func TestQuotaKeyIsNotRolled(t *testing.T) {
	e := newEnv(t)
	e.app(t, latchkey.DefaultAccount, "metered")
	k := e.quotaKey(t, latchkey.Quota{Remaining: 5})
	_, err := e.svc.RollAccessKey(t.Context(), e.operator, k.ID, latchkey.Roll{})
	if latchkey.ErrorCode(err) != latchkey.EINVALID {
		t.Fatalf("roll of a key with a quota: %v", err)
	}
}

func TestQuotaValidation(t *testing.T) {
	e := newEnv(t)
	e.app(t, latchkey.DefaultAccount, "metered")
	before := e.keyCount(t)
	for _, q := range []latchkey.Quota{
		{Remaining: -1},
		{Remaining: 1, Refill: &latchkey.Refill{Amount: 0, Interval: "24h"}},
		{Remaining: 1, Refill: &latchkey.Refill{Amount: 1, Interval: "1s"}},
		{Remaining: 1, Refill: &latchkey.Refill{Amount: 1, Interval: "monthly:29"}},
		{Remaining: 1, Refill: &latchkey.Refill{Amount: 1, Interval: "weekly"}},
		{Remaining: 1, LowThreshold: -1},
	} {
		_, err := e.svc.CreateAccessKey(t.Context(), e.operator, latchkey.DefaultAccount, "metered", latchkey.NewAccessKey{Quota: &q})
		if latchkey.ErrorCode(err) != latchkey.EINVALID {
			t.Errorf("%+v: %v, want %s", q, err, latchkey.EINVALID)
		}
	}
	if e.keyCount(t) != before {
		t.Errorf("a refused quota left a key behind")
	}
}

// quota.low and quota.exhausted are sent once per period, through the
// real dispatcher to a receiver that checks their signatures.
func TestQuotaWebhooksOncePerPeriod(t *testing.T) {
	e := newEnv(t)
	e.app(t, latchkey.DefaultAccount, "metered")
	rcv := newReceiver(t, e.clock.Now, 0)
	e.hook(t, rcv, latchkey.EventQuotaLow, latchkey.EventQuotaExhausted)
	k := e.quotaKey(t, latchkey.Quota{Remaining: 10, LowThreshold: 3, Refill: &latchkey.Refill{Amount: 10, Interval: "24h"}})
	r := e.replica(t, 1) // lease one unit at a time: the ledger sees every call
	d := e.dispatcher()
	spend := func(n int) {
		t.Helper()
		for range n {
			r.v.Verify(&verify.Request{Secret: k.Secret})
		}
		e.deliver(t, d)
	}
	spend(6)
	if got := rcv.types(); len(got) != 0 {
		t.Fatalf("with 4 left: %v", got)
	}
	spend(1)
	if got := rcv.types(); len(got) != 1 || got[0] != latchkey.EventQuotaLow {
		t.Fatalf("with 3 left: %v, want one quota.low", got)
	}
	spend(10) // 3 more granted, then refusals
	got := rcv.types()
	if len(got) != 2 || got[1] != latchkey.EventQuotaExhausted {
		t.Fatalf("spent: %v, want quota.low then one quota.exhausted", got)
	}
	data := rcv.got[1].Body["data"].(map[string]any)
	if data["access_key_id"] != k.ID || data["remaining"] != float64(0) || data["next_refill_at"] == nil {
		t.Errorf("quota.exhausted data: %v", data)
	}
	// The next period sends each again, once.
	e.clock.Advance(24 * time.Hour)
	spend(20)
	// (the dispatcher does not promise an order within one round)
	counts := map[string]int{}
	for _, typ := range rcv.types() {
		counts[typ]++
	}
	if len(rcv.types()) != 4 || counts[latchkey.EventQuotaLow] != 2 || counts[latchkey.EventQuotaExhausted] != 2 {
		t.Fatalf("after the second period: %v, want each event twice", rcv.types())
	}
}

// On PostgreSQL, a quota change made on one replica reaches another's
// index through LISTEN/NOTIFY (the quotas table's trigger): the other
// replica drops its lease of the old generation and spends the new budget.
func TestQuotaChangeReachesPostgresReplica(t *testing.T) {
	stores := postgresReplicas(t)
	clk := &clock{t: t0}
	a := newReplica(t, stores[0], clk, 10)
	boot, err := a.svc.Bootstrap(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	op := actorOf(boot, "192.0.2.10")
	if _, err := a.svc.CreateApplication(t.Context(), op, latchkey.DefaultAccount, "metered", "", nil); err != nil {
		t.Fatal(err)
	}
	k, err := a.svc.CreateAccessKey(t.Context(), op, latchkey.DefaultAccount, "metered", latchkey.NewAccessKey{Quota: &latchkey.Quota{Remaining: 100}})
	if err != nil {
		t.Fatal(err)
	}
	b := newReplica(t, stores[1], clk, 10)
	w := stores[1].(*postgres.Store).NewWatcher(b.v.Index, postgres.WatchOptions{Resync: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(5 * time.Second); !w.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("watcher not ready")
		}
	}
	if !b.v.Verify(&verify.Request{Secret: k.Secret}).Valid() {
		t.Fatal("replica b: first call refused")
	}
	// Reset to 3 on replica a: b's lease (10 units, 9 unspent) is dropped.
	if _, err := a.svc.UpdateAccessKey(t.Context(), op, k.ID, latchkey.AccessKeyUpdate{Quota: &latchkey.Quota{Remaining: 3}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var granted int
		for range 10 {
			if b.v.Verify(&verify.Request{Secret: k.Secret}).Valid() {
				granted++
			}
		}
		if granted == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica b still grants %d of 10 after a reset to 3", granted)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
