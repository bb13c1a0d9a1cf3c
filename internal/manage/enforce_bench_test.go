package manage_test

import (
	"database/sql"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/internal/postgres"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/storetest"
	"github.com/latchkey/latchkey/internal/verify"
)

// BenchmarkEnforcePolicies measures a policy round (EnforcePolicies) over
// 20,000 application keys on SQLite and on PostgreSQL, none of which is due anything: the
// round every server runs every few minutes. The figures to watch are the
// time and the garbage a key costs (B/key, allocs/key), which set how often
// the collector runs: read=candidates is the round as the server runs it,
// reading only the keys a policy can act on (none here); read=every is
// the round reading and evaluating every key, as it did before.
//
//	go test -run '^$' -bench EnforcePolicies -benchmem -count 6 ./internal/manage
func BenchmarkEnforcePolicies(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) (latchkey.Store, *sql.DB, error)
	}{
		{"store=sqlite", func(b *testing.B) (latchkey.Store, *sql.DB, error) {
			s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "latchkey.db"))
			if err != nil {
				return nil, nil, err
			}
			return s, s.Write, nil
		}},
		{"store=postgres", func(b *testing.B) (latchkey.Store, *sql.DB, error) {
			s, err := postgres.Open(b.Context(), pgtest.NewDatabase(b))
			if err != nil {
				return nil, nil, err
			}
			return s, s.Write, nil
		}},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			store, raw, err := st.open(b)
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			storetest.SeedKeysFast(b, store, raw, enforceBenchKeys, st.name == "store=postgres")
			for _, every := range []bool{false, true} {
				name := "read=candidates"
				if every {
					name = "read=every"
				}
				b.Run(name, func(b *testing.B) {
					defer func(v bool) { *manage.EnforceEveryKey = v }(*manage.EnforceEveryKey)
					*manage.EnforceEveryKey = every
					benchEnforce(b, store)
				})
			}
		})
	}
}

const enforceBenchKeys = 20_000

func benchEnforce(b *testing.B, store latchkey.Store) {
	const n = enforceBenchKeys
	svc := manage.New(store, verify.NewIndex(), nil)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu := storetest.CPUTime()
	for b.Loop() {
		res, err := svc.EnforcePolicies(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if res.Notices != 0 {
			b.Fatalf("round sent %d notices; want none for new keys", res.Notices)
		}
	}
	cpu = storetest.CPUTime() - cpu
	runtime.ReadMemStats(&after)
	per := float64(b.N) * n
	// This process's CPU: all of a round on SQLite; on PostgreSQL the
	// database server's share is not in it.
	b.ReportMetric(float64(cpu.Nanoseconds())/per, "cpu-ns/key")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/per, "B/key")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/per, "allocs/key")
}
