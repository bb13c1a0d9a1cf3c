package manage_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/redislimit"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/redis/go-redis/v9"
)

// redisURL is the Redis server the quota tests share.
func redisURL() string {
	if a := os.Getenv("LATCHKEY_TEST_REDIS_ADDR"); a != "" {
		return "redis://" + a + "/0"
	}
	return "redis://127.0.0.1:6379/0"
}

// sharedQuotas opens one replica's connection to the test Redis, with
// keys under prefix (the replicas of a test share one), deleted at the
// end. It fails when Redis is unreachable and CI is set, and skips
// otherwise. hook, when set, sees every command.
func sharedQuotas(t *testing.T, prefix string, hook redis.Hook) *redislimit.Limiter {
	t.Helper()
	l, err := redislimit.Open(redisURL(), redislimit.Options{Prefix: prefix, Hook: hook})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Ping(ctx); err != nil {
		l.Close()
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis is unreachable at %s (set LATCHKEY_TEST_REDIS_ADDR): %v", redisURL(), err)
		}
		t.Skipf("Redis is unreachable at %s: %v", redisURL(), err)
	}
	t.Cleanup(func() {
		o, _ := redis.ParseURL(redisURL())
		c := redis.NewClient(o)
		defer c.Close()
		ctx := context.Background()
		keys, _ := c.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
		l.Close()
	})
	return l
}

func redisPrefix() string {
	var b [6]byte
	rand.Read(b[:])
	return "latchkey-test:quota:" + hex.EncodeToString(b[:]) + ":"
}

// withRedis makes r decide quotas in Redis, as serve does with
// --rate-limit-store.
func (r *replica) withRedis(t *testing.T, prefix string, hook redis.Hook) *replica {
	r.v.SharedQuotas = sharedQuotas(t, prefix, hook)
	return r
}

// Replicas with Redis, each with its own connection pool to PostgreSQL and
// to Redis, draw from one quota from 16 goroutines each: exactly N are
// granted, not a unit stranded, and the ledger is at 0.
func TestQuotaExactAcrossRedisReplicas(t *testing.T) {
	const n, lease, replicas = 2000, 50, 3
	stores, clk, svc, op := meteredOnPostgres(t)
	for _, cost := range []int64{1, 3} {
		k, err := svc.CreateAccessKey(t.Context(), op, latchkey.DefaultAccount, "metered", latchkey.NewAccessKey{Quota: &latchkey.Quota{Remaining: n}})
		if err != nil {
			t.Fatal(err)
		}
		prefix := redisPrefix()
		var rs []*replica
		for i := range replicas {
			rs = append(rs, newReplica(t, stores[i%len(stores)], clk, lease).withRedis(t, prefix, nil))
		}
		granted := drawCost(t, k.Secret, cost, 60, rs...)
		if got, want := granted*cost, n/cost*cost; got != want {
			t.Errorf("cost %d: %d units granted across %d replicas from a quota of %d, want exactly %d", cost, got, replicas, n, want)
		}
		v, err := svc.GetQuota(t.Context(), op, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if v.Quota.Remaining != 0 {
			t.Errorf("cost %d: ledger has %d left", cost, v.Quota.Remaining)
		}
		t.Logf("Redis, %d replicas leasing %d, cost %d: %d units granted of %d", replicas, lease, cost, granted*cost, n)
	}
}

// With Redis, the refill takes effect at the boundary for every replica,
// a top-up (a new generation) reseeds Redis from the ledger, and an
// unreachable Redis refuses: fail closed.
func TestQuotaRedisRefillTopUpAndOutage(t *testing.T) {
	e := newEnv(t)
	e.app(t, latchkey.DefaultAccount, "metered")
	k := e.quotaKey(t, latchkey.Quota{Remaining: 3, Refill: &latchkey.Refill{Amount: 5, Interval: "1h"}})
	prefix := redisPrefix()
	a, b := e.replica(t, 100).withRedis(t, prefix, nil), e.replica(t, 100).withRedis(t, prefix, nil)
	call := func(r *replica, cost int64) verify.Result {
		return r.v.Verify(&verify.Request{Secret: k.Secret, Cost: cost})
	}
	for i, r := range []*replica{a, b, a} {
		if res := call(r, 0); !res.Valid() {
			t.Fatalf("call %d: %s", i, res.Code)
		}
	}
	for _, r := range []*replica{a, b} {
		res := call(r, 0)
		if res.Code != latchkey.CodeQuotaExceeded {
			t.Fatalf("fourth call: %s", res.Code)
		}
		if want := t0.Add(time.Hour); !res.Quota.Reset.Equal(want) || res.Quota.Remaining != 0 {
			t.Errorf("refused with %+v, want reset %s and 0 left", res.Quota, want)
		}
	}
	e.clock.Advance(time.Hour - time.Nanosecond)
	if res := call(b, 0); res.Code != latchkey.CodeQuotaExceeded {
		t.Fatalf("a nanosecond before the boundary: %s", res.Code)
	}
	e.clock.Advance(time.Nanosecond)
	if res := call(b, 4); !res.Valid() || res.Quota.Remaining != 1 {
		t.Fatalf("at the boundary, cost 4: %s, %+v", res.Code, res.Quota)
	}
	if res := call(a, 2); res.Code != latchkey.CodeQuotaExceeded {
		t.Fatalf("cost 2 with 1 left: %s", res.Code)
	}
	if res := call(a, verify.FreeCost); !res.Valid() {
		t.Fatalf("free call with 1 left: %s", res.Code)
	}
	if res := call(a, 1); !res.Valid() {
		t.Fatalf("last unit: %s", res.Code)
	}
	if res := call(b, verify.FreeCost); res.Code != latchkey.CodeQuotaExceeded {
		t.Fatalf("free call on a spent quota: %s", res.Code)
	}

	// A top-up through a's service changes the generation: b learns it
	// from the database, and both draw exactly the 7 from Redis, reseeded
	// from the ledger.
	if _, err := a.svc.TopUpQuota(t.Context(), e.admin, k.ID, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := b.v.Index.Sync(t.Context(), e.store); err != nil {
		t.Fatal(err)
	}
	if granted := draw(t, k.Secret, 5, a, b); granted != 7 {
		t.Errorf("%d granted after a top-up of 7", granted)
	}

	// Redis unreachable: refused, and the ledger is not touched.
	down, err := redislimit.Open("redis://127.0.0.1:1/0", redislimit.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	c := e.replica(t, 100)
	c.v.SharedQuotas = down
	e.clock.Advance(time.Hour) // a fresh period of 5 in the ledger
	if res := call(c, 1); res.Code != latchkey.CodeQuotaExceeded {
		t.Fatalf("with Redis down: %s, want QUOTA_EXCEEDED (fail closed)", res.Code)
	}
	if q := e.ledger(t, k.ID); q.Remaining != 5 {
		t.Errorf("with Redis down the ledger went to %d, want 5", q.Remaining)
	}
}

// With Redis the read is exact from any replica: the units leased into
// Redis are every replica's, and they are shown as leased.
func TestQuotaReadExactWithRedis(t *testing.T) {
	const n, lease = 1000, 50
	stores, clk, svc, op := meteredOnPostgres(t)
	k, err := svc.CreateAccessKey(t.Context(), op, latchkey.DefaultAccount, "metered", latchkey.NewAccessKey{Quota: &latchkey.Quota{Remaining: n}})
	if err != nil {
		t.Fatal(err)
	}
	prefix := redisPrefix()
	var rs []*replica
	for i := range 2 {
		r := newReplica(t, stores[i%len(stores)], clk, lease).withRedis(t, prefix, nil)
		r.svc.QuotaHolds = r.v // as serve wires it
		rs = append(rs, r)
	}
	for i, r := range rs {
		for range 13 * (i + 1) {
			if res := r.v.Verify(&verify.Request{Secret: k.Secret}); res.Code != latchkey.CodeValid {
				t.Fatal(res.Code)
			}
		}
	}
	for i, r := range rs {
		v, err := r.svc.GetQuota(t.Context(), op, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if v.Quota.Remaining != n-39 || v.Quota.Leased <= 0 {
			t.Errorf("replica %d reads %d left, %d leased; want exactly %d left, some leased", i, v.Quota.Remaining, v.Quota.Leased, n-39)
		}
	}
	// Without Redis's figure (a process that does not ask it) the read is
	// the ledger's: what Redis holds counts as spent.
	v, err := svc.GetQuota(t.Context(), op, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Quota.Remaining >= n-39 || v.Quota.Leased != 0 {
		t.Errorf("the ledger alone says %d left, %d leased", v.Quota.Remaining, v.Quota.Leased)
	}
}

// Replicas with Redis draw from one identity quota through the keys of
// two applications: exactly N are granted. With a key quota beside it,
// both pay in one script: the identity's refusals leave the keys' quotas
// untouched, and the keys' refusals leave the identity's.
func TestIdentityQuotaExactAcrossRedisReplicas(t *testing.T) {
	const n, lease, replicas = 900, 40, 3
	for _, tc := range []struct {
		name     string
		keyQuota *latchkey.Quota
		want     int64
	}{
		{"identity quota only", nil, n},
		{"identity and key quotas, the identity's is smaller", &latchkey.Quota{Remaining: 10 * n}, n},
		{"identity and key quotas, the keys' are smaller", &latchkey.Quota{Remaining: 200}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stores, clk, svc, op := meteredOnPostgres(t)
			id, keys := meteredIdentityWith(t, svc, op, &latchkey.Quota{Remaining: n}, tc.keyQuota)
			prefix := redisPrefix()
			var rs []*replica
			for i := range replicas {
				rs = append(rs, newReplica(t, stores[i%len(stores)], clk, lease).withRedis(t, prefix, nil))
			}
			if got := drawKeys(t, keys, 60, rs...); got != tc.want {
				t.Fatalf("%d granted across %d replicas with Redis, want exactly %d", got, replicas, tc.want)
			}
			// What the ledgers count spent beyond the grants is held in
			// Redis, unspent: at most one lease per quota and replica.
			v, err := svc.GetIdentityQuota(t.Context(), op, latchkey.DefaultAccount, id.ID)
			if err != nil {
				t.Fatal(err)
			}
			held := n - v.Quota.Remaining - tc.want
			t.Logf("%s: granted %d; identity ledger has %d left, %d leased into Redis and not spent", tc.name, tc.want, v.Quota.Remaining, held)
			if held < 0 || held > replicas*lease {
				t.Errorf("identity: %d held in Redis, bound %d", held, replicas*lease)
			}
		})
	}
}
