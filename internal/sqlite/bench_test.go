package sqlite_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/storetest"
	"github.com/latchkey/latchkey/internal/verify"
)

// BenchmarkRecordUsage measures one usage flush as the verifier sends it
// under load spread over many keys: verify.DefaultMaxBatch (2,000) keys,
// each with a last use and one per-minute count, in a table of 2,000 keys
// (all in SQLite's page cache) and of 200,000 (mostly not). Compare ns/op;
// divide by 2,000 for the cost per key.
func BenchmarkRecordUsage(b *testing.B) {
	for _, rows := range []int{2000, 200_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) { benchRecordUsage(b, rows) })
	}
}

func benchRecordUsage(b *testing.B, rows int) {
	const keys = 2000
	s := open(b, filepath.Join(b.TempDir(), "latchkey.db"))
	ctx := b.Context()
	ids := storetest.SeedKeys(b, s, rows)
	batch := make([]latchkey.UsageUpdate, keys)
	for b.Loop() {
		at := time.Now().UTC()
		for i := range batch {
			id := ids[rand.IntN(len(ids))]
			batch[i] = latchkey.UsageUpdate{
				AccessKeyID: id,
				LastUsed:    &latchkey.Use{At: at, IP: "192.0.2.7", UserAgent: "bench/1.0"},
				Uses:        3,
				Minutes:     []latchkey.UsageCount{{At: at.Truncate(time.Minute), Code: latchkey.CodeValid, Count: 3}},
			}
		}
		if err := s.RecordUsage(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListAllKeys pages through 100,000 keys created in the same
// microsecond (as a bulk import makes them), 1,000 at a time, as the
// policy round and the API's listings do. Each page must start where the
// last one ended, not scan the table again.
func BenchmarkListAllKeys(b *testing.B) {
	const rows = 100_000
	s := open(b, filepath.Join(b.TempDir(), "latchkey.db"))
	ctx := b.Context()
	storetest.SeedKeys(b, s, rows)
	for b.Loop() {
		n := 0
		for token := ""; ; {
			var keys []*latchkey.AccessKey
			err := s.View(ctx, func(tx latchkey.Tx) (err error) {
				keys, token, err = tx.ListAccessKeys(ctx, latchkey.AccessKeyFilter{After: token, Limit: 1000})
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			n += len(keys)
			if token == "" {
				break
			}
		}
		if n != rows {
			b.Fatalf("listed %d keys, want %d", n, rows)
		}
	}
}

// BenchmarkAuditWrite is the audit chain's cost on a management write
// (storetest.BenchAuditWrite); docs/benchmarks.md has the figures.
func BenchmarkAuditWrite(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "latchkey.db"))
	storetest.BenchAuditWrite(b, s, s.Write, false, "")
}

// usageFlushInterval is serve's --usage-flush-interval default, and
// verify.NewRecorder's.
const usageFlushInterval = time.Second

// BenchmarkRecordUsageAll flushes the usage of every key of the table
// (10,000, 100,000 and 1,000,000 keys; one to three minute buckets each),
// in the recorder's batches of 250, and reports the cost per key update
// and the share of the machine's CPU the flush takes when every key is in
// use (storetest.BenchRecordUsage: verify.DefaultMaxBatch keys each
// usageFlushInterval). The million-key case takes minutes: run it with
// -benchtime=1x.
func BenchmarkRecordUsageAll(b *testing.B) {
	for _, n := range storetest.BenchSizes(10_000, 100_000, 1_000_000) {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			s := open(b, filepath.Join(b.TempDir(), "latchkey.db"))
			ids := storetest.SeedKeysFast(b, s, s.Write, n, false)
			storetest.BenchRecordUsage(b, s, ids, verify.DefaultMaxBatch, usageFlushInterval)
		})
	}
}

// BenchmarkRecordUsageSparse is BenchmarkRecordUsageAll with a million
// keys stored of which 10,000, spread over the whole table, are in use:
// the forward-auth phase of bench/load. Their rows of access_keys (and
// its ID index) are spread over the million; their usage rows, which
// only keys used have, are next to each other in key_usage. Run it with
// -benchtime=2x or more: seeding takes seconds.
func BenchmarkRecordUsageSparse(b *testing.B) {
	const stored, inUse = 1_000_000, 10_000
	s := open(b, filepath.Join(b.TempDir(), "latchkey.db"))
	sizes := storetest.BenchSizes(inUse, stored)                             // with -short, only the keys in use
	ids := storetest.SeedKeysFast(b, s, s.Write, sizes[len(sizes)-1], false) // shuffled
	inUseIDs := ids[:inUse]
	// The keys were used before: each has its usage row, as under a
	// steady load, and the flushes measured update them.
	for _, batch := range storetest.UsageBatches(slices.Sorted(slices.Values(inUseIDs)), time.Now().Add(-time.Minute), storetest.FlushChunk) {
		if err := s.RecordUsage(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	storetest.BenchRecordUsage(b, s, inUseIDs, verify.DefaultMaxBatch, usageFlushInterval)
}
