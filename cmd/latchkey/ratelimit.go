package main

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/cli"
	"github.com/latchkey/latchkey/internal/redislimit"
	"github.com/latchkey/latchkey/internal/verify"
)

// rateStoreFailures are the values of --rate-limit-store-failure.
var rateStoreFailures = map[string]verify.RateStoreFailure{
	"local":  verify.RateFallbackLocal,
	"open":   verify.RateFailOpen,
	"closed": verify.RateFailClosed,
}

// redisRates is a verify.RateStore on Redis.
type redisRates struct{ l *redislimit.Limiter }

// Allow implements verify.RateStore. The limiter's own timeouts bound the
// wait, so no context is made per call.
func (r redisRates) Allow(key string, cfg latchkey.RateLimit) (bool, verify.RateInfo, error) {
	res, err := r.l.Allow(context.Background(), key, cfg)
	return res.Allowed, verify.RateInfo{Limit: res.Limit, Window: res.Window, Remaining: res.Remaining, RetryAfter: res.RetryAfter}, err
}

// openRateStore checks the --rate-limit-store flags and opens the shared
// store. An unreachable Redis is not an error at start: it is logged, and
// the failure policy applies until Redis answers.
func openRateStore(ctx context.Context, rawURL, failure string, log *slog.Logger) (*redislimit.Limiter, verify.RateStoreFailure, error) {
	if failure == "" {
		failure = "local"
	}
	policy, ok := rateStoreFailures[failure]
	if !ok {
		return nil, 0, cli.UsageErrorf("--rate-limit-store-failure %q: expected local, open or closed", failure)
	}
	if rawURL == "" {
		return nil, policy, nil
	}
	if !strings.HasPrefix(rawURL, "redis://") && !strings.HasPrefix(rawURL, "rediss://") {
		return nil, 0, cli.UsageErrorf("--rate-limit-store: expected redis://host:port/db or rediss://... (TLS), or nothing for limits per replica")
	}
	l, err := redislimit.Open(rawURL, redislimit.Options{Log: log})
	if err != nil {
		return nil, 0, cli.UsageErrorf("--rate-limit-store: %v", err)
	}
	desc := "redis"
	if u, err := url.Parse(rawURL); err == nil {
		desc = u.Redacted()
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := l.Ping(pctx); err != nil {
		log.Warn("shared rate limit store unreachable at start; rate-limited calls get the failure policy until it answers",
			"store", desc, "failure_policy", failure, "err", err)
	} else {
		log.Info("rate limits shared through Redis", "store", desc, "failure_policy", failure)
	}
	return l, policy, nil
}
