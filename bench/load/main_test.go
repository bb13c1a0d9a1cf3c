package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary act as a baseline server, as the load
// program does when run with -baseline.
func TestMain(m *testing.M) {
	if mode, upstream := baselineArgs(os.Args[1:]); mode != "" {
		baselineMain(mode, upstream)
		return
	}
	os.Exit(m.Run())
}

// TestRun runs the whole benchmark briefly on a few hundred keys, so that
// it keeps working: every server answers every call as it should, every
// phase reports, and the report has its tables and ratios.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds latchkey and starts five servers")
	}
	c := config{keys: 200, hot: 100, rounds: 1, duration: 200 * time.Millisecond, warmup: 100 * time.Millisecond,
		conns: 4, rates: []float64{200}, rateDur: 300 * time.Millisecond, mgmtDur: 500 * time.Millisecond, mgmtRate: 10,
		usageDur: 500 * time.Millisecond, settle: 100 * time.Millisecond}
	rep, err := run(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.pairs) != 3 {
		t.Fatalf("%d pairs measured, want 3", len(rep.pairs))
	}
	for _, p := range rep.pairs {
		if len(p.a) != 1 || len(p.b) != 1 || p.a[0].rps <= 0 || p.b[0].rps <= 0 {
			t.Errorf("%s: rounds %v %v", p.spec.name, p.a, p.b)
		}
		if r := p.rates[200]; r == nil || len(r[0]) != 1 || len(r[1]) != 1 || r[0][0].p99 <= 0 {
			t.Errorf("%s: fixed-rate results %v", p.spec.name, r)
		}
	}
	if len(rep.mgmt) != 3 || len(rep.mgmt[0].lat) == 0 {
		t.Errorf("management writes: %+v", rep.mgmt)
	}
	if s := rep.flood.storeOps; s["view"] != 0 || s["scan_access_keys"] != 0 || s["record_usage"] != 0 {
		t.Errorf("a flood of unknown keys reached the store: %v", s)
	}
	if rep.startup <= 0 || rep.memFull.heap <= 0 || rep.memEmpty.rss <= 0 || rep.memAfter.peak < rep.memAfter.rss {
		t.Errorf("start-up %v, memory %+v %+v %+v", rep.startup, rep.memEmpty, rep.memFull, rep.memAfter)
	}
	var b strings.Builder
	rep.print(&b, c)
	for _, want := range []string{"## Start-up and memory", "forward auth: A/B = ", "verify: A/B = ", "reverse proxy: A/B = ",
		"## Latency at fixed rates", "## Management writes", "| 1,000 verifications/s |", "## Flood of unknown keys"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestPercentile(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		p    float64
		want time.Duration
	}{{50, 5}, {99, 10}, {100, 10}, {10, 1}, {1, 1}}
	for _, tt := range tests {
		if got := percentile(d, tt.p); got != tt.want {
			t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if percentile(nil, 99) != 0 {
		t.Error("percentile of nothing is not 0")
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
