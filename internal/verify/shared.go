package verify

import (
	"time"

	"github.com/latchkey/latchkey"
)

// RateStore keeps rate limit buckets in a store that every replica shares
// (Redis: internal/redislimit), so that a key's limit holds across replicas
// instead of on each.
type RateStore interface {
	// Allow takes one call from the buckets named key, limited by cfg, or
	// none if a bucket is empty, and describes the tighter bucket. An
	// error means the store could not decide; the Verifier then applies
	// its OnRateStoreError.
	Allow(key string, cfg latchkey.RateLimit) (bool, RateInfo, error)
}

// RateStoreFailure is what a rate-limited call gets when the RateStore
// cannot answer.
type RateStoreFailure int

const (
	// RateFallbackLocal enforces the limit on this replica alone, as
	// without a shared store: each replica allows the whole limit, less
	// what the store granted through it in the window (its buckets are
	// charged for every call the store allows).
	RateFallbackLocal RateStoreFailure = iota
	// RateFailOpen allows the call without a limit.
	RateFailOpen
	// RateFailClosed refuses the call as RATE_LIMITED.
	RateFailClosed
)

// reportSuffix names the shared buckets of a key's report-only limit,
// apart from those of its enforced limit.
const reportSuffix = "/report-only"

// allow takes a call from a key's rate limit: in the shared store when
// there is one, otherwise (or when the store fails and the policy says
// so) in l, this replica's buckets. Keys without a rate limit never get
// here, so they cost the store nothing.
func (v *Verifier) allow(key string, l *limiter, now time.Time) (bool, RateInfo) {
	if v.Rates == nil {
		return l.allow(now)
	}
	ok, info, err := v.Rates.Allow(key, l.cfg)
	if err == nil {
		if ok && v.OnRateStoreError == RateFallbackLocal {
			l.charge(now)
		}
		return ok, info
	}
	switch v.OnRateStoreError {
	case RateFailOpen:
		return true, RateInfo{}
	case RateFailClosed:
		info := RateInfo{Limit: l.cfg.PerMinute, Window: time.Minute, RetryAfter: time.Second}
		if l.cfg.PerSecond > 0 {
			info.Limit, info.Window = max(l.cfg.Burst, 1), time.Second
		}
		return false, info
	}
	return l.allow(now)
}
