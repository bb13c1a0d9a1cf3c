package verify_test

import (
	"path/filepath"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/verify"
)

// BenchmarkVerifyQuota compares, in one run, 100 keys without a quota,
// with a rate limit that never refuses, and with a quota that never runs
// out (leasing 100, 1,000 or 10,000 units at a time), all made through
// manage.Service on a real SQLite store and verified
// as serve wires the verifier. The quota's ledger is that store: every
// QuotaLease (default 1,000) calls of a key, one write transaction leases
// more, inside the measured loop.
//
//	go test -run '^$' -bench VerifyQuota -benchmem -count 6 ./internal/verify
func BenchmarkVerifyQuota(b *testing.B) {
	svc := benchService(b)
	sys := latchkey.System()
	quota := latchkey.NewAccessKey{Quota: &latchkey.Quota{Remaining: 1 << 40}}
	for _, tc := range []struct {
		name  string
		in    latchkey.NewAccessKey
		lease int64
	}{
		{"none", latchkey.NewAccessKey{}, 0},
		{"ratelimit", latchkey.NewAccessKey{Restrictions: &latchkey.Restrictions{RateLimit: &latchkey.RateLimit{PerSecond: 1e6, Burst: 1e6}}}, 0},
		{"quota/lease=100", quota, 100},
		{"quota/lease=1000", quota, 1000},
		{"quota/lease=10000", quota, 10000},
	} {
		var reqs []verify.Request
		for range 100 {
			k, err := svc.CreateAccessKey(b.Context(), sys, latchkey.DefaultAccount, "bench", tc.in)
			if err != nil {
				b.Fatal(err)
			}
			reqs = append(reqs, verify.Request{Secret: k.Secret})
		}
		b.Run(tc.name, func(b *testing.B) {
			v := served(svc.Index)
			v.Quotas, v.QuotaLease = svc, tc.lease
			verifyLoop(b, v, reqs)
		})
	}
}

// benchService returns a manage.Service on a new SQLite store with an
// application "bench" that may have 1,000 keys; its index is svc.Index.
func benchService(b *testing.B) *manage.Service {
	b.Helper()
	store, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "latchkey.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	svc := manage.New(store, verify.NewIndex(), nil)
	if _, err := svc.Bootstrap(b.Context()); err != nil {
		b.Fatal(err)
	}
	sys := latchkey.System()
	if _, err := svc.CreateApplication(b.Context(), sys, latchkey.DefaultAccount, "bench", "", nil); err != nil {
		b.Fatal(err)
	}
	svc.MaxKeysPerApplication = 1000
	return svc
}

// verifyLoop verifies reqs in turn with v in b's loop; every call must be
// valid. It reports allocations and cpu-ns/op.
func verifyLoop(b *testing.B, v *verify.Verifier, reqs []verify.Request) {
	b.Helper()
	b.ReportAllocs()
	i := 0
	cpu := startCPU(b)
	for b.Loop() {
		if res := v.Verify(&reqs[i]); !res.Valid() {
			b.Fatal(res.Code)
		}
		if i++; i == len(reqs) {
			i = 0
		}
	}
	cpu.stop()
}
