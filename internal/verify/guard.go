package verify

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Guard is the brute-force guard: it counts invalid credentials (unknown,
// malformed, wrong ID) per client address and, past a budget, answers that
// address THROTTLED for a while without looking its keys up. Only the
// offending address is throttled; a valid key used from any other address
// is never affected. An IPv6 client is counted by its /64 network: a
// single subscriber gets at least a /64 and may send from any of its 2^64
// addresses, so counting each apart would give it an endless budget and
// fill the guard's table.
//
// A call from an address the guard has no failure for takes no lock: a
// bitmap of the counted addresses' hashes answers it (a collision only
// sends the call to the lock and the table, which then find nothing).
type Guard struct {
	// Failures is how many invalid credentials an address may send in a
	// burst; Refill is how many more it earns per minute.
	Failures int
	Refill   float64
	// MaxAddresses bounds memory: past it, addresses whose budget is full
	// again are forgotten.
	MaxAddresses int

	mu    sync.Mutex
	addrs map[netip.Addr]*rate.Limiter
	n     atomic.Int64 // len(addrs), read without the lock on the hot path
	// seen has the bit of every address in addrs: blocked reads it
	// without the lock. A sweep that forgets addresses builds a new one
	// and swaps it in, so that a reader never sees the bit of an address
	// still counted cleared.
	seen atomic.Pointer[addrBits]
	// fullSweep is when fail last swept a full table (under mu): a flood
	// from very many addresses then costs one sweep a fullSweepSpacing,
	// not one per new address.
	fullSweep time.Time
}

// fullSweepSpacing is how often at most fail sweeps a full table to make
// room for a new address; between sweeps, new addresses go uncounted.
const fullSweepSpacing = time.Second

// addrBits is a bitmap of guard keys' hashes: 2^20 bits, 128 KiB.
type addrBits [1 << 14]atomic.Uint64

// bitOf is the bit of guard key k.
func bitOf(k netip.Addr) (word int, mask uint64) {
	h := addrU128(k).mix() >> (64 - 20)
	return int(h >> 6), 1 << (h & 63)
}

func (b *addrBits) has(k netip.Addr) bool {
	w, m := bitOf(k)
	return b[w].Load()&m != 0
}

func (b *addrBits) add(k netip.Addr) {
	w, m := bitOf(k)
	b[w].Or(m)
}

// guardKey is what the guard counts addr under: an IPv4 address (IPv4-
// mapped IPv6 ones included) as it is, an IPv6 address by its /64
// network, without a zone.
func guardKey(addr netip.Addr) netip.Addr {
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.Addr()
	}
	return addr
}

// NewGuard returns a guard allowing failures invalid credentials at once and
// refill more per minute per address.
func NewGuard(failures int, refillPerMinute float64) *Guard {
	g := &Guard{Failures: failures, Refill: refillPerMinute, MaxAddresses: 100000, addrs: map[netip.Addr]*rate.Limiter{}}
	g.seen.Store(new(addrBits))
	return g
}

// blocked returns how long addr must wait, or 0 if it may try.
func (g *Guard) blocked(addr netip.Addr, clk *clock) time.Duration {
	if g.n.Load() == 0 {
		return 0 // nobody has failed recently: no lock on the hot path
	}
	k := guardKey(addr)
	if !g.seen.Load().has(k) {
		return 0 // this address has not failed: no lock either
	}
	g.mu.Lock()
	l := g.addrs[k]
	g.mu.Unlock()
	if l == nil {
		return 0
	}
	t := l.TokensAt(clk.now())
	if t >= 1 {
		return 0
	}
	return time.Duration((1 - t) / float64(l.Limit()) * float64(time.Second))
}

// fail records an invalid credential from addr, reading the decision's
// time only when there is a guard and an address to charge.
func (g *Guard) fail(addr netip.Addr, clk *clock) {
	if g == nil || !addr.IsValid() {
		return
	}
	now := clk.now()
	k := guardKey(addr)
	g.mu.Lock()
	defer g.mu.Unlock()
	var l *rate.Limiter
	if g.seen.Load().has(k) { // else k is not in the table: no need to look
		l = g.addrs[k]
	}
	if l == nil {
		if len(g.addrs) >= g.MaxAddresses && !now.Before(g.fullSweep.Add(fullSweepSpacing)) {
			g.sweepLocked(now)
			g.fullSweep = now
		}
		if len(g.addrs) >= g.MaxAddresses {
			return // under a flood from very many addresses: fail open for new ones
		}
		l = rate.NewLimiter(rate.Limit(g.Refill/60), g.Failures)
		g.seen.Load().add(k)
		g.addrs[k] = l
		g.n.Store(int64(len(g.addrs)))
	}
	l.AllowN(now, 1)
}

// Sweep forgets addresses whose budget is full again.
func (g *Guard) Sweep(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweepLocked(now)
}

func (g *Guard) sweepLocked(now time.Time) {
	n := len(g.addrs)
	for a, l := range g.addrs {
		if l.TokensAt(now) >= float64(g.Failures) {
			delete(g.addrs, a)
		}
	}
	g.n.Store(int64(len(g.addrs)))
	if len(g.addrs) == n {
		return // the bitmap still holds exactly the counted addresses' bits
	}
	seen := new(addrBits)
	for a := range g.addrs {
		seen.add(a)
	}
	g.seen.Store(seen)
}
