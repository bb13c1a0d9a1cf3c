package verify_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/storetest"
	"github.com/latchkey/latchkey/internal/verify"
)

// estimatedGenScan is genScan with the store's estimate of its keys.
type estimatedGenScan struct{ genScan }

func (s estimatedGenScan) KeyCountEstimate(context.Context) (int, error) { return s.n, nil }

// BenchmarkSyncLoad is a start-up's load of N keys into an empty index,
// without and with the store's estimate of their number (toward which
// the index's tables grow four times at a time instead of two). It
// reports the CPU time a key takes, the goroutine that makes the keys and
// the one that puts them together, over every load of the run.
func BenchmarkSyncLoad(b *testing.B) {
	for _, n := range storetest.BenchSizes(1_000_000, 4_000_000) {
		for _, est := range []bool{false, true} {
			b.Run(fmt.Sprintf("keys=%d/estimate=%v", n, est), func(b *testing.B) {
				var store latchkey.Store = genScan{n: n}
				if est {
					store = estimatedGenScan{genScan{n: n}}
				}
				var cpu time.Duration
				for b.Loop() {
					b.StopTimer()
					runtime.GC()
					ix := verify.NewIndex()
					start := cpuTime()
					b.StartTimer()
					if got, err := ix.Sync(b.Context(), store); err != nil || got != n {
						b.Fatalf("Sync = %d, %v", got, err)
					}
					b.StopTimer()
					cpu += cpuTime() - start
					runtime.KeepAlive(ix)
					b.StartTimer()
				}
				b.ReportMetric(float64(cpu)/float64(b.N)/float64(n), "cpu-ns/key")
			})
		}
	}
}

// BenchmarkSyncApply is the part of BenchmarkSyncLoad that puts the keys
// into the index: the goroutine of Sync's that does it runs on one core,
// and at millions of keys the load waits for it. The keys are made before
// the timer starts and stay alive throughout (about 2 GiB), so they are
// long out of the cache when they are put, where a load puts each batch
// just after the store decoded it. It reports the wall time a key takes.
func BenchmarkSyncApply(b *testing.B) {
	const n = 4_000_000
	keys := make([]*latchkey.AccessKey, 0, n)
	if err := (genScan{n: n}).ScanKeyIndex(b.Context(), func(k *latchkey.AccessKey) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	var took time.Duration
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		ix := verify.NewIndex()
		start := time.Now()
		b.StartTimer()
		verify.ApplyLoad(ix, keys)
		b.StopTimer()
		took += time.Since(start)
		if got := ix.Len(); got != n {
			b.Fatalf("index holds %d keys, want %d", got, n)
		}
		runtime.KeepAlive(ix)
		b.StartTimer()
	}
	b.ReportMetric(float64(took)/float64(b.N)/n, "ns/key")
}
