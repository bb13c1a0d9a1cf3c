package httpsig

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrNonceCacheFull is Claim's error when the cache holds Max nonces that
// have not expired: the signature is refused rather than a nonce forgotten
// early, which would let a replay through.
var ErrNonceCacheFull = errors.New("httpsig: nonce cache is full")

// NonceCache is an in-process NonceStore. Its memory is bounded: it holds
// at most Max nonces, each until its time to live has passed. It protects
// one process only: replicas that do not share a store (Redis) each accept
// a nonce once, so a request replayed to another replica within the window
// is accepted there.
type NonceCache struct {
	Max int              // DefaultNonceCacheMax when 0
	Now func() time.Time // time.Now when nil

	mu      sync.Mutex
	entries map[string]time.Time // nonce key -> expiry
	sweepAt time.Time
}

// DefaultNonceCacheMax bounds a NonceCache: about 100 bytes a nonce, so
// 1,000,000 nonces take about 100 MB.
const DefaultNonceCacheMax = 1_000_000

// Claim implements NonceStore.
func (c *NonceCache) Claim(_ context.Context, key string, ttl time.Duration) (bool, error) {
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	max := c.Max
	if max <= 0 {
		max = DefaultNonceCacheMax
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]time.Time{}
	}
	if exp, ok := c.entries[key]; ok && now.Before(exp) {
		return false, nil
	}
	// Expired entries are swept at most once a second, or when full.
	if len(c.entries) >= max || now.After(c.sweepAt) {
		for k, exp := range c.entries {
			if !now.Before(exp) {
				delete(c.entries, k)
			}
		}
		c.sweepAt = now.Add(time.Second)
	}
	if len(c.entries) >= max {
		return false, ErrNonceCacheFull
	}
	c.entries[key] = now.Add(ttl)
	return true, nil
}

// Len returns how many nonces the cache holds.
func (c *NonceCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
