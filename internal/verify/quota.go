package verify

import (
	"context"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
)

// QuotaLeaser grants this replica units of a quota (a key's or an
// identity's) from its ledger
// (manage.Service over the store). A lease is durable before it is
// returned: what a replica spends was recorded as spent first, so a crash
// loses at most the unspent part of its lease, never more than the quota
// grants.
type QuotaLeaser interface {
	// LeaseQuota takes up to want units of owner's quota in generation
	// gen at now.
	LeaseQuota(owner latchkey.QuotaOwner, gen, want int64, now time.Time) (latchkey.QuotaLease, error)
	// ReturnQuota gives back n unspent units of a lease (graceful
	// shutdown).
	ReturnQuota(owner latchkey.QuotaOwner, gen, period, n int64) error
}

// QuotaStore keeps the units of keys' quotas that replicas leased from
// the ledger in a store they all share (redislimit.Limiter on Redis), and
// decides each call there in one atomic step, so that a quota of N grants
// exactly N across replicas.
type QuotaStore interface {
	// SpendQuota takes cost from the units of quota id's (generation
	// gen, period) held in the store if at least need are there, after
	// adding add units just leased from the ledger; ledgerLeft (-1: not
	// known) is what the ledger had left after that lease. ttl is how
	// long an idle state is kept (0: forever). It returns whether the
	// call is allowed, the units left in the store, what the ledger had
	// left at the latest lease of this period (-1: unknown) and the
	// store's period. An error means the store cannot answer: the call
	// is refused (fail closed).
	SpendQuota(ctx context.Context, id string, gen, period, cost, need, add, ledgerLeft int64, ttl time.Duration) (allowed bool, pool, left, statePeriod int64, err error)
	// SpendQuotas is SpendQuota on two quotas at once (a key's and its
	// identity's), in one atomic step: the call takes cost from both
	// only if both hold need; a refusal by either takes nothing from the
	// other. Each one's add and ledgerLeft are applied whatever the
	// outcome.
	SpendQuotas(ctx context.Context, a, b *QuotaSpend, cost, need int64) (allowed bool, err error)
}

// QuotaSpend is one quota of a SpendQuotas call: what is asked (ID to
// TTL) and what the store answers (Pool to StatePeriod, as SpendQuota
// returns them).
type QuotaSpend struct {
	ID          string
	Gen, Period int64
	Add         int64
	LedgerLeft  int64
	TTL         time.Duration

	Pool, Left, StatePeriod int64

	next int64 // Unix nanoseconds when the period ends; 0 = never
}

// sharedSpend is c's part of a SpendQuotas call at now.
func (c *quotaCell) sharedSpend(now time.Time) *QuotaSpend {
	c.mu.Lock()
	if !c.known || (c.next != 0 && now.UnixNano() >= c.next) {
		c.roll(now)
	}
	sp := &QuotaSpend{ID: c.id, Gen: c.gen, Period: c.period, LedgerLeft: -1, TTL: sharedQuotaTTL, next: c.next, Left: -1}
	c.mu.Unlock()
	if sp.next != 0 {
		sp.TTL = time.Duration(sp.next-now.UnixNano()) + 24*time.Hour
	}
	return sp
}

// short reports whether sp's store held less than need, and the ledger
// may have more for the period.
func (sp *QuotaSpend) short(need int64) bool {
	return sp.Pool < need && sp.Left != 0 && sp.StatePeriod <= sp.Period
}

func (sp *QuotaSpend) info() QuotaInfo {
	qi := QuotaInfo{Limited: true, Remaining: sp.Pool + max(sp.Left, 0)}
	if sp.next != 0 {
		qi.Reset = time.Unix(0, sp.next).UTC()
	}
	return qi
}

// sharedQuotaID names owner's quota in a shared store: a key's by its ID,
// as before identities, an identity's under "identity/" (key IDs hold no
// "/").
func sharedQuotaID(o latchkey.QuotaOwner) string {
	if o.Kind == latchkey.QuotaOwnerKey {
		return o.ID
	}
	return o.Kind + "/" + o.ID
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

// quotaCell is a quota on this replica (a key's, or an identity's shared
// by the identity's keys): what it holds leased from the ledger for the
// current period. It is kept across index changes of the key (or keys) as
// long as the quota's generation is the same.
type quotaCell struct {
	mu    sync.Mutex
	owner latchkey.QuotaOwner
	id    string // the owner's name in a shared store (sharedQuotaID)
	gen   int64
	q     latchkey.Quota // configuration: refill, anchor; the first period's budget

	known  bool  // period and next are computed
	period int64 // the period the lease belongs to
	next   int64 // Unix nanoseconds when it ends; 0 = never
	left   int64 // leased here and not spent
	pool   int64 // what the ledger had left at the last lease; -1 unknown
	dry    bool  // the ledger had no more for this period
}

func newQuotaCell(owner latchkey.QuotaOwner, q *latchkey.Quota) *quotaCell {
	if q == nil {
		return nil
	}
	return &quotaCell{owner: owner, id: sharedQuotaID(owner), gen: q.Generation, q: *q, pool: -1}
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

// spendQuotas takes cost from the key's quota cell k and its identity's
// cell i (either may be nil, not both): from both, or from neither when
// either cannot pay, so that a refused call costs nothing.
func (v *Verifier) spendQuotas(k, i *quotaCell, cost int64, now time.Time) (bool, QuotaInfo) {
	switch {
	case i == nil:
		return v.spendQuota(k, cost, now)
	case k == nil:
		return v.spendQuota(i, cost, now)
	case v.SharedQuotas != nil:
		return v.spendSharedPair(k, i, cost, now)
	}
	// The key's cell is always locked before the identity's: no two
	// calls wait for each other the other way round.
	k.mu.Lock()
	defer k.mu.Unlock()
	i.mu.Lock()
	defer i.mu.Unlock()
	need := max(cost, 1)
	okK, okI := k.fill(v, need, now), i.fill(v, need, now)
	if !okK || !okI {
		return false, tighter(k.info(), i.info())
	}
	k.left -= cost
	i.left -= cost
	return true, tighter(k.info(), i.info())
}

// tighter is the quota with less left: what the caller is told.
func tighter(a, b QuotaInfo) QuotaInfo {
	if b.Remaining < a.Remaining {
		return b
	}
	return a
}

// spendQuota takes cost from one quota cell c. Leases are asked for under
// c's lock: calls of the same key (or identity) wait for one lease rather
// than each asking for its own.
func (v *Verifier) spendQuota(c *quotaCell, cost int64, now time.Time) (bool, QuotaInfo) {
	if v.SharedQuotas != nil {
		return v.spendSharedQuota(c, cost, now)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// A free call (cost 0) needs a unit to be left, and takes none.
	need := max(cost, 1)
	if !c.fill(v, need, now) {
		return false, c.info()
	}
	c.left -= cost
	return true, c.info()
}

// fill brings c to the period at now and leases from the ledger until c
// holds need, if the ledger has it; it reports whether c holds need. The
// caller holds c.mu.
func (c *quotaCell) fill(v *Verifier, need int64, now time.Time) bool {
	if !c.known || (c.next != 0 && now.UnixNano() >= c.next) {
		c.roll(now)
	}
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
		l, err := v.Quotas.LeaseQuota(c.owner, c.gen, want, now)
		switch {
		case err != nil || l.Stale:
			// Fail closed: a store that cannot answer grants nothing,
			// and a stale generation waits for the index to catch up.
			return false
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
	return c.left >= need
}

// spendSharedQuota decides a call on c's quota in the shared store:
// one round trip when the units leased into it suffice. When they do not
// and the ledger may have more, this replica leases a block from the
// ledger (one lease at a time per key and replica, under c's lock) and
// adds it to the store, where every replica spends it.
func (v *Verifier) spendSharedQuota(c *quotaCell, cost int64, now time.Time) (bool, QuotaInfo) {
	id := c.id
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
	l, err := v.Quotas.LeaseQuota(c.owner, gen, want, now)
	if err != nil || l.Stale || l.Period != period {
		// Fail closed: a ledger that cannot answer grants nothing; a
		// stale generation waits for the index. A lease of another
		// period is not added, its units would count in the wrong
		// period: they go back to the ledger.
		if err == nil && l.Granted > 0 {
			_ = v.Quotas.ReturnQuota(c.owner, gen, l.Period, l.Granted)
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

// spendSharedPair decides a call on the key's quota k and its identity's
// i in the shared store, one atomic step for both (SpendQuotas): both
// pay, or neither does. When a store falls short and its ledger may have
// more, this replica leases for it (under both cells' locks, the key's
// first) and adds the lease in the next step.
func (v *Verifier) spendSharedPair(k, i *quotaCell, cost int64, now time.Time) (bool, QuotaInfo) {
	a, b := k.sharedSpend(now), i.sharedSpend(now)
	need := max(cost, 1)
	ctx := context.Background() // the store's own timeouts bound the wait
	fail := QuotaInfo{Limited: true}
	ok, err := v.SharedQuotas.SpendQuotas(ctx, a, b, cost, need)
	if err != nil {
		return false, fail
	}
	if ok || v.Quotas == nil || (!a.short(need) && !b.short(need)) {
		return ok, tighter(a.info(), b.info())
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	i.mu.Lock()
	defer i.mu.Unlock()
	// Another call of this replica may have leased while this one waited.
	if ok, err = v.SharedQuotas.SpendQuotas(ctx, a, b, cost, need); err != nil {
		return false, fail
	}
	if ok || (!a.short(need) && !b.short(need)) {
		return ok, tighter(a.info(), b.info())
	}
	block := v.QuotaLease
	if block <= 0 {
		block = DefaultQuotaLease
	}
	type leased struct {
		c  *quotaCell
		sp *QuotaSpend
	}
	var got []leased
	for _, x := range []leased{{k, a}, {i, b}} {
		if !x.sp.short(need) {
			continue
		}
		want := max(need-x.sp.Pool, block)
		if x.sp.Left > 0 {
			want = max(need-x.sp.Pool, min(block, max(x.sp.Left/4, 1)))
		}
		l, err := v.Quotas.LeaseQuota(x.c.owner, x.sp.Gen, want, now)
		if err != nil || l.Stale || l.Period != x.sp.Period {
			// Fail closed, and give back what was leased for this
			// call and not added (see spendSharedQuota).
			if err == nil && l.Granted > 0 {
				_ = v.Quotas.ReturnQuota(x.c.owner, x.sp.Gen, l.Period, l.Granted)
			}
			for _, g := range got {
				_ = v.Quotas.ReturnQuota(g.c.owner, g.sp.Gen, g.sp.Period, g.sp.Add)
			}
			return false, tighter(a.info(), b.info())
		}
		x.sp.Add, x.sp.LedgerLeft = l.Granted, l.Left
		got = append(got, x)
	}
	if ok, err = v.SharedQuotas.SpendQuotas(ctx, a, b, cost, need); err != nil {
		// The leases are lost (the ledger counts them spent): never
		// more than the quota is granted.
		return false, fail
	}
	return ok, tighter(a.info(), b.info())
}

// ReturnQuotaLeases gives back what this replica holds leased and has not
// spent, for a graceful shutdown; it returns how many units it gave back.
// A lease that cannot be returned is lost (the ledger counts it spent).
func (v *Verifier) ReturnQuotaLeases() int64 {
	if v.Quotas == nil {
		return 0
	}
	var total int64
	v.Index.eachQuota(func(c *quotaCell) {
		c.mu.Lock()
		n, gen, period := c.left, c.gen, c.period
		c.left = 0
		c.dry = true // nothing more is leased on the way out
		c.mu.Unlock()
		if n > 0 && v.Quotas.ReturnQuota(c.owner, gen, period, n) == nil {
			total += n
		}
	})
	return total
}

// eachQuota calls fn once for every quota cell of the index: keys' and
// identities'.
func (ix *Index) eachQuota(fn func(c *quotaCell)) {
	seen := map[*quotaCell]bool{}
	var cells []*quotaCell
	add := func(c *quotaCell) {
		if c != nil && !seen[c] {
			seen[c] = true
			cells = append(cells, c)
		}
	}
	for i := range ix.shards {
		s := &ix.shards[i]
		s.mu.RLock()
		for _, e := range s.byDigest {
			if e.rules != nil {
				add(e.rules.quota)
				if e.rules.identity != nil {
					add(e.rules.identity.quota)
				}
			}
		}
		s.mu.RUnlock()
	}
	for _, c := range cells {
		fn(c)
	}
}
