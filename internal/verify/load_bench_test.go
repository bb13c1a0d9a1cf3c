package verify_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
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
	for _, n := range []int{1_000_000, 4_000_000} {
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
