package verify_test

import (
	"path/filepath"
	"testing"

	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/storetest"
	"github.com/latchkey/latchkey/internal/verify"
)

// BenchmarkIndexSync measures start-up's index load from SQLite: Index.Sync
// over 100,000 application keys (storetest.SeedKeys: two per application,
// random IDs as keyformat makes them), into an empty index each time.
// ns/key times 1,000,000 is about the start-up time bench/load measures end
// to end. cpu-ns/key is the CPU time of every goroutine (the store's
// decoding and the index's puts), the figure to compare on a shared
// machine.
func BenchmarkIndexSync(b *testing.B) {
	const n = 100_000
	ctx := b.Context()
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "latchkey.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.SeedKeys(b, s, n)
	cpu := cpuTime()
	for b.Loop() {
		ix := verify.NewIndex()
		got, err := ix.Sync(ctx, s)
		if err != nil || got != n {
			b.Fatalf("Sync = %d, %v; want %d keys", got, err, n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/key")
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N)/n, "cpu-ns/key")
}
