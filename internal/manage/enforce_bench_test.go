package manage_test

import (
	"path/filepath"
	"runtime"
	"testing"

	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/storetest"
	"github.com/latchkey/latchkey/internal/verify"
)

// BenchmarkEnforcePolicies measures a policy round (EnforcePolicies) over
// 20,000 application keys on SQLite, none of which is due anything: the
// round every server runs every few minutes. The figure to watch is the
// garbage a key costs (B/key, allocs/key): at ten million keys the round
// reads every key, and its garbage sets how often the collector runs.
//
//	go test -run '^$' -bench EnforcePolicies -benchmem -count 6 ./internal/manage
func BenchmarkEnforcePolicies(b *testing.B) {
	const n = 20_000
	store, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "latchkey.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	storetest.SeedKeys(b, store, n)
	svc := manage.New(store, verify.NewIndex(), nil)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		res, err := svc.EnforcePolicies(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if res.Notices != 0 {
			b.Fatalf("round sent %d notices; want none for new keys", res.Notices)
		}
	}
	runtime.ReadMemStats(&after)
	per := float64(b.N) * n
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/per, "B/key")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/per, "allocs/key")
}
