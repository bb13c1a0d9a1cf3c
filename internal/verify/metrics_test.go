package verify_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/metrics"
	"github.com/latchkey/latchkey/internal/verify"
)

// BenchmarkVerifyValidMetrics is BenchmarkVerifyValid with the Prometheus
// observer: the difference is the cost of the metrics on the hot path.
func BenchmarkVerifyValidMetrics(b *testing.B) {
	ix, secret := benchIndex(b, 1e3)
	v := verify.New(ix, verify.NewRecorder(&memSink{}, time.Hour, nil))
	v.Observer = metrics.New(ix)
	req := verify.Request{Secret: secret, IP: netip.MustParseAddr("192.0.2.1"), UserAgent: "bench"}
	b.ReportAllocs()
	for b.Loop() {
		if !v.Verify(&req).Valid() {
			b.Fatal("not valid")
		}
	}
}

func TestObserverAllocatesNothing(t *testing.T) {
	ix := verify.NewIndex()
	k := newKey(t, "acme", "billing")
	ix.Put(k.AccessKey)
	v := verify.New(ix, verify.NewRecorder(&memSink{}, time.Hour, nil))
	v.Observer = metrics.New(ix)
	req := verify.Request{Secret: k.secret, IP: netip.MustParseAddr("192.0.2.1")}
	bad := verify.Request{Secret: "lksk_nope"}
	if n := testing.AllocsPerRun(100, func() {
		if v.Verify(&req).Code != latchkey.CodeValid || v.Verify(&bad).Code != latchkey.CodeMalformed {
			t.Fatal("wrong decision")
		}
	}); n != 0 {
		t.Errorf("Verify with metrics allocates %v times per call", n)
	}
}

func TestIndexCounts(t *testing.T) {
	ix := verify.NewIndex()
	now := time.Now()
	a := newKey(t, "acme", "billing")
	b := newKey(t, "acme", "billing")
	b.AccessKey.Status = latchkey.StatusInactive
	c := newKey(t, "acme", "billing")
	past := now.Add(-time.Minute)
	c.AccessKey.ExpiresAt = &past
	p := newKey(t, "acme", "")
	p.AccessKey.Application, p.AccessKey.Principal = "", "admin"
	for _, k := range []*latchkey.AccessKey{a.AccessKey, b.AccessKey, c.AccessKey, p.AccessKey} {
		ix.Put(k)
	}
	got := map[string]int{}
	for _, n := range ix.Counts(now) {
		got[n.Kind+"/"+n.State] = n.Count
	}
	want := map[string]int{"application/active": 1, "application/inactive": 1, "application/expired": 1,
		"principal/active": 1, "principal/inactive": 0, "principal/expired": 0}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d (all %v)", k, got[k], v, got)
		}
	}
}
