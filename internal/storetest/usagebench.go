package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

// FlushChunk is the number of keys the verifier's usage recorder hands
// RecordUsage at a time (verify.DefaultTxRows); the benchmark sends
// batches of that size.
const FlushChunk = 250

// BenchSizes returns the key counts a benchmark runs at: all of sizes,
// or with -short only the first (the smallest). CI runs every benchmark
// once with -short so that none rots; the million-key sizes, whose setup
// takes minutes, run without -short, as the commands of
// docs/benchmarks.md run them.
func BenchSizes(sizes ...int) []int {
	if testing.Short() {
		return sizes[:1]
	}
	return sizes
}

// SeedKeysFast writes n Active keys of one application straight in SQL,
// much faster than SeedKeys (a million keys in seconds), for benchmarks
// that only need the rows. numbered selects PostgreSQL's SQL. Digests are
// random bytes, of no secret anyone holds. It returns the IDs.
func SeedKeysFast(tb testing.TB, s latchkey.Store, raw *sql.DB, n int, numbered bool) []string {
	tb.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	if err := s.Update(ctx, func(tx latchkey.Tx) error {
		if err := tx.CreateAccount(ctx, &latchkey.Account{Name: "acme", CreatedAt: now}); err != nil {
			return err
		}
		return tx.CreateApplication(ctx, &latchkey.Application{Account: "acme", Name: "bench", CreatedAt: now})
	}); err != nil {
		tb.Fatal(err)
	}
	us := now.UnixMicro()
	var err error
	if numbered {
		_, err = raw.ExecContext(ctx, `INSERT INTO access_keys (id, account, application, secret_digest, status, created_at, updated_at)
			SELECT 'LKIA' || upper(substr(md5(random()::text || g::text), 1, 16)), 'acme', 'bench',
				decode(md5(g::text) || md5('x' || g::text), 'hex'), 'Active', $1, $1
			FROM generate_series(1, $2) g`, us, n)
	} else {
		_, err = raw.ExecContext(ctx, `INSERT INTO access_keys (id, account, application, secret_digest, status, created_at, updated_at)
			WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < ?)
			SELECT 'LKIA' || hex(randomblob(8)), 'acme', 'bench', randomblob(32), 'Active', ?, ? FROM g`, n, us, us)
	}
	if err != nil {
		tb.Fatalf("seeding %d keys: %v", n, err)
	}
	rows, err := raw.QueryContext(ctx, `SELECT id FROM access_keys`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	ids := make([]string, 0, n)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			tb.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil || len(ids) != n {
		tb.Fatalf("seeded %d keys of %d: %v", len(ids), n, err)
	}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	return ids
}

// UsageBatches is one flush interval's usage as the verifier sends it when
// every key in ids was used: a last use (one of a few addresses and user
// agents) and one to three minute buckets per key, a refusal on every
// twentieth, cut into batches of chunk keys in the order the keys were
// first used (random).
func UsageBatches(ids []string, at time.Time, chunk int) [][]latchkey.UsageUpdate {
	uas := []string{"curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36", "python-requests/2.32.3", "Go-http-client/1.1"}
	all := make([]latchkey.UsageUpdate, len(ids))
	at = at.UTC().Truncate(time.Microsecond)
	for i, id := range ids {
		u := latchkey.UsageUpdate{AccessKeyID: id, Uses: int64(1 + i%5),
			LastUsed: &latchkey.Use{At: at.Add(time.Duration(i%1000) * time.Microsecond), IP: fmt.Sprintf("198.51.100.%d", i%250), UserAgent: uas[i%len(uas)]}}
		for m := range 1 + i%3 {
			u.Minutes = append(u.Minutes, latchkey.UsageCount{At: at.Truncate(time.Minute).Add(time.Duration(m-2) * time.Minute), Code: latchkey.CodeValid, Count: int64(1 + m)})
		}
		if i%20 == 0 {
			u.Rejections = 1
			u.LastRejected = &latchkey.Rejection{At: at, IP: "203.0.113.9", UserAgent: uas[0], Reason: latchkey.CodeIPNotAllowed}
			u.Minutes = append(u.Minutes, latchkey.UsageCount{At: at.Truncate(time.Minute), Code: latchkey.CodeIPNotAllowed, Count: 1})
		}
		all[i] = u
	}
	var out [][]latchkey.UsageUpdate
	for start := 0; start < len(all); start += chunk {
		out = append(out, all[start:min(start+chunk, len(all))])
	}
	return out
}

// BenchRecordUsage flushes the usage of every key in ids, in batches of
// FlushChunk, once per iteration, and reports the cost per key update:
// wall time (ns/key), this process's CPU time (cpu-ns/key, from
// getrusage: the database server's own CPU, for PostgreSQL, is not in
// it) and allocations (allocs/key, B/key). flush-%cpu is what the flush
// costs of the machine's CPU (all cores) when every key is in use: a
// flush writes min(len(ids), perInterval) keys each interval (the
// recorder's MaxBatch and flush interval). The keys go in ID order, as
// the recorder sends them when more keys are pending than a flush takes
// (a sweep in ID order: verify.Recorder.Flush).
func BenchRecordUsage(b *testing.B, s latchkey.Store, ids []string, perInterval int, interval time.Duration) {
	ids = slices.Sorted(slices.Values(ids))
	ctx := b.Context()
	at := time.Now()
	var ms0, ms1 runtime.MemStats
	var cpu time.Duration
	var wall time.Duration
	n := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		at = at.Add(time.Second)
		batches := UsageBatches(ids, at, FlushChunk)
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		c0 := CPUTime()
		t0 := time.Now()
		b.StartTimer()
		for _, batch := range batches {
			if err := s.RecordUsage(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		wall += time.Since(t0)
		cpu += CPUTime() - c0
		runtime.ReadMemStats(&ms1)
		b.ReportMetric(0, "ns/op")
		n += len(ids)
		b.StartTimer()
	}
	b.ReportMetric(float64(wall.Nanoseconds())/float64(n), "ns/key")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/key")
	perSecond := float64(min(len(ids), perInterval)) / interval.Seconds()
	b.ReportMetric(100*perSecond*float64(cpu.Nanoseconds())/float64(n)/1e9/float64(runtime.NumCPU()), "flush-%cpu")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(len(ids)), "allocs/key")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(len(ids)), "B/key")
}
