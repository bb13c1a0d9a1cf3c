// Package redislimit keeps access keys' rate limits in Redis, so that every
// latchkey replica draws from the same buckets: a key limited to 10 calls a
// second gets 10 a second in all, not 10 on each replica.
//
// A key's limits are GCRA (the generic cell rate algorithm): for each
// limit, Redis holds one number, the theoretical arrival time of the next
// call, and a Lua script checks and updates both limits of a key
// atomically, in one round trip. The arithmetic is that of the token
// buckets the replicas use on their own (golang.org/x/time/rate): a
// per-second limit of r calls with a burst of b, a per-minute limit of n
// calls with a burst of n; a call is allowed only when both have room, and
// a refused call takes from neither. The clock is the Redis server's, so
// the replicas' clocks need not agree.
//
// The state is a cache, not a record: if Redis loses it, every key starts
// again with a full burst. Keys expire once their buckets are full again.
//
// When Redis cannot be reached, Allow fails fast with ErrUnavailable and
// then does not try Redis again for a second (Options.RetryAfterError),
// so that an outage costs each rate-limited call nothing more than a
// check; the caller decides what a call then gets.
package redislimit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

//go:embed gcra.lua
var gcraSource string

var gcra = redis.NewScript(gcraSource)

// ErrUnavailable is returned (wrapped) by Allow when Redis cannot be
// reached or does not answer in time.
var ErrUnavailable = errors.New("the shared rate limit store (Redis) is unavailable")

// Options configure a Limiter. The zero value is usable.
type Options struct {
	// Prefix is put before the access key ID to name its Redis key.
	// Default "latchkey:ratelimit:".
	Prefix string
	// RetryAfterError is how long Allow answers ErrUnavailable without
	// asking Redis after a failure. Default 1s.
	RetryAfterError time.Duration
	// Log receives one line when Redis becomes unreachable and one when
	// it answers again. Default: discard.
	Log *slog.Logger
	// Now, when set, is the clock; by default the Redis server's clock is
	// used, the same for every replica. For tests.
	Now func() time.Time
	// Hook, when set, sees every command sent to Redis (tests count the
	// round trips of a decision with it).
	Hook redis.Hook
}

// Timeouts applied unless the URL sets its own (dial_timeout,
// read_timeout, write_timeout, pool_timeout): a rate-limited call waits
// for Redis at most this long before the caller's fallback decides.
const (
	defaultDialTimeout = 500 * time.Millisecond
	defaultIOTimeout   = 100 * time.Millisecond
)

// Limiter checks rate limits in Redis. It is safe for concurrent use.
type Limiter struct {
	client *redis.Client
	prefix string
	retry  time.Duration
	log    *slog.Logger
	now    func() time.Time

	downUntil atomic.Int64 // Unix nanoseconds; 0 = up
	down      atomic.Bool  // for logging each change once
}

// Open returns a limiter on the Redis server at rawURL
// (redis://[user:password@]host:port/db, or rediss:// for TLS; go-redis's
// query parameters such as read_timeout=200ms are accepted). It does not
// connect: the first Allow does, and Ping checks the server.
func Open(rawURL string, opts Options) (*Limiter, error) {
	ro, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", redact(rawURL), err)
	}
	q := url.Values{}
	if u, err := url.Parse(rawURL); err == nil {
		q = u.Query()
	}
	if !q.Has("dial_timeout") {
		ro.DialTimeout = defaultDialTimeout
	}
	if !q.Has("read_timeout") {
		ro.ReadTimeout = defaultIOTimeout
	}
	if !q.Has("write_timeout") {
		ro.WriteTimeout = defaultIOTimeout
	}
	if !q.Has("pool_timeout") {
		ro.PoolTimeout = defaultIOTimeout
	}
	if !q.Has("max_retries") {
		ro.MaxRetries = -1 // one try: the caller's fallback is the retry
	}
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	l := &Limiter{
		client: redis.NewClient(ro),
		prefix: opts.Prefix,
		retry:  opts.RetryAfterError,
		log:    opts.Log,
		now:    opts.Now,
	}
	if opts.Hook != nil {
		l.client.AddHook(opts.Hook)
	}
	if l.prefix == "" {
		l.prefix = "latchkey:ratelimit:"
	}
	if l.retry <= 0 {
		l.retry = time.Second
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	return l, nil
}

// redact returns rawURL without its password, for messages.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "the Redis URL"
	}
	return u.Redacted()
}

// Ping checks that Redis answers.
func (l *Limiter) Ping(ctx context.Context) error {
	if err := l.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// Close closes the connections to Redis.
func (l *Limiter) Close() error { return l.client.Close() }

// Result is the decision on one call and the state of the bucket that
// limits the key most, for RateLimit-* headers.
type Result struct {
	Allowed    bool
	Limit      int           // calls per window
	Window     time.Duration // time.Second or time.Minute
	Remaining  int
	RetryAfter time.Duration // > 0 when refused
}

// Allow takes one call from the buckets of the key named id, limited by
// cfg, or none if either bucket is empty. It returns an error wrapping
// ErrUnavailable when Redis cannot answer; then, for RetryAfterError, it
// returns that error at once without asking.
func (l *Limiter) Allow(ctx context.Context, id string, cfg latchkey.RateLimit) (Result, error) {
	if until := l.downUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return Result{}, ErrUnavailable
	}
	var now int64 // 0: the script reads the server's clock
	if l.now != nil {
		now = l.now().UnixMicro()
	}
	var secInterval, minInterval int64
	secBurst, minBurst := max(cfg.Burst, 1), cfg.PerMinute
	if cfg.PerSecond > 0 {
		secInterval = max(int64(math.Round(1e6/cfg.PerSecond)), 1)
	}
	if cfg.PerMinute > 0 {
		minInterval = max(60e6/int64(cfg.PerMinute), 1)
	}
	v, err := gcra.Run(ctx, l.client, []string{l.prefix + id}, now, secInterval, secBurst, minInterval, minBurst).Int64Slice()
	if err != nil || len(v) != 5 {
		if err == nil {
			err = fmt.Errorf("unexpected reply %v", v)
		}
		l.failed(err)
		return Result{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	l.answered()
	ok := v[0] == 1
	secRem, secWait, minRem, minWait := v[1], v[2], v[3], v[4]

	// Report the bucket that limits most, as the per-replica limiter
	// does: the per-second one, unless the per-minute one refused or has
	// less room.
	res := Result{Allowed: ok}
	if secInterval > 0 {
		res.Limit, res.Window, res.Remaining = secBurst, time.Second, int(secRem)
		res.RetryAfter = time.Duration(secWait) * time.Microsecond
	}
	if minInterval > 0 && (secInterval == 0 || minWait > 0 || int(minRem) < res.Remaining) {
		res.Limit, res.Window, res.Remaining = cfg.PerMinute, time.Minute, int(minRem)
		res.RetryAfter = time.Duration(minWait) * time.Microsecond
	}
	if ok {
		res.RetryAfter = 0
	} else if res.RetryAfter <= 0 {
		res.RetryAfter = time.Millisecond
	}
	return res, nil
}

// failed stops asking Redis for a while, and logs the first failure.
func (l *Limiter) failed(err error) {
	l.downUntil.Store(time.Now().Add(l.retry).UnixNano())
	if !l.down.Swap(true) {
		l.log.Warn("shared rate limit store unreachable; rate limits use the fallback, and calls on keys with a quota are refused, until it answers", "err", err, "retry_every", l.retry)
	}
}

func (l *Limiter) answered() {
	if l.downUntil.Load() != 0 {
		l.downUntil.Store(0)
	}
	if l.down.Load() && l.down.Swap(false) {
		l.log.Info("shared rate limit store answers again")
	}
}

// Claim records a signing key's nonce (key) for ttl with SET NX PX, and
// reports whether it was new: every replica that shares this Redis sees
// the first use, so a signed request replayed to another replica within
// the window is refused there too. It implements httpsig.NonceStore. An
// error (Redis unreachable) refuses the signature: a replay cannot be
// ruled out.
func (l *Limiter) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if until := l.downUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return false, ErrUnavailable
	}
	ok, err := l.client.SetNX(ctx, l.prefix+"nonce:"+key, 1, ttl).Result()
	if err != nil {
		l.failed(err)
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	l.answered()
	return ok, nil
}
