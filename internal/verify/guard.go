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
// is never affected.
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
}

// NewGuard returns a guard allowing failures invalid credentials at once and
// refill more per minute per address.
func NewGuard(failures int, refillPerMinute float64) *Guard {
	return &Guard{Failures: failures, Refill: refillPerMinute, MaxAddresses: 100000, addrs: map[netip.Addr]*rate.Limiter{}}
}

// blocked returns how long addr must wait, or 0 if it may try.
func (g *Guard) blocked(addr netip.Addr, now time.Time) time.Duration {
	if g.n.Load() == 0 {
		return 0 // nobody has failed recently: no lock on the hot path
	}
	g.mu.Lock()
	l := g.addrs[addr]
	g.mu.Unlock()
	if l == nil {
		return 0
	}
	t := l.TokensAt(now)
	if t >= 1 {
		return 0
	}
	return time.Duration((1 - t) / float64(l.Limit()) * float64(time.Second))
}

// fail records an invalid credential from addr.
func (g *Guard) fail(addr netip.Addr, now time.Time) {
	if g == nil || !addr.IsValid() {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.addrs[addr]
	if l == nil {
		if len(g.addrs) >= g.MaxAddresses {
			g.sweepLocked(now)
		}
		if len(g.addrs) >= g.MaxAddresses {
			return // under a flood from very many addresses: fail open for new ones
		}
		l = rate.NewLimiter(rate.Limit(g.Refill/60), g.Failures)
		g.addrs[addr] = l
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
	for a, l := range g.addrs {
		if l.TokensAt(now) >= float64(g.Failures) {
			delete(g.addrs, a)
		}
	}
	g.n.Store(int64(len(g.addrs)))
}
