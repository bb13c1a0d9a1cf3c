package verify_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/redislimit"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/redis/go-redis/v9"
)

// commandCounter is a go-redis hook that counts the commands sent.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// BenchmarkVerifyQuotaRedis verifies 100 keys with a quota that never runs
// out, decided in the test Redis (127.0.0.1:6379 or
// LATCHKEY_TEST_REDIS_ADDR) as serve does with --rate-limit-store, the
// ledger on SQLite leasing 1,000 units at a time into Redis. It reports
// the Redis commands sent per call (redis-cmds/op): one script, plus one
// more and a write transaction every lease.
//
//	go test -run '^$' -bench VerifyQuotaRedis -benchmem -count 3 ./internal/verify
func BenchmarkVerifyQuotaRedis(b *testing.B) {
	addr := os.Getenv("LATCHKEY_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	var p [6]byte
	rand.Read(p[:])
	prefix := "latchkey-bench:quota:" + hex.EncodeToString(p[:]) + ":"
	var count commandCounter
	l, err := redislimit.Open("redis://"+addr+"/0", redislimit.Options{Prefix: prefix, Hook: &count})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Ping(ctx); err != nil {
		if os.Getenv("CI") != "" {
			b.Fatalf("Redis is unreachable at %s: %v", addr, err)
		}
		b.Skipf("Redis is unreachable at %s: %v", addr, err)
	}
	svc := benchService(b)
	sys := latchkey.System()
	var reqs []verify.Request
	for range 100 {
		k, err := svc.CreateAccessKey(b.Context(), sys, latchkey.DefaultAccount, "bench", latchkey.NewAccessKey{Quota: &latchkey.Quota{Remaining: 1 << 40}})
		if err != nil {
			b.Fatal(err)
		}
		reqs = append(reqs, verify.Request{Secret: k.Secret})
	}
	v := served(svc.Index)
	v.Quotas, v.SharedQuotas = svc, l
	start := count.n.Load()
	verifyLoop(b, v, reqs)
	b.ReportMetric(float64(count.n.Load()-start)/float64(b.N), "redis-cmds/op")
	o, _ := redis.ParseURL("redis://" + addr + "/0")
	c := redis.NewClient(o)
	defer c.Close()
	keys, _ := c.Keys(context.Background(), prefix+"*").Result()
	if len(keys) > 0 {
		c.Del(context.Background(), keys...)
	}
}
