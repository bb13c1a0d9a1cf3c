package verify

import (
	"context"
	"sync"
	"sync/atomic"
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
	if !current(c.next.Load(), now.UnixNano()) {
		c.roll(now)
	}
	sp := &QuotaSpend{ID: c.id, Gen: c.gen, Period: c.period.Load(), LedgerLeft: -1, TTL: sharedQuotaTTL, next: c.next.Load(), Left: -1}
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
//
// A call that the units already leased here can pay takes them with one
// compare-and-swap on left, without the lock; rolls to a new period and
// leases from the ledger happen under mu, one at a time per key. left
// only goes down without the lock, so no call takes a unit that was not
// leased: a quota of N grants at most N on this replica.
type quotaCell struct {
	owner latchkey.QuotaOwner
	id    string // the owner's name in a shared store (sharedQuotaID)
	gen   int64
	q     latchkey.Quota // configuration: refill, anchor; the first period's budget

	// next is when the period of the lease ends, in Unix nanoseconds: 0
	// never, periodUnknown before the first call.
	next atomic.Int64
	left atomic.Int64 // leased here and not spent
	pool atomic.Int64 // what the ledger had left at the last lease; -1 unknown

	// period is the period the lease belongs to: written under mu, read
	// without it by quota reads.
	period atomic.Int64
	mu     sync.Mutex // serialises rolls and leases
	dry    bool       // the ledger had no more for this period (under mu)
	// retired: an administrative change took what the cell held into
	// the ledger's new generation; calls move to the key's new cell.
	retired atomic.Bool
}

// periodUnknown is quotaCell.next before the cell's period is computed.
const periodUnknown = -1

func newQuotaCell(owner latchkey.QuotaOwner, q *latchkey.Quota) *quotaCell {
	if q == nil {
		return nil
	}
	c := &quotaCell{owner: owner, id: sharedQuotaID(owner), gen: q.Generation, q: *q}
	c.next.Store(periodUnknown)
	c.pool.Store(-1)
	return c
}

// sameQuota reports whether c can serve q: same generation and schedule.
func (c *quotaCell) sameQuota(q *latchkey.Quota) bool {
	if c == nil || q == nil || c.gen != q.Generation || (c.q.Refill == nil) != (q.Refill == nil) {
		return false
	}
	return c.q.Refill == nil || *c.q.Refill == *q.Refill
}

// current reports whether the cell's period holds at now (ns): next is
// known and not reached.
func current(next, now int64) bool {
	return next == 0 || (next > 0 && now < next)
}

// roll moves the cell to the period at now, under mu; a lease of an ended
// period is worthless and dropped.
func (c *quotaCell) roll(now time.Time) {
	n, _, next := c.q.PeriodAt(now)
	if c.next.Load() != periodUnknown && n == c.period.Load() {
		return
	}
	c.period.Store(n)
	c.dry = false
	c.left.Store(0)
	c.pool.Store(-1)
	end := int64(0)
	if !next.IsZero() {
		end = next.UnixNano()
	}
	c.next.Store(end)
}

// budgetHint is what the ledger had left for c's period when the index
// last loaded the quota: the figure then in its first period, the
// refill amount in a later one. It only sizes a first lease.
func (c *quotaCell) budgetHint() int64 {
	if c.q.Refill != nil && c.period.Load() != c.q.Period {
		return c.q.Refill.Amount
	}
	return max(c.q.Left(), c.q.Remaining)
}

// take takes cost from the units leased here if at least need are there,
// and returns what is left.
func (c *quotaCell) take(cost, need int64) (int64, bool) {
	for {
		l := c.left.Load()
		if l < need {
			return l, false
		}
		if cost == 0 || c.left.CompareAndSwap(l, l-cost) {
			return l - cost, true
		}
	}
}

func (c *quotaCell) info(left int64) QuotaInfo {
	qi := QuotaInfo{Limited: true, Remaining: left + max(c.pool.Load(), 0)}
	if n := c.next.Load(); n > 0 {
		qi.Reset = time.Unix(0, n).UTC()
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
	i.mu.Lock()
	if k.retired.Load() || i.retired.Load() {
		// A top-up moved what a cell held into the new generation while
		// this call waited: the index has the key's new cells.
		i.mu.Unlock()
		k.mu.Unlock()
		if nk, ni := v.Index.keyQuotaCells(k.owner.ID); nk != nil && ni != nil && (nk != k || ni != i) &&
			!nk.retired.Load() && !ni.retired.Load() {
			return v.spendQuotas(nk, ni, cost, now)
		}
		return false, tighter(k.info(0), i.info(0))
	}
	defer k.mu.Unlock()
	defer i.mu.Unlock()
	// A free call (cost 0) needs a unit to be left, and takes none.
	need := max(cost, 1)
	if !k.fill(v, need, now) || !i.fill(v, need, now) {
		return false, tighter(k.info(k.left.Load()), i.info(i.left.Load()))
	}
	// The key's cell is spent only here, under its lock; the identity's
	// may also be spent without a lock by keys without a quota of their
	// own, so it can fall short between fill and take: then the key's
	// units go back.
	lk, ok := k.take(cost, need)
	if !ok {
		return false, tighter(k.info(lk), i.info(i.left.Load()))
	}
	li, ok := i.take(cost, need)
	if !ok {
		k.left.Add(cost)
		return false, tighter(k.info(lk+cost), i.info(li))
	}
	return true, tighter(k.info(lk), i.info(li))
}

// tighter is the quota with less left: what the caller is told.
func tighter(a, b QuotaInfo) QuotaInfo {
	if b.Remaining < a.Remaining {
		return b
	}
	return a
}

// keyQuotaCells returns the quota cells of key id and of its identity.
func (ix *Index) keyQuotaCells(id string) (key, identity *quotaCell) {
	e := ix.Get(id)
	if e == nil || e.rules == nil {
		return nil, nil
	}
	if e.rules.identity != nil {
		identity = e.rules.identity.quota
	}
	return e.rules.quota, identity
}

// spendQuota takes cost from one quota cell c (a key's or an identity's).
// A call the units leased here can pay takes them without a lock;
// otherwise leases are asked for under c's lock: calls of the same key
// (or identity) wait for one lease rather than each asking for its own.
func (v *Verifier) spendQuota(c *quotaCell, cost int64, now time.Time) (bool, QuotaInfo) {
	if v.SharedQuotas != nil {
		return v.spendSharedQuota(c, cost, now)
	}
	// A free call (cost 0) needs a unit to be left, and takes none.
	need := max(cost, 1)
	if current(c.next.Load(), now.UnixNano()) {
		if left, ok := c.take(cost, need); ok {
			return true, c.info(left)
		}
	}
	return v.leaseAndSpend(c, cost, need, now)
}

// leaseAndSpend is spendQuota's slow path, under c's lock: roll to the
// period at now, and lease from the ledger when the units held here do
// not suffice.
func (v *Verifier) leaseAndSpend(c *quotaCell, cost, need int64, now time.Time) (bool, QuotaInfo) {
	c.mu.Lock()
	if c.retired.Load() {
		// A top-up moved what this cell held into the new generation
		// while this call waited: the index has the key's (or the
		// identity's) new cell.
		c.mu.Unlock()
		if nc := v.Index.ownerQuotaCell(c.owner); nc != nil && nc != c && !nc.retired.Load() {
			return v.spendQuota(nc, cost, now)
		}
		return false, c.info(0)
	}
	defer c.mu.Unlock()
	c.fill(v, need, now)
	left, ok := c.take(cost, need)
	return ok, c.info(left)
}

// fill brings c to the period at now and, when c holds less than need,
// leases from the ledger if it may have more; it reports whether c holds
// need. The caller holds c.mu.
func (c *quotaCell) fill(v *Verifier, need int64, now time.Time) bool {
	if !current(c.next.Load(), now.UnixNano()) {
		c.roll(now)
	}
	// Another call may have leased while this one waited for the lock.
	if c.left.Load() >= need {
		return true
	}
	if !c.dry && v.Quotas != nil {
		block := v.QuotaLease
		if block <= 0 {
			block = DefaultQuotaLease
		}
		// Lease a quarter of what the ledger has left, up to a block:
		// near the end, replicas hold less, so they strand less.
		// The first lease of a period, before the ledger has said what
		// it has, is sized from the budget this cell was made with.
		want := need - c.left.Load()
		pool := c.pool.Load()
		if pool < 0 {
			pool = c.budgetHint()
		}
		want = max(want, min(block, max(pool/4, 1)))
		l, err := v.Quotas.LeaseQuota(c.owner, c.gen, want, now)
		switch {
		case err != nil || l.Stale:
			// Fail closed: a store that cannot answer grants nothing,
			// and a stale generation waits for the index to catch up.
			return false
		case l.Period != c.period.Load():
			// The ledger's period is the truth.
			c.period.Store(l.Period)
			c.left.Store(0)
		}
		c.left.Add(l.Granted)
		c.pool.Store(l.Left)
		if l.Granted < want {
			c.dry = true
		}
	}
	return c.left.Load() >= need
}

// heldAt returns what c holds leased and unspent in the ledger's period
// at now. It takes no lock: a read during an administrative change (which
// holds the cell, and the store) must not wait for it.
func (c *quotaCell) heldAt(period int64, now time.Time) int64 {
	if c.retired.Load() || !current(c.next.Load(), now.UnixNano()) || c.period.Load() != period {
		return 0
	}
	return max(c.left.Load(), 0)
}

// quotaCell returns owner's cell (a key's, or an identity's) if it
// serves generation gen.
func (ix *Index) quotaCell(owner latchkey.QuotaOwner, gen int64) *quotaCell {
	var c *quotaCell
	switch owner.Kind {
	case latchkey.QuotaOwnerKey:
		if e := ix.Get(owner.ID); e != nil && e.rules != nil {
			c = e.rules.quota
		}
	case latchkey.QuotaOwnerIdentity:
		ix.mu.Lock()
		if sb := ix.identities[owner.ID]; sb != nil {
			c = sb.quota
		}
		ix.mu.Unlock()
	}
	if c == nil || c.gen != gen {
		return nil
	}
	return c
}

// QuotaHeld returns what this replica holds leased from owner's quota q
// (as FindQuota presents it at now: its generation and period) and has
// not spent; 0 when it holds nothing of that generation and period.
func (ix *Index) QuotaHeld(owner latchkey.QuotaOwner, q *latchkey.Quota, now time.Time) int64 {
	if c := ix.quotaCell(owner, q.Generation); c != nil {
		return c.heldAt(q.Period, now)
	}
	return 0
}

// ownerQuotaCell returns owner's current cell (a key's, or an
// identity's), whatever its generation; nil when it has none.
func (ix *Index) ownerQuotaCell(owner latchkey.QuotaOwner) *quotaCell {
	switch owner.Kind {
	case latchkey.QuotaOwnerKey:
		c, _ := ix.keyQuotaCells(owner.ID)
		return c
	case latchkey.QuotaOwnerIdentity:
		ix.mu.Lock()
		defer ix.mu.Unlock()
		if sb := ix.identities[owner.ID]; sb != nil {
			return sb.quota
		}
	}
	return nil
}

// QuotaHold is a key's (or an identity's) quota cell held for an administrative change that
// adds what this replica holds leased back to the ledger (a top-up), so
// that nothing it holds is lost with the generation. While it is held,
// calls that the cell cannot pay wait; when the change is applied they
// move to the key's (or the identity's) new cell. A nil *QuotaHold holds nothing.
type QuotaHold struct {
	c      *quotaCell
	n      int64
	period int64
	done   bool
}

// HoldQuota holds key id's quota cell, if it has one. Take it before the
// change's transaction (a lease holds the cell while it writes to the
// store), and Release it after the index has the changed key.
func (ix *Index) HoldQuota(id string) *QuotaHold {
	e := ix.Get(id)
	if e == nil || e.rules == nil || e.rules.quota == nil {
		return nil
	}
	c := e.rules.quota
	c.mu.Lock()
	return &QuotaHold{c: c}
}

// HoldIdentityQuota is HoldQuota for identity id's quota cell, the one
// its keys on this replica share. Release it after the index has the
// identity's keys again (they carry its new cell).
func (ix *Index) HoldIdentityQuota(id string) *QuotaHold {
	if ix == nil {
		return nil
	}
	c := ix.ownerQuotaCell(latchkey.QuotaOwner{Kind: latchkey.QuotaOwnerIdentity, ID: id})
	if c == nil {
		return nil
	}
	c.mu.Lock()
	return &QuotaHold{c: c}
}

// Drain takes what the held cell holds leased from q (as FindQuota
// presents it at now: generation and period) and has not spent, and
// returns all it has taken so far (a transaction run again takes nothing
// more).
func (h *QuotaHold) Drain(q *latchkey.Quota, now time.Time) int64 {
	if h == nil || h.done || q == nil {
		return 0
	}
	c := h.c
	if h.n == 0 && c.gen == q.Generation && c.period.Load() == q.Period && current(c.next.Load(), now.UnixNano()) {
		h.n, h.period = c.left.Swap(0), q.Period
	}
	return h.n
}

// Release ends the hold: applied says the change that took the drained
// units committed and the index has the key's new cell; otherwise the
// units are given back to the cell.
func (h *QuotaHold) Release(applied bool) {
	if h == nil || h.done {
		return
	}
	h.done = true
	c := h.c
	switch {
	case applied:
		c.retired.Store(true)
	case h.n > 0 && c.period.Load() == h.period:
		c.left.Add(h.n)
	}
	c.mu.Unlock()
}

// QuotaHeld returns what replicas hold leased from owner's quota q (a
// key's or an identity's) and have not spent, as far as this replica can
// know at now: with
// SharedQuotas, the units leased into the shared store (every replica's,
// exact); without, what this replica holds (other replicas' leases are
// not known here).
func (v *Verifier) QuotaHeld(ctx context.Context, owner latchkey.QuotaOwner, q *latchkey.Quota, now time.Time) (int64, error) {
	if v.SharedQuotas == nil {
		return v.Index.QuotaHeld(owner, q, now), nil
	}
	ttl := sharedQuotaTTL
	if q.NextRefillAt != nil {
		ttl = q.NextRefillAt.Sub(now) + 24*time.Hour
	}
	// Asking for more than a quota can hold decides nothing and
	// changes nothing but a state of an ended period.
	_, pool, _, statePeriod, err := v.SharedQuotas.SpendQuota(ctx, sharedQuotaID(owner), q.Generation, q.Period, 0, latchkey.MaxQuota+1, 0, -1, ttl)
	if err != nil {
		return 0, err
	}
	if statePeriod != q.Period {
		return 0, nil
	}
	return pool, nil
}

// spendSharedQuota decides a call on c's quota in the shared store:
// one round trip when the units leased into it suffice. When they do not
// and the ledger may have more, this replica leases a block from the
// ledger (one lease at a time per key and replica, under c's lock) and
// adds it to the store, where every replica spends it.
func (v *Verifier) spendSharedQuota(c *quotaCell, cost int64, now time.Time) (bool, QuotaInfo) {
	id := c.id
	c.mu.Lock()
	if !current(c.next.Load(), now.UnixNano()) {
		c.roll(now)
	}
	gen, period, next := c.gen, c.period.Load(), c.next.Load()
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
		n, gen, period := c.left.Swap(0), c.gen, c.period.Load()
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
		for _, rr := range s.rules {
			if rr.r != nil {
				add(rr.r.quota)
				if rr.r.identity != nil {
					add(rr.r.identity.quota)
				}
			}
		}
		s.mu.RUnlock()
	}
	for _, c := range cells {
		fn(c)
	}
}
