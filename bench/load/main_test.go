package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary act as a baseline server, as the load
// program does when run with -baseline.
func TestMain(m *testing.M) {
	if mode, upstream, idle := baselineArgs(os.Args[1:]); mode != "" {
		baselineMain(mode, upstream, idle)
		return
	}
	os.Exit(m.Run())
}

// TestRun runs the whole benchmark briefly on a few hundred keys, so that
// it keeps working: every server answers every call as it should, every
// phase reports, and the report has its tables and ratios.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds latchkey and starts it, its baselines and a second latchkey")
	}
	c := config{keys: 200, hot: 100, rounds: 1, duration: 200 * time.Millisecond, warmup: 100 * time.Millisecond,
		conns: 4, rates: []float64{200}, rateDur: 300 * time.Millisecond, mgmtDur: 500 * time.Millisecond, mgmtRate: 10,
		usageDur: 500 * time.Millisecond, settle: 100 * time.Millisecond, invalidRate: 200, floodRate: 200, wrk: wrkDefault()}
	// -before with the same build: the extra pairs run and report.
	bin, err := buildLatchkey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c.binary, c.before = bin, bin
	if c.wrk == "" && os.Getenv("CI") != "" {
		t.Fatal("wrk is not installed (.ci/run installs Debian's wrk): the closed-loop runs would not exercise it")
	}
	rep, err := run(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.pairs) != 9 {
		t.Fatalf("%d pairs measured, want 9 (three, forward auth on the API listener, two for forward auth's answer, and three against -before: forward auth on each listener and the proxy)", len(rep.pairs))
	}
	// The target's pair is against the bare handler answering latchkey's
	// status, as the report says.
	if b := rep.pairs[0].spec.b; rep.pairs[0].spec.name != "forward auth" || b.name != "bare 200 handler" || b.want != 200 {
		t.Errorf("the forward-auth target's pair %q is against %q (status %d), want the bare 200 handler", rep.pairs[0].spec.name, b.name, b.want)
	}
	for _, p := range rep.pairs {
		if len(p.a) != 1 || len(p.b) != 1 || p.a[0].rps <= 0 || p.b[0].rps <= 0 {
			t.Errorf("%s: rounds %v %v", p.spec.name, p.a, p.b)
		}
		r := p.rates[200]
		if p.spec.closedOnly {
			if r != nil {
				t.Errorf("%s: measured at fixed rates too, want the highest rate only", p.spec.name)
			}
			continue
		}
		if r == nil || len(r[0]) != 1 || len(r[1]) != 1 || r[0][0].p99 <= 0 {
			t.Errorf("%s: fixed-rate results %v", p.spec.name, r)
		}
	}
	if len(rep.mgmt) != 3 || len(rep.mgmt[0].lat) == 0 {
		t.Errorf("management writes: %+v", rep.mgmt)
	}
	if s := rep.flood.storeOps; s["view"] != 0 || s["scan_access_keys"] != 0 || s["record_usage"] != 0 {
		t.Errorf("a flood of unknown keys reached the store: %v", s)
	}
	if inv := rep.invalid; inv == nil || len(inv.kinds) != 3 || len(inv.rounds) != 1 {
		t.Errorf("invalid keys: %+v", inv)
	} else {
		if err := inv.checkFloods(); err != nil {
			t.Error(err)
		}
		for i, k := range inv.kinds {
			if k.rps <= 0 || k.cpuPer <= 0 || k.kind != i || k.round != 0 {
				t.Errorf("invalid keys, %s: %+v, want kind %d of round 0", k.name, k, i)
			}
		}
		ir := inv.rounds[0]
		if ir.alone.fixed.p99 <= 0 || ir.flood.fixed.p99 <= 0 || ir.ctrl.fixed.p99 <= 0 || ir.alone.rps <= 0 || ir.flood.rps <= 0 || ir.ctrl.rps <= 0 {
			t.Errorf("invalid keys, valid alone, flooded and beside the control: %+v", ir)
		}
		// Both floods answered, and only with 401 (the guard is off);
		// the control only with 200.
		if n := ir.flood.answers[401]; n == 0 || n != sumCounts(ir.flood.answers) {
			t.Errorf("the floods were answered %v, want 401 only", ir.flood.answers)
		}
		if n := ir.ctrl.answers[200]; n == 0 || n != sumCounts(ir.ctrl.answers) {
			t.Errorf("the control was answered %v, want 200 only", ir.ctrl.answers)
		}
		// As many calls a second as the floods: two loads at -flood-rate,
		// not one.
		if f, k := ir.flood.perSec, ir.ctrl.perSec; 4*max(f-k, k-f) > f {
			t.Errorf("the control made %.0f calls a second beside the valid load, the floods %.0f: want within a quarter", k, f)
		}
	}
	if rep.startup <= 0 || rep.memFull.heap <= 0 || rep.memEmpty.rss <= 0 || rep.memAfter.peak < rep.memAfter.rss {
		t.Errorf("start-up %v, memory %+v %+v %+v", rep.startup, rep.memEmpty, rep.memFull, rep.memAfter)
	}
	var b strings.Builder
	rep.print(&b, c)
	for _, want := range []string{"## Start-up and memory", "### forward auth: latchkey GET /v1/authorize vs bare 200 handler", "forward auth: A/B = ", "forward auth on the API listener: A/B = ",
		"forward auth's answer alone: A/B = ", "forward auth against the same answer: A/B = ", "verify: A/B = ", "reverse proxy: A/B = ",
		"## Latency at fixed rates", "## Management writes", "| 1,000 verifications/s |", "## Flood of unknown keys",
		"## Invalid keys beside valid ones", "invalid keys: server CPU per call against a valid key's: unknown well-formed keys ", "invalid keys: valid keys' p99 flooded/alone = ", "invalid keys: against as many valid calls of other clients, valid keys' p99 flooded/control = ", "reverse proxy: p99 A/B at 200/s = ",
		"forward auth, this build against -before: A/B = ", "forward auth on the API listener, this build against -before: A/B = "} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func sumCounts(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestRevocation runs the revocation mode briefly on a fresh PostgreSQL
// database: two replicas, a few deactivations, each refused by the other
// replica and timed.
func TestRevocation(t *testing.T) {
	if testing.Short() {
		t.Skip("builds latchkey and starts two replicas on PostgreSQL")
	}
	c := config{keys: 100, hot: 50, revocations: 5, revRate: 200, pgURL: defaultPostgresURL}
	if u := os.Getenv("LATCHKEY_TEST_POSTGRES_URL"); u != "" {
		c.pgURL = u
	}
	rep, err := revocation(t.Context(), c)
	if err != nil {
		if os.Getenv("CI") == "" && strings.Contains(err.Error(), "PostgreSQL at -postgres-url") {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	if len(rep.lags) != 5 || len(rep.patch) != 5 || rep.achievedA <= 0 || rep.achievedB <= 0 || rep.pollsB <= 0 {
		t.Errorf("report %+v", rep)
	}
	// The change feed, not the resync (every 30 s by default),
	// delivers: every lag is well under 5 s.
	if m := percentile(rep.lags, 100); m > 5*time.Second {
		t.Errorf("max revocation lag %v", m)
	}
	var b strings.Builder
	rep.print(&b, c)
	for _, want := range []string{"5 deactivations; from A's 200 to B's first refusal: p50 ", "revocation: p99 "} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

// TestPGOProfile writes the profile for profile-guided optimization from a
// short run and checks that it is one profile holding the handlers of all
// three surfaces, each under load: a profile that missed a surface would
// leave its code unoptimized, silently.
func TestPGOProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds latchkey and profiles it under load")
	}
	bin, err := buildLatchkey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "default.pgo")
	// 5 s a surface: the forward-auth handler is an eighth of its profile,
	// and CI runs this beside other packages' tests under -race.
	c := config{keys: 200, hot: 100, conns: 4, profDur: 5 * time.Second, binary: bin, pgo: out}
	if err := pgoProfile(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	top, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodefraction=0", "-edgefraction=0", out).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof %s: %v\n%s", out, err, top)
	}
	if strings.Contains(string(top), "crypto/sha256.Sum256") {
		t.Error("the profile has samples in crypto/sha256.Sum256, which pgoLeftOut leaves out")
	}
	for surface, fn := range map[string]string{
		"forward auth":                "internal/httpapi.(*Server).authorize",
		"forward auth's own listener": "internal/httpapi.(*authConn).serve",
		"verify":                      "internal/httpapi.(*Server).verify",
		"reverse proxy":               "internal/proxy.(*Proxy).ServeHTTP",
	} {
		// "fn (inline)" where a later profile has the compiler inline it.
		if !strings.Contains(string(top), fn+"\n") && !strings.Contains(string(top), fn+" (") {
			t.Errorf("the profile has no samples in %s: %s is not in it", fn, surface)
		}
	}
}

func TestCheckProfileDuration(t *testing.T) {
	for _, tc := range []struct {
		d  time.Duration
		ok bool
	}{
		{time.Second, true},
		{10 * time.Second, true},
		{0, false},                       // the profiler would take 30 s
		{500 * time.Millisecond, false},  // the same
		{1500 * time.Millisecond, false}, // the profiler would take 1 s
	} {
		if err := checkProfileDuration(tc.d); (err == nil) != tc.ok {
			t.Errorf("checkProfileDuration(%s) = %v, want ok %v", tc.d, err, tc.ok)
		}
	}
}

func TestParseWrk(t *testing.T) {
	const out = `Running 2s test @ http://127.0.0.1:4000/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.10ms    2.00ms  30.00ms   90.00%
    Req/Sec    20.00k     1.00k   22.00k    70.00%
  80000 requests in 2.00s, 10.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:  40000.00
Transfer/sec:      5.00MB
`
	o, d, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if d != 2*time.Second || o.statuses[wrkOK] != 79995 || o.statuses[-1] != 5 || o.errs != 3 {
		t.Errorf("parsed %v, %+v", d, o)
	}
	if o.check(200) == nil {
		t.Error("check accepted an outcome with non-2xx answers and socket errors")
	}
	if _, _, err := parseWrk("wrk: unknown option"); err == nil {
		t.Error("parseWrk accepted output without a request count")
	}
	clean, _, _ := parseWrk("  10 requests in 1.00s, 1.00KB read\n")
	if err := clean.check(200); err != nil || clean.total() != 10 {
		t.Errorf("a clean run: %v, total %d", err, clean.total())
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

// TestBareStatuses holds the bare handlers forward auth is measured
// against to what their names say, as a client reads them: the target's
// baseline answers latchkey's status, 200, with the Content-Length: 0
// that net/http adds to it; the lower floor answers 204 without one.
func TestBareStatuses(t *testing.T) {
	for _, tc := range []struct {
		mode          string
		status        int
		contentLength string
	}{
		{"200", http.StatusOK, "0"},
		{"204", http.StatusNoContent, ""},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			h, err := baselineHandler(tc.mode, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/v1/authorize")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Length") != tc.contentLength {
				t.Errorf("status %d, Content-Length %q; want %d, %q", resp.StatusCode, resp.Header.Get("Content-Length"), tc.status, tc.contentLength)
			}
		})
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

// TestCostRatios checks that each kind's cost is divided by the valid
// keys' of its own round, whatever order the round measured them in.
func TestCostRatios(t *testing.T) {
	us := time.Microsecond
	r := &invalidResult{kinds: []kindResult{
		{kind: 0, round: 0, cpuPer: 20 * us}, {kind: 1, round: 0, cpuPer: 18 * us}, {kind: 2, round: 0, cpuPer: 22 * us},
		{kind: 1, round: 1, cpuPer: 45 * us}, {kind: 2, round: 1, cpuPer: 60 * us}, {kind: 0, round: 1, cpuPer: 50 * us},
		{kind: 2, round: 2, cpuPer: 33 * us}, {kind: 0, round: 2, cpuPer: 30 * us}, {kind: 1, round: 2, cpuPer: 27 * us},
	}}
	for _, tc := range []struct {
		kind int
		want []float64
	}{
		{0, []float64{1, 1, 1}},
		{1, []float64{0.9, 0.9, 0.9}},
		{2, []float64{1.1, 1.2, 1.1}},
	} {
		got := r.costRatios(tc.kind)
		if len(got) != len(tc.want) {
			t.Fatalf("kind %d: %v, want %v", tc.kind, got, tc.want)
		}
		for i := range got {
			if d := got[i] - tc.want[i]; d > 1e-9 || d < -1e-9 {
				t.Errorf("kind %d: %v, want %v", tc.kind, got, tc.want)
				break
			}
		}
	}
	// A round without a valid measurement gives no ratio.
	r.kinds = r.kinds[:5]
	if got := r.costRatios(2); len(got) != 1 {
		t.Errorf("round 1 lacks its valid keys: ratios %v, want round 0's only", got)
	}
}

// TestKindsAlone checks that every round measures each kind once, in
// that round's order, and that each result carries its kind and round
// whatever the measurement returned.
func TestKindsAlone(t *testing.T) {
	var calls [][2]int
	got, err := kindsAlone(3, func(round, kind int) (kindResult, error) {
		calls = append(calls, [2]int{round, kind})
		return kindResult{kind: -1, round: -1, cpuPer: time.Duration(10*round + kind)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]int{{0, 0}, {0, 1}, {0, 2}, {1, 1}, {1, 2}, {1, 0}, {2, 2}, {2, 0}, {2, 1}}
	if len(calls) != len(want) || len(got) != len(want) {
		t.Fatalf("measured %v (%d results), want %v", calls, len(got), want)
	}
	for i, w := range want {
		if calls[i] != w || got[i].round != w[0] || got[i].kind != w[1] || got[i].cpuPer != time.Duration(10*w[0]+w[1]) {
			t.Errorf("measurement %d: called with %v, result %+v; want round %d, kind %d", i, calls[i], got[i], w[0], w[1])
		}
	}
}

// TestCheckFloods checks that a flood reaching the store is caught in any
// round, measured before or after the valid keys, and that the valid
// keys' own usage writes are not.
func TestCheckFloods(t *testing.T) {
	clean := func() map[string]float64 { return map[string]float64{"view": 0, "update": 4} }
	kinds := func() []kindResult {
		var ks []kindResult
		for round := range 2 {
			for _, kind := range roundOrders[round] {
				k := kindResult{kind: kind, round: round, name: strconv.Itoa(kind), calls: 1000, storeOps: clean(), idleOps: clean()}
				if kind == kindValid {
					k.storeOps["record_usage"] = 30
				}
				ks = append(ks, k)
			}
		}
		return ks
	}
	r := &invalidResult{kinds: kinds()}
	if err := r.checkFloods(); err != nil {
		t.Fatalf("no flood reached the store: %v", err)
	}
	for i, k := range r.kinds {
		if k.kind == kindValid {
			continue
		}
		for _, op := range []string{"record_usage", "scan_access_keys", "view"} {
			r := &invalidResult{kinds: kinds()}
			r.kinds[i].storeOps[op] = 5
			if err := r.checkFloods(); err == nil {
				t.Errorf("measurement %d (round %d, kind %d) made %s 5 times: not caught", i, k.round, k.kind, op)
			}
		}
	}
}

// TestControlSet: the control's keys are none of the valid load's, as many
// as asked where there are enough, and spread over all the keys.
func TestControlSet(t *testing.T) {
	for _, tc := range []struct{ all, n, want int }{
		{200, 100, 100},
		{1000, 10, 10},
		{1000000, 10000, 10000},
		{150, 100, 50}, // too few keys: the others there are
		{100, 100, 0},
	} {
		all := make([]string, tc.all)
		for i := range all {
			all[i] = "k" + strconv.Itoa(i)
		}
		hot := hotSet(all, tc.n)
		got := controlSet(all, hot, tc.n)
		if len(got) != tc.want {
			t.Errorf("%d keys, %d in use: %d for the control, want %d", tc.all, tc.n, len(got), tc.want)
		}
		in := map[string]bool{}
		for _, s := range hot {
			in[s] = true
		}
		seen := map[string]bool{}
		for _, s := range got {
			if in[s] || seen[s] {
				t.Errorf("%d keys, %d in use: %s is the valid load's or twice in the control", tc.all, tc.n, s)
			}
			seen[s] = true
		}
		// Spread like the valid load's keys: one between each two of
		// them, and one after the last.
		if tc.want == tc.n {
			at := map[string]int{}
			for i, s := range all {
				at[s] = i
			}
			for i, s := range got {
				next := tc.all
				if i+1 < len(hot) {
					next = at[hot[i+1]]
				}
				if at[s] <= at[hot[i]] || at[s] >= next {
					t.Errorf("%d keys, %d in use: the control's key %d is %s, not between %s and the next in use", tc.all, tc.n, i, s, hot[i])
				}
			}
		}
	}
}
