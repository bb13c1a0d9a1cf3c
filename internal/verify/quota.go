package verify

import (
	"context"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
)

// QuotaLeaser grants this replica units of a key's quota from its ledger
// (manage.Service over the store). A lease is durable before it is
// returned: what a replica spends was recorded as spent first, so a crash
// loses at most the unspent part of its lease, never more than the quota
// grants.
type QuotaLeaser interface {
	// LeaseQuota takes up to want units of the key's quota in generation
	// gen at now.
	LeaseQuota(keyID string, gen, want int64, now time.Time) (latchkey.QuotaLease, error)
	// ReturnQuota gives back n unspent units of a lease (graceful
	// shutdown).
	ReturnQuota(keyID string, gen, period, n int64) error
}

// QuotaStore keeps the units of keys' quotas that replicas leased from
// the ledger in a store they all share (redislimit.Limiter on Redis), and
// decides each call there in one atomic step, so that a quota of N grants
// exactly N across replicas.
type QuotaStore interface {
	// SpendQuota takes cost from the units of key id's quota (generation
	// gen, period) held in the store if at least need are there, after
	// adding add units just leased from the ledger; ledgerLeft (-1: not
	// known) is what the ledger had left after that lease. ttl is how
	// long an idle state is kept (0: forever). It returns whether the
	// call is allowed, the units left in the store, what the ledger had
	// left at the latest lease of this period (-1: unknown) and the
	// store's period. An error means the store cannot answer: the call
	// is refused (fail closed).
	SpendQuota(ctx context.Context, id string, gen, period, cost, need, add, ledgerLeft int64, ttl time.Duration) (allowed bool, pool, left, statePeriod int64, err error)
}

// sharedQuotaTTL is how long a quota without refill stays in the shared
// store after its last use; a quota with refill stays until a day after
// its period ends. What an expired state held leased is lost (docs/quotas.md).
const sharedQuotaTTL = 30 * 24 * time.Hour

// DefaultQuotaLease is the most units a replica leases at once: the bound
// of what a crash can lose, per key and replica.
const DefaultQuotaLease = 1000

// QuotaInfo describes a key's quota after a decision; Limited is false
// when the key has none.
type QuotaInfo struct {
	Limited   bool
	Remaining int64
	// Reset is when the quota refills; zero when it never does.
	Reset time.Time
}

// quotaCell is a key's quota on this replica: what it holds leased from
// the ledger for the current period. It is kept across index changes of
// the key as long as the quota's generation is the same.
type quotaCell struct {
	mu  sync.Mutex
	gen int64
	q   latchkey.Quota // configuration: refill, anchor; the first period's budget

	known  bool  // period and next are computed
	period int64 // the period the lease belongs to
	next   int64 // Unix nanoseconds when it ends; 0 = never
	left   int64 // leased here and not spent
	pool   int64 // what the ledger had left at the last lease; -1 unknown
	dry    bool  // the ledger had no more for this period
}

func newQuotaCell(q *latchkey.Quota) *quotaCell {
	if q == nil {
		return nil
	}
	return &quotaCell{gen: q.Generation, q: *q, pool: -1}
}

// sameQuota reports whether c can serve q: same generation and schedule.
func (c *quotaCell) sameQuota(q *latchkey.Quota) bool {
	if c == nil || q == nil || c.gen != q.Generation || (c.q.Refill == nil) != (q.Refill == nil) {
		return false
	}
	return c.q.Refill == nil || *c.q.Refill == *q.Refill
}

// roll moves the cell to the period at now; a lease of an ended period
// is worthless and dropped.
func (c *quotaCell) roll(now time.Time) {
	n, _, next := c.q.PeriodAt(now)
	if c.known && n == c.period {
		return
	}
	c.known, c.period, c.left, c.pool, c.dry = true, n, 0, -1, false
	c.next = 0
	if !next.IsZero() {
		c.next = next.UnixNano()
	}
}

func (c *quotaCell) info() QuotaInfo {
	qi := QuotaInfo{Limited: true, Remaining: c.left + max(c.pool, 0)}
	if c.next != 0 {
		qi.Reset = time.Unix(0, c.next).UTC()
	}
	return qi
}

// spendQuota takes cost from key id's quota cell c. Leases are asked for
// under c's lock: calls of the same key wait for one lease rather than
// each asking for its own.
func (v *Verifier) spendQuota(id string, c *quotaCell, cost int64, now time.Time) (bool, QuotaInfo) {
	if v.SharedQuotas != nil {
		return v.spendSharedQuota(id, c, cost, now)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.known || (c.next != 0 && now.UnixNano() >= c.next) {
		c.roll(now)
	}
	// A free call (cost 0) needs a unit to be left, and takes none.
	need := max(cost, 1)
	if c.left < need && !c.dry && v.Quotas != nil {
		block := v.QuotaLease
		if block <= 0 {
			block = DefaultQuotaLease
		}
		// Lease a quarter of what the ledger has left, up to a block:
		// near the end, replicas hold less, so they strand less.
		want := need - c.left
		if c.pool >= 0 {
			want = max(want, min(block, max(c.pool/4, 1)))
		}
		l, err := v.Quotas.LeaseQuota(id, c.gen, want, now)
		switch {
		case err != nil || l.Stale:
			// Fail closed: a store that cannot answer grants nothing,
			// and a stale generation waits for the index to catch up.
			return false, c.info()
		case l.Period != c.period:
			// The ledger's period is the truth.
			c.period, c.left = l.Period, 0
		}
		c.left += l.Granted
		c.pool = l.Left
		if l.Granted < want {
			c.dry = true
		}
	}
	if c.left < need {
		return false, c.info()
	}
	c.left -= cost
	return true, c.info()
}

// spendSharedQuota decides a call on key id's quota in the shared store:
// one round trip when the units leased into it suffice. When they do not
// and the ledger may have more, this replica leases a block from the
// ledger (one lease at a time per key and replica, under c's lock) and
// adds it to the store, where every replica spends it.
func (v *Verifier) spendSharedQuota(id string, c *quotaCell, cost int64, now time.Time) (bool, QuotaInfo) {
	c.mu.Lock()
	if !c.known || (c.next != 0 && now.UnixNano() >= c.next) {
		c.roll(now)
	}
	gen, period, next := c.gen, c.period, c.next
	c.mu.Unlock()
	info := func(pool, left int64) QuotaInfo {
		qi := QuotaInfo{Limited: true, Remaining: pool + max(left, 0)}
		if next != 0 {
			qi.Reset = time.Unix(0, next).UTC()
		}
		return qi
	}
	ttl := sharedQuotaTTL
	if next != 0 {
		ttl = time.Duration(next-now.UnixNano()) + 24*time.Hour
	}
	need := max(cost, 1)
	ctx := context.Background() // the store's own timeouts bound the wait
	ok, pool, left, _, err := v.SharedQuotas.SpendQuota(ctx, id, gen, period, cost, need, 0, -1, ttl)
	if err != nil {
		return false, info(0, 0)
	}
	if ok || left == 0 || v.Quotas == nil {
		return ok, info(pool, left)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Another call of this replica may have leased while this one waited.
	ok, pool, left, _, err = v.SharedQuotas.SpendQuota(ctx, id, gen, period, cost, need, 0, -1, ttl)
	if err != nil {
		return false, info(0, 0)
	}
	if ok || left == 0 {
		return ok, info(pool, left)
	}
	block := v.QuotaLease
	if block <= 0 {
		block = DefaultQuotaLease
	}
	// Lease a quarter of what the ledger has left, up to a block (a
	// block when no replica has leased in this period yet): what Redis
	// holds is shared, so a large lease strands nothing while Redis
	// lives, and losing Redis loses at most what it holds.
	want := max(need-pool, block)
	if left > 0 {
		want = max(need-pool, min(block, max(left/4, 1)))
	}
	l, err := v.Quotas.LeaseQuota(id, gen, want, now)
	if err != nil || l.Stale || l.Period != period {
		// Fail closed: a ledger that cannot answer grants nothing; a
		// stale generation waits for the index. A lease of another
		// period is not added, its units would count in the wrong
		// period: they go back to the ledger.
		if err == nil && l.Granted > 0 {
			_ = v.Quotas.ReturnQuota(id, gen, l.Period, l.Granted)
		}
		return false, info(pool, left)
	}
	ok, pool, left, _, err = v.SharedQuotas.SpendQuota(ctx, id, gen, period, cost, need, l.Granted, l.Left, ttl)
	if err != nil {
		// The lease is lost (the ledger counts it spent): never more
		// than the quota is granted.
		return false, info(0, 0)
	}
	return ok, info(pool, left)
}

// ReturnQuotaLeases gives back what this replica holds leased and has not
// spent, for a graceful shutdown; it returns how many units it gave back.
// A lease that cannot be returned is lost (the ledger counts it spent).
func (v *Verifier) ReturnQuotaLeases() int64 {
	if v.Quotas == nil {
		return 0
	}
	var total int64
	v.Index.eachQuota(func(id string, c *quotaCell) {
		c.mu.Lock()
		n, gen, period := c.left, c.gen, c.period
		c.left = 0
		c.dry = true // nothing more is leased on the way out
		c.mu.Unlock()
		if n > 0 && v.Quotas.ReturnQuota(id, gen, period, n) == nil {
			total += n
		}
	})
	return total
}

// eachQuota calls fn for every entry with a quota.
func (ix *Index) eachQuota(fn func(id string, c *quotaCell)) {
	type cell struct {
		id string
		c  *quotaCell
	}
	var cells []cell
	for i := range ix.shards {
		s := &ix.shards[i]
		s.mu.RLock()
		for _, rr := range s.rules {
			if rr.r != nil && rr.r.quota != nil {
				cells = append(cells, cell{ix.arena.str(ix.rec(rr.num).id), rr.r.quota})
			}
		}
		s.mu.RUnlock()
	}
	for _, c := range cells {
		fn(c.id, c.c)
	}
}
