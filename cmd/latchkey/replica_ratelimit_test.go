package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/redislimit"
)

// testRedisURL returns the Redis server for the shared rate limit tests,
// failing the test when CI is set and Redis is unreachable, and skipping
// it otherwise.
func testRedisURL(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("LATCHKEY_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	u := "redis://" + addr + "/0"
	l, err := redislimit.Open(u, redislimit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Ping(ctx); err != nil {
		unreachable(t, "Redis", err)
	}
	return u
}

// hammer sends calls with secret through every replica from several
// clients at once for d, and returns how many were allowed and how many
// refused as RATE_LIMITED.
func hammer(t *testing.T, c *cluster, secret string, d time.Duration) (allowed, limited int64) {
	t.Helper()
	stop := time.Now().Add(d)
	n := callAll(t, c, secret, 4, func(int) bool { return time.Now().Before(stop) }, "VALID", "RATE_LIMITED")
	return n["VALID"], n["RATE_LIMITED"]
}

// callAll sends calls with secret through every replica from clients
// clients per replica at once, each calling while more(calls made so
// far) holds, and counts the answers by code; a code not in codes fails
// the test.
func callAll(t *testing.T, c *cluster, secret string, clients int, more func(int) bool, codes ...string) map[string]int64 {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int64{}
	var wg sync.WaitGroup
	for i := range clients * len(c.replicas) {
		r := c.replicas[i%len(c.replicas)]
		wg.Go(func() {
			for n := 0; more(n); n++ {
				code, err := authorize(c.http, r, secret)
				switch {
				case err != nil:
					t.Errorf("%s: %v", r.endpoint, err)
					return
				case !slices.Contains(codes, code):
					t.Errorf("%s: %s", r.endpoint, code)
					return
				}
				mu.Lock()
				counts[code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return counts
}

// TestReplicasSharedRateLimit gives a key a limit of 30 calls a minute
// and calls it through three replicas as fast as they answer: with the
// limit shared through Redis the replicas allow 30 between them; each
// on its own (the default) allows 30, 90 in all.
func TestReplicasSharedRateLimit(t *testing.T) {
	redisURL := testRedisURL(t)
	const perMinute = 30
	const d = 1500 * time.Millisecond
	for _, tc := range []struct {
		name string
		args []string
		want int64 // calls allowed, besides the minute's refill
	}{
		// Timeouts well above the default 100 ms: on a loaded host a
		// call that times out falls back to the replica's own buckets
		// (--rate-limit-store-failure local), which is what
		// TestRateLimitStoreFailure tests, not this.
		{"shared through Redis", []string{"--rate-limit-store", redisURL + "?read_timeout=2s&write_timeout=2s&pool_timeout=2s"}, perMinute},
		{"per replica", nil, 3 * perMinute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, newPGDatabase(t), 3, tc.args...)
			id, secret := c.newKey(c.replicas[0], "limited", map[string]any{"rate_limit": map[string]any{"per_minute": perMinute}})
			// Waiting for the key on every replica takes a call each.
			start := time.Now()
			for _, r := range c.replicas {
				if _, err := waitCode(c.http, r, secret, "VALID", time.Now().Add(5*time.Second)); err != nil {
					t.Fatal(err)
				}
			}
			allowed, limited := hammer(t, c, secret, d)
			allowed += 3
			elapsed := time.Since(start)
			refill := int64(elapsed.Seconds()*perMinute/60*float64(len(c.replicas))) + 1
			t.Logf("%s: %d calls allowed and %d refused in %v through 3 replicas, for a limit of %d a minute on key %s",
				tc.name, allowed, limited, elapsed.Round(time.Millisecond), perMinute, id)
			if allowed < tc.want || allowed > tc.want+refill {
				t.Errorf("%d calls allowed, want %d (+ at most %d refilled)", allowed, tc.want, refill)
			}
		})
	}
}

// TestRateLimitStoreFailure starts a server whose Redis cannot be
// reached: the server starts anyway and rate-limited calls get the
// --rate-limit-store-failure policy.
func TestRateLimitStoreFailure(t *testing.T) {
	// A port with nothing listening on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "redis://" + ln.Addr().String() + "/0"
	ln.Close()
	tests := []struct {
		policy string
		want   []string // five calls on a key allowed 3 a minute
	}{
		{"local", []string{"VALID", "VALID", "VALID", "RATE_LIMITED", "RATE_LIMITED"}},
		{"open", []string{"VALID", "VALID", "VALID", "VALID", "VALID"}},
		{"closed", []string{"RATE_LIMITED", "RATE_LIMITED", "RATE_LIMITED", "RATE_LIMITED", "RATE_LIMITED"}},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			srv, c := adminClient(t, "--rate-limit-store", dead, "--rate-limit-store-failure", tt.policy, "--log-level", "info")
			c.do("POST", "/v1/applications", map[string]any{"name": "app"}, 201)
			k := c.do("POST", "/v1/applications/app/access-keys", map[string]any{
				"restrictions": map[string]any{"rate_limit": map[string]any{"per_minute": 3}}}, 201)
			free := c.do("POST", "/v1/applications/app/access-keys", map[string]any{}, 201)
			var got []string
			for range tt.want {
				got = append(got, c.do("POST", "/v1/verify", map[string]any{"key": k["secret_access_key"]}, 200)["code"].(string))
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("codes %v, want %v", got, tt.want)
			}
			if code := c.do("POST", "/v1/verify", map[string]any{"key": free["secret_access_key"]}, 200)["code"]; code != "VALID" {
				t.Errorf("key without a rate limit: %v", code)
			}
			if !strings.Contains(srv.stderr.String(), "shared rate limit store unreachable") {
				t.Errorf("no log line about the unreachable store:\n%s", srv.stderr)
			}
		})
	}
	t.Run("bad flags", func(t *testing.T) {
		for _, args := range [][]string{
			{"--rate-limit-store", "memcached://127.0.0.1"},
			{"--rate-limit-store-failure", "maybe"},
		} {
			out, err := runServeExpectingError(t, args...)
			if err == nil || !strings.Contains(out, args[0]) || strings.Contains(out, "panic") {
				t.Errorf("serve %v: %v\n%s", args, err, out)
			}
		}
	})
}

// runServeExpectingError runs serve with args, which must make it fail at
// once, and returns its output.
func runServeExpectingError(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"serve", "--addr", "127.0.0.1:0", "--database-url", "sqlite:" + t.TempDir() + "/lk.db"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_DATA_HOME=")
	out, err := cmd.CombinedOutput()
	if err == nil {
		return string(out), nil
	}
	return string(out), err
}
