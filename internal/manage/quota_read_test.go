package manage_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
)

// spend makes n calls of cost 1 with secret on r, all of which must be
// granted.
func spend(t *testing.T, r *replica, secret string, n int) {
	t.Helper()
	for i := range n {
		if res := r.v.Verify(&verify.Request{Secret: secret}); res.Code != latchkey.CodeValid {
			t.Fatalf("call %d: %s", i, res.Code)
		}
	}
}

func (r *replica) read(t *testing.T, e *env, id string) *latchkey.Quota {
	t.Helper()
	v, err := r.svc.GetQuota(t.Context(), e.operator, id)
	if err != nil {
		t.Fatal(err)
	}
	return v.Quota
}

// On one replica a quota's read is exact: remaining is the quota less
// what was spent, whatever the replica holds leased (shown as leased);
// the key's own read says the same; a top-up adds exactly its amount to
// that figure, and then exactly that many calls are granted.
func TestQuotaReadExactOnOneReplica(t *testing.T) {
	for _, lease := range []int64{1, 10, 100, 1000} {
		e := newEnv(t)
		e.app(t, latchkey.DefaultAccount, "metered")
		k := e.quotaKey(t, latchkey.Quota{Remaining: 500})
		r := e.replica(t, lease)
		spend(t, r, k.Secret, 37)
		q := r.read(t, e, k.ID)
		if q.Remaining != 463 {
			t.Errorf("lease %d: after 37 calls of 500 the read says %d left, want exactly 463", lease, q.Remaining)
		}
		if q.Leased < 0 || q.Leased > min(lease, 463) || (lease > 1 && q.Leased == 0) {
			t.Errorf("lease %d: leased %d, want what the replica holds (1 to %d)", lease, q.Leased, min(lease, 463))
		}
		key, err := r.svc.GetAccessKey(t.Context(), e.operator, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if key.Quota.Remaining != 463 || key.Quota.Leased != q.Leased {
			t.Errorf("lease %d: the key's read says %d left, %d leased; the quota's %d, %d", lease, key.Quota.Remaining, key.Quota.Leased, 463, q.Leased)
		}
		// Another process, which holds nothing, reads the ledger: what
		// this replica holds counts as spent there.
		if other := e.ledger(t, k.ID); other.Remaining != 463-q.Leased || other.Leased != 0 {
			t.Errorf("lease %d: another process reads %d left, %d leased; want %d, 0", lease, other.Remaining, other.Leased, 463-q.Leased)
		}

		top, err := r.svc.TopUpQuota(t.Context(), e.operator, k.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		if top.Remaining != 473 || top.Leased != 0 {
			t.Errorf("lease %d: a top-up of 10 on 463 gives %d (leased %d), want 473 (0)", lease, top.Remaining, top.Leased)
		}
		if q := r.read(t, e, k.ID); q.Remaining != 473 {
			t.Errorf("lease %d: after the top-up the read says %d", lease, q.Remaining)
		}
		if got := draw(t, k.Secret, 60, r); got != 473 {
			t.Errorf("lease %d: %d calls granted after the top-up, want exactly 473", lease, got)
		}
		if q := r.read(t, e, k.ID); q.Remaining != 0 || q.Leased != 0 {
			t.Errorf("lease %d: spent, the read says %d left, %d leased", lease, q.Remaining, q.Leased)
		}
	}
}

// With several replicas on one database, a replica's read adds back what
// it holds itself and counts what the others hold as spent: it is never
// above the truth and at most x lease below it.
func TestQuotaReadAcrossReplicasWithinBound(t *testing.T) {
	const n, lease = 1000, 50
	e := newEnv(t)
	e.app(t, latchkey.DefaultAccount, "metered")
	k := e.quotaKey(t, latchkey.Quota{Remaining: n})
	rs := []*replica{e.replica(t, lease), e.replica(t, lease), e.replica(t, lease)}
	spent := 0
	for i, r := range rs {
		spend(t, r, k.Secret, 7*(i+1))
		spent += 7 * (i + 1)
	}
	truth := int64(n - spent)
	for i, r := range rs {
		q := r.read(t, e, k.ID)
		t.Logf("replica %d reads %d left (%d leased here); truth %d", i, q.Remaining, q.Leased, truth)
		if q.Remaining > truth || q.Remaining < truth-int64(len(rs)-1)*lease {
			t.Errorf("replica %d reads %d left, want %d to %d", i, q.Remaining, truth-int64(len(rs)-1)*lease, truth)
		}
		if q.Leased <= 0 || q.Leased > lease {
			t.Errorf("replica %d: leased %d, want 1 to %d", i, q.Leased, lease)
		}
	}
}

// Top-ups, reads and key changes while 8 goroutines spend: nothing
// deadlocks, and on one replica exactly the quota plus the top-ups is
// granted (the units held leased when each top-up commits are kept).
func TestQuotaTopUpWhileSpending(t *testing.T) {
	const n, topUps, amount = 1000, 5, 10
	e := newEnv(t)
	e.app(t, latchkey.DefaultAccount, "metered")
	k := e.quotaKey(t, latchkey.Quota{Remaining: n})
	r := e.replica(t, 100)
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 400 {
				if r.v.Verify(&verify.Request{Secret: k.Secret}).Code == latchkey.CodeValid {
					granted.Add(1)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range topUps {
			if _, err := r.svc.TopUpQuota(t.Context(), e.operator, k.ID, amount); err != nil {
				t.Errorf("top-up %d: %v", i, err)
			}
			desc := "metered " + string(rune('a'+i))
			if _, err := r.svc.UpdateAccessKey(t.Context(), e.operator, k.ID, latchkey.AccessKeyUpdate{Description: &desc}); err != nil {
				t.Errorf("update %d: %v", i, err)
			}
			if _, err := r.svc.GetQuota(t.Context(), e.operator, k.ID); err != nil {
				t.Errorf("read %d: %v", i, err)
			}
		}
	})
	wg.Wait()
	granted.Add(draw(t, k.Secret, 50, r))
	if got, want := granted.Load(), int64(n+topUps*amount); got != want {
		t.Errorf("%d granted from a quota of %d topped up %d times by %d, want exactly %d", got, n, topUps, amount, want)
	}
	if q := r.read(t, e, k.ID); q.Remaining != 0 {
		t.Errorf("spent, the read says %d left", q.Remaining)
	}
}

// An identity's quota reads as a key's does: on one replica, what its
// keys have spent, exactly, with the replica's unspent lease shown as
// leased; another process, which holds nothing, reads the ledger.
func TestIdentityQuotaReadExactOnOneReplica(t *testing.T) {
	for _, lease := range []int64{1, 10, 100} {
		e := newEnv(t)
		id, keys := meteredIdentityWith(t, e.svc, e.operator, &latchkey.Quota{Remaining: 500}, nil)
		r := e.replica(t, lease)
		spend(t, r, keys[0].Secret, 20)
		spend(t, r, keys[1].Secret, 17)
		v, err := r.svc.GetIdentityQuota(t.Context(), e.operator, latchkey.DefaultAccount, id.ID)
		if err != nil {
			t.Fatal(err)
		}
		if v.Quota.Remaining != 463 {
			t.Errorf("lease %d: after 37 calls of 500 through two applications the identity's read says %d left, want exactly 463", lease, v.Quota.Remaining)
		}
		if v.Quota.Leased < 0 || v.Quota.Leased > min(lease, 463) || (lease > 1 && v.Quota.Leased == 0) {
			t.Errorf("lease %d: leased %d, want what the replica holds (1 to %d)", lease, v.Quota.Leased, min(lease, 463))
		}
		other, err := e.svc.GetIdentityQuota(t.Context(), e.operator, latchkey.DefaultAccount, id.ID)
		if err != nil {
			t.Fatal(err)
		}
		if other.Quota.Remaining != 463-v.Quota.Leased || other.Quota.Leased != 0 {
			t.Errorf("lease %d: another process reads %d left, %d leased; want %d, 0", lease, other.Quota.Remaining, other.Quota.Leased, 463-v.Quota.Leased)
		}
	}
}
