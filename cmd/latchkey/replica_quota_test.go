package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestReplicasQuotaExactWithRedis runs two latchkey serve processes on one
// PostgreSQL database and one Redis (--rate-limit-store), leasing 20 units
// at a time, and calls one key with a quota of 300 through both from 8
// clients each, 640 calls in all: exactly 300 are granted.
func TestReplicasQuotaExactWithRedis(t *testing.T) {
	const n = 300
	redisURL := testRedisURL(t)
	// Exactness is the claim here, not Redis's latency: with the default
	// 100 ms I/O timeout, a loaded CI machine (and -race) can time a call
	// out after its replica leased, and that lease is lost by design
	// (fail closed, never more than the quota): fewer than n granted.
	slow := redisURL + "?read_timeout=5s&write_timeout=5s&pool_timeout=5s"
	c := startCluster(t, newPGDatabase(t), 2, "--rate-limit-store", slow, "--quota-lease", "20")
	c.must(c.replicas[0], "POST", "/v1/applications", map[string]any{"name": "metered"}, 201)
	k := c.must(c.replicas[0], "POST", "/v1/applications/metered/access-keys", map[string]any{"quota": map[string]any{"remaining": n}}, 201)
	id, secret := k["access_key_id"].(string), k["secret_access_key"].(string)
	t.Cleanup(func() {
		o, _ := redis.ParseURL(redisURL)
		rc := redis.NewClient(o)
		defer rc.Close()
		keys, _ := rc.Keys(context.Background(), "latchkey:ratelimit:quota:"+id+":*").Result()
		if len(keys) > 0 {
			rc.Del(context.Background(), keys...)
		}
	})
	// Waiting for the key on every replica takes a unit each.
	var granted atomic.Int64
	for _, r := range c.replicas {
		if _, err := waitCode(c.http, r, secret, "VALID", time.Now().Add(10*time.Second)); err != nil {
			t.Fatal(err)
		}
		granted.Add(1)
	}
	got := callAll(t, c, secret, 8, func(calls int) bool { return calls < 40 }, "VALID", "QUOTA_EXCEEDED")
	granted.Add(got["VALID"])
	refused := got["QUOTA_EXCEEDED"]
	t.Logf("two serve processes with Redis: %d granted, %d refused, quota %d", granted.Load(), refused, n)
	if granted.Load() != n {
		t.Errorf("%d calls granted through two replicas from a quota of %d, want exactly %d", granted.Load(), n, n)
	}
	q, _ := c.must(c.replicas[1], "GET", "/v1/access-keys/"+id+"/quota", nil, 200)["quota"].(map[string]any)
	if rem, ok := q["remaining"].(float64); !ok || rem != 0 {
		t.Errorf("the ledger has %v left, want 0: %v", q["remaining"], q)
	}
}
