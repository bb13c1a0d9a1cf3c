package redislimit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/redislimit"
)

// redisAddr is the Redis server the tests use.
func redisAddr() string {
	if a := os.Getenv("LATCHKEY_TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// newLimiter returns a limiter on the test server whose keys carry a
// prefix of their own, deleted when the test ends. When Redis cannot be
// reached the test fails if CI is set, and is skipped otherwise.
func newLimiter(t *testing.T, opts redislimit.Options) *redislimit.Limiter {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = testPrefix(t)
	}
	l, err := redislimit.Open("redis://"+redisAddr()+"/0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Ping(ctx); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis is unreachable at %s (set LATCHKEY_TEST_REDIS_ADDR): %v", redisAddr(), err)
		}
		t.Skipf("Redis is unreachable at %s: %v", redisAddr(), err)
	}
	return l
}

// testPrefix returns a Redis key prefix for this test; its keys expire on
// their own within a few minutes.
func testPrefix(t *testing.T) string {
	var b [6]byte
	rand.Read(b[:])
	return "latchkey-test:" + hex.EncodeToString(b[:]) + ":"
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestAllow(t *testing.T) {
	type step struct {
		after time.Duration // clock advance before the call
		want  redislimit.Result
	}
	ok := func(limit int, window time.Duration, remaining int) redislimit.Result {
		return redislimit.Result{Allowed: true, Limit: limit, Window: window, Remaining: remaining}
	}
	no := func(limit int, window time.Duration, remaining int, retry time.Duration) redislimit.Result {
		return redislimit.Result{Limit: limit, Window: window, Remaining: remaining, RetryAfter: retry}
	}
	tests := []struct {
		name  string
		cfg   latchkey.RateLimit
		steps []step
	}{
		{"per second with a burst", latchkey.RateLimit{PerSecond: 2, Burst: 3}, []step{
			{0, ok(3, time.Second, 2)},
			{0, ok(3, time.Second, 1)},
			{0, ok(3, time.Second, 0)},
			{0, no(3, time.Second, 0, 500*time.Millisecond)},
			{100 * time.Millisecond, no(3, time.Second, 0, 400*time.Millisecond)},
			{400 * time.Millisecond, ok(3, time.Second, 0)},
			{2 * time.Second, ok(3, time.Second, 2)}, // refilled to the burst, not beyond
		}},
		{"burst defaults to one", latchkey.RateLimit{PerSecond: 10}, []step{
			{0, ok(1, time.Second, 0)},
			{0, no(1, time.Second, 0, 100*time.Millisecond)},
			{100 * time.Millisecond, ok(1, time.Second, 0)},
		}},
		{"fractional rate", latchkey.RateLimit{PerSecond: 0.5}, []step{
			{0, ok(1, time.Second, 0)},
			{time.Second, no(1, time.Second, 0, time.Second)},
			{time.Second, ok(1, time.Second, 0)},
		}},
		{"per minute", latchkey.RateLimit{PerMinute: 3}, []step{
			{0, ok(3, time.Minute, 2)},
			{0, ok(3, time.Minute, 1)},
			{0, ok(3, time.Minute, 0)},
			{0, no(3, time.Minute, 0, 20*time.Second)},
			{20 * time.Second, ok(3, time.Minute, 0)},
		}},
		{"both: the tighter one reports, a refusal takes from neither", latchkey.RateLimit{PerSecond: 10, Burst: 2, PerMinute: 3}, []step{
			{0, ok(2, time.Second, 1)},
			{0, ok(2, time.Second, 0)},
			{0, no(2, time.Second, 0, 100*time.Millisecond)},
			{100 * time.Millisecond, ok(2, time.Second, 0)}, // a tie: per second
			// per second has room again, per minute has not
			{time.Second, no(3, time.Minute, 0, 20*time.Second-1100*time.Millisecond)},
			{20 * time.Second, ok(3, time.Minute, 0)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
			l := newLimiter(t, redislimit.Options{Now: c.now})
			for i, s := range tt.steps {
				c.add(s.after)
				got, err := l.Allow(t.Context(), "LKIATESTTESTTESTTEST", tt.cfg)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if got != s.want {
					t.Errorf("step %d (+%v): got %+v, want %+v", i, s.after, got, s.want)
				}
			}
		})
	}
}

// TestAllowShared: limiters with connections of their own, as on
// different replicas, draw from one bucket, and concurrent calls never
// take more than it holds.
func TestAllowShared(t *testing.T) {
	prefix := testPrefix(t)
	const replicas, callers, calls = 3, 8, 25
	cfg := latchkey.RateLimit{PerMinute: 100}
	var ls []*redislimit.Limiter
	for range replicas {
		ls = append(ls, newLimiter(t, redislimit.Options{Prefix: prefix}))
	}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for i := range replicas * callers {
		l := ls[i%replicas]
		wg.Go(func() {
			for range calls {
				r, err := l.Allow(context.Background(), "LKIASHAREDSHAREDSHAR", cfg)
				if err != nil {
					t.Error(err)
					return
				}
				if r.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	// 600 calls within a second or so: the burst of 100, and perhaps the
	// one or two the minute refills meanwhile.
	if n := allowed.Load(); n < 100 || n > 103 {
		t.Errorf("%d of %d calls allowed through %d limiters, want 100 (the burst)", n, replicas*callers*calls, replicas)
	}
}

// TestAllowServerClock uses the Redis server's clock, as in production.
func TestAllowServerClock(t *testing.T) {
	l := newLimiter(t, redislimit.Options{})
	cfg := latchkey.RateLimit{PerSecond: 1, Burst: 5}
	for i := range 5 {
		r, err := l.Allow(t.Context(), "LKIACLOCKCLOCKCLOCKC", cfg)
		if err != nil || !r.Allowed || r.Remaining != 4-i {
			t.Fatalf("call %d: %+v %v", i, r, err)
		}
	}
	r, err := l.Allow(t.Context(), "LKIACLOCKCLOCKCLOCKC", cfg)
	if err != nil || r.Allowed || r.RetryAfter <= 0 || r.RetryAfter > time.Second {
		t.Fatalf("sixth call: %+v %v", r, err)
	}
}

// flakyRedis is a TCP proxy to Redis that can refuse service, and counts
// the connections it is asked for.
type flakyRedis struct {
	ln    net.Listener
	down  atomic.Bool
	dials atomic.Int64
}

func newFlakyRedis(t *testing.T) *flakyRedis {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flakyRedis{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.dials.Add(1)
			if f.down.Load() {
				c.Close()
				continue
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", redisAddr())
				if err != nil {
					return
				}
				defer s.Close()
				go func() { _, _ = io.Copy(s, c); s.Close() }()
				_, _ = io.Copy(c, s)
			}()
		}
	}()
	return f
}

// logBuffer collects log lines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestUnavailable: with Redis unreachable, Allow fails fast with
// ErrUnavailable, asks Redis again only after RetryAfterError, logs the
// outage and the recovery once each, and works again afterwards.
func TestUnavailable(t *testing.T) {
	newLimiter(t, redislimit.Options{}) // skips or fails without Redis
	f := newFlakyRedis(t)
	f.down.Store(true)
	var logs logBuffer
	const retry = 300 * time.Millisecond
	l, err := redislimit.Open("redis://"+f.ln.Addr().String()+"/0", redislimit.Options{
		Prefix: testPrefix(t), RetryAfterError: retry, Log: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := latchkey.RateLimit{PerSecond: 100, Burst: 100}

	start := time.Now()
	for i := range 50 {
		_, err := l.Allow(t.Context(), "LKIADOWNDOWNDOWNDOWN", cfg)
		if !errors.Is(err, redislimit.ErrUnavailable) {
			t.Fatalf("call %d with Redis down: %v, want ErrUnavailable", i, err)
		}
	}
	if took := time.Since(start); took > retry {
		t.Errorf("50 calls with Redis down took %v", took)
	}
	if n := f.dials.Load(); n > 3 {
		t.Errorf("%d connections tried for 50 calls within RetryAfterError, want one attempt", n)
	}

	f.down.Store(false)
	time.Sleep(retry)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := l.Allow(t.Context(), "LKIADOWNDOWNDOWNDOWN", cfg)
		if err == nil {
			if !r.Allowed {
				t.Errorf("after recovery: %+v", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis back, Allow still fails: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := logs.String()
	if strings.Count(out, "unreachable") != 1 || strings.Count(out, "answers again") != 1 {
		t.Errorf("want one line for the outage and one for the recovery; logs:\n%s", out)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:6379", "redis://user:hunter2@127.0.0.1:6379/x", "redis://127.0.0.1:6379/0?nonsense=1"} {
		_, err := redislimit.Open(u, redislimit.Options{})
		if err == nil {
			t.Errorf("Open(%q) succeeded", u)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open error shows the password: %v", err)
		}
	}
}
