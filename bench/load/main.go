// Command load measures latchkey over HTTP against bare baselines on the
// same machine, in the same run, with the same load generator:
//
//	go run ./bench/load                                  # 1,000,000 keys, 5 rounds
//	go run ./bench/load -keys 10000 -rounds 2 -duration 2s   # a quick look
//	go run ./bench/load -revocation 250 -keys 100000         # revocation lag, two replicas on PostgreSQL
//	go run ./bench/load -only proxy -keys 100000 -before BIN # the reverse proxy alone, against main's build
//	go run ./bench/load -pgo cmd/latchkey/default.pgo        # the profile for profile-guided optimization
//
// It builds ./cmd/latchkey, seeds a SQLite database with -keys application
// keys (their secrets stay in this process's memory), starts `latchkey
// serve` on it (timing start-up and reading its memory), and starts the
// baselines as processes of their own (`load -baseline MODE`, see
// baseline.go). Then, in rounds that alternate A B A B so that drift in
// the machine's speed hits both alike, it measures three surfaces:
//
//	forward auth  GET /v1/authorize with a valid key, on  a handler that answers 200,
//	              the listener of serve               vs  the status latchkey answers
//	              --authorize-addr                        with (and, at the highest
//	                                                      rate only, the same on the
//	                                                      API's listener vs the 200,
//	                                                      the listener vs a handler
//	                                                      that writes the same answer,
//	                                                      and that one vs the 200)
//	verify        POST /v1/verify                     vs  a handler that decodes and
//	                                                      encodes the same JSON
//	proxy         latchkey's reverse proxy            vs  httputil.ReverseProxy, both
//	                                                      in front of the same upstream
//
// each at the highest rate it sustains (closed loop, -conns keep-alive
// connections) and at the fixed rates of -rates (open loop, latency
// measured from when each call was due). For every run it reads the
// server's CPU time from /proc/PID/stat and reports CPU microseconds per
// request. After the rounds: management writes under verification load,
// usage writes to the database at 1,000 verifications/s and at the
// machine's maximum, a flood of unknown keys, and floods of unknown and
// bad-checksum keys beside valid ones, against a control of as many valid
// calls (invalid.go). Closed-loop runs use
// wrk when it is installed (wrk.go). With -revocation N it measures
// instead how soon a deactivation on one replica is enforced by another
// (revocation.go). With -pgo FILE it measures nothing: it writes the
// profile that `go build` optimizes latchkey with (pgo.go). The report is Markdown,
// the form docs/benchmarks.md records, and quotes the machine's load
// average: on a shared machine, read the ratios, not the absolute rates.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

type config struct {
	keys         int
	hot          int // distinct keys the load uses
	rounds       int
	duration     time.Duration // one closed-loop run
	warmup       time.Duration
	conns        int
	rates        []float64
	rateDur      time.Duration // one fixed-rate run
	mgmtDur      time.Duration
	mgmtRate     float64
	usageDur     time.Duration
	settle       time.Duration // pause between phases: usage flushes (every second) catch up
	binary       string        // latchkey binary; "" builds ./cmd/latchkey
	profile      string        // write a CPU profile of latchkey under forward-auth load here
	proxyProfile string        // and one under reverse-proxy load here
	profDur      time.Duration
	allocProfile string    // write latchkey's allocation profile here after the runs
	before       string    // another latchkey binary measured beside this one ("" for none)
	wrk          string    // wrk's path: closed-loop runs use it; "" for the Go client
	invalidRate  float64   // valid keys' fixed rate in the invalid-keys phase
	floodRate    float64   // each flood's rate in that phase
	only         string    // "proxy": only the reverse-proxy pairs, no later phases
	revocations  int       // > 0: the revocation mode, with this many deactivations
	revRate      float64   // each replica's verification rate meanwhile
	pgURL        string    // the PostgreSQL server the revocation mode uses
	forwardOnly  bool      // only the forward-auth pairs (and the profile): no proxy, verify, management, usage or floods
	pgo          string    // write the profile for profile-guided optimization here, and measure nothing
	log          io.Writer // progress
}

func main() {
	if mode, upstream, idle := baselineArgs(os.Args[1:]); mode != "" {
		baselineMain(mode, upstream, idle)
		return
	}
	var c config
	var rates string
	flag.IntVar(&c.keys, "keys", 1_000_000, "application keys in the database (two per application)")
	flag.IntVar(&c.hot, "hot", 10_000, "distinct keys the load uses, spread over the index (at most -keys)")
	flag.IntVar(&c.rounds, "rounds", 5, "rounds; each runs every pair A B in turn")
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "length of one closed-loop (highest rate) run")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "untimed load on each server before the first round")
	flag.IntVar(&c.conns, "conns", 64, "keep-alive connections of the closed-loop load")
	flag.StringVar(&rates, "rates", "3000,5000", "fixed rates (requests/s) at which latency is measured, comma-separated; empty for none")
	flag.DurationVar(&c.rateDur, "rate-duration", 5*time.Second, "length of one fixed-rate run")
	flag.DurationVar(&c.mgmtDur, "mgmt-duration", 10*time.Second, "how long create-access-key is timed under verification load")
	flag.Float64Var(&c.mgmtRate, "mgmt-rate", 20, "create-access-key calls per second during that time")
	flag.DurationVar(&c.usageDur, "usage-duration", 10*time.Second, "length of each run that counts usage writes")
	flag.StringVar(&c.binary, "latchkey", "", "latchkey binary to measure (default: go build ./cmd/latchkey)")
	flag.StringVar(&c.profile, "cpuprofile", "", "write a CPU profile of latchkey under forward-auth load to this file")
	flag.StringVar(&c.proxyProfile, "proxy-cpuprofile", "", "write a CPU profile of latchkey under reverse-proxy load to this file")
	flag.StringVar(&c.allocProfile, "allocprofile", "", "write latchkey's allocation profile (every allocation since start-up) to this file after the runs")
	flag.DurationVar(&c.profDur, "cpuprofile-duration", 10*time.Second, "length of that profile")
	flag.BoolVar(&c.forwardOnly, "forward-only", false, "measure forward auth only (its four pairs: the forward-auth listener against the bare 200 handler and against the same answer, the API's listener against the bare 200, and that answer against the bare 200; and -before): no verify, proxy, management, usage or invalid-key phases")
	flag.StringVar(&c.before, "before", "", "another latchkey binary (e.g. built from main) to measure against this one in the same rounds, on a copy of the database")
	flag.StringVar(&c.wrk, "wrk", wrkDefault(), "wrk binary for the closed-loop runs (default: wrk on PATH); empty for the built-in Go client")
	flag.Float64Var(&c.invalidRate, "invalid-rate", 3000, "valid keys' fixed rate (requests/s) beside the floods of invalid keys")
	flag.Float64Var(&c.floodRate, "flood-rate", 3000, "rate (requests/s) of each flood of invalid keys: unknown keys and bad checksums")
	flag.StringVar(&c.only, "only", "", `"proxy" to measure only the reverse proxy (against the tuned baseline, and -before): no forward auth, verify, management, usage or invalid-key phases`)
	flag.IntVar(&c.revocations, "revocation", 0, "run the revocation mode instead: two replicas on PostgreSQL, this many deactivations (200 or more for a p99 worth quoting)")
	flag.Float64Var(&c.revRate, "revocation-rate", 5200, "in the revocation mode, each replica's forward-auth rate (requests/s); a little over 5,000 so that the rate achieved is at least that")
	flag.StringVar(&c.pgo, "pgo", "", "write the profile for profile-guided optimization (go build uses cmd/latchkey/default.pgo) to this file instead of measuring: latchkey's CPU profiles under forward-auth (on its own listener and on the API's), verify and reverse-proxy load (-cpuprofile-duration each), merged")
	flag.StringVar(&c.pgURL, "postgres-url", defaultPostgresURL, "in the revocation mode, the PostgreSQL server to create a database on")
	flag.String("baseline", "", "run a baseline server instead: "+baselineModes)
	flag.String("upstream", "", "with -baseline proxy: the upstream URL")
	flag.Int("idle", 0, "with -baseline proxy: idle connections kept to the upstream")
	flag.Parse()
	var err error
	if c.rates, err = parseRates(rates); err != nil {
		fmt.Fprintln(os.Stderr, "bench/load: -rates:", err)
		os.Exit(2)
	}
	if c.only != "" && c.only != "proxy" {
		fmt.Fprintln(os.Stderr, `bench/load: -only: expected "proxy" or nothing, not`, c.only)
		os.Exit(2)
	}
	if c.only != "" && c.forwardOnly {
		fmt.Fprintln(os.Stderr, "bench/load: -only and -forward-only measure different surfaces: give one of them")
		os.Exit(2)
	}
	if c.pgo != "" {
		// The flags -pgo reads; any other would be ignored without a word.
		pgoFlags := map[string]bool{"pgo": true, "keys": true, "hot": true, "conns": true, "cpuprofile-duration": true, "latchkey": true}
		var other []string
		flag.Visit(func(f *flag.Flag) {
			if !pgoFlags[f.Name] {
				other = append(other, "-"+f.Name)
			}
		})
		if len(other) > 0 {
			fmt.Fprintf(os.Stderr, "bench/load: -pgo writes a profile and measures nothing; it takes only -keys, -hot, -conns, -cpuprofile-duration and -latchkey, not %s\n", strings.Join(other, ", "))
			os.Exit(2)
		}
		if c.keys < 1 || c.hot < 1 || c.conns < 1 {
			fmt.Fprintln(os.Stderr, "bench/load: -pgo: -keys, -hot and -conns must be at least 1")
			os.Exit(2)
		}
	}
	if c.pgo != "" || c.profile != "" || c.proxyProfile != "" {
		if err := checkProfileDuration(c.profDur); err != nil {
			fmt.Fprintln(os.Stderr, "bench/load: -cpuprofile-duration:", err)
			os.Exit(2)
		}
	}
	c.log = os.Stderr
	c.settle = 1500 * time.Millisecond
	ctx := context.Background()
	if c.pgo != "" {
		if err := pgoProfile(ctx, c); err != nil {
			fmt.Fprintln(os.Stderr, "bench/load:", err)
			os.Exit(1)
		}
		return
	}
	if c.revocations > 0 {
		rep, err := revocation(ctx, c)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/load:", err)
			os.Exit(1)
		}
		rep.print(os.Stdout, c)
		return
	}
	rep, err := run(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/load:", err)
		os.Exit(1)
	}
	rep.print(os.Stdout, c)
}

func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("%q is not a rate in requests per second", f)
		}
		out = append(out, r)
	}
	return out, nil
}

func (c *config) logf(format string, args ...any) {
	if c.log != nil {
		fmt.Fprintf(c.log, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

var (
	serveRE    = regexp.MustCompile(`listening on (http://\S+)`)
	proxyRE    = regexp.MustCompile(`reverse proxy on (http://\S+)`)
	authzRE    = regexp.MustCompile(`forward auth on (http://\S+)/v1/authorize`)
	baselineRE = regexp.MustCompile(`baseline \S+ listening on (http://\S+)`)
	loadedRE   = regexp.MustCompile(`index loaded.*keys=(\d+).*duration=(\S+)`)
)

// buildLatchkey builds ./cmd/latchkey into dir.
func buildLatchkey(dir string) (string, error) {
	bin := filepath.Join(dir, "latchkey")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/latchkey/latchkey/cmd/latchkey").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building latchkey: %v\n%s", err, out)
	}
	return bin, nil
}

// startLatchkey runs `latchkey serve` on db with the profiler on and, when
// upstream is set, the reverse proxy.
func startLatchkey(bin, dir, db, upstream string, extra ...string) (*process, string, error) {
	return startLatchkeyOn(bin, dir, "sqlite:"+db, upstream, extra...)
}

// startLatchkeyOn is startLatchkey on any database URL, with extra
// arguments for serve.
func startLatchkeyOn(bin, dir, dbURL, upstream string, extra ...string) (*process, string, error) {
	args := []string{"serve", "--addr", "127.0.0.1:0", "--database-url", dbURL,
		"--credentials-file", filepath.Join(dir, "credentials"), "--log-level", "info", "--pprof",
		// the load generator plays the gateway: forward auth takes its
		// X-Forwarded-Method/-Uri only from a trusted peer
		"--trusted-proxies", "127.0.0.1"}
	if upstream != "" {
		args = append(args, "--proxy-upstream", upstream, "--proxy-addr", "127.0.0.1:0")
	}
	args = append(args, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME=", "LATCHKEY_SHARED_CREDENTIALS_FILE=")
	p, err := startProcess("latchkey serve", cmd, serveRE, 5*time.Minute)
	if err != nil {
		return nil, "", err
	}
	proxyURL := ""
	if upstream != "" {
		// The proxy's line comes right after the API's.
		if proxyURL, err = p.await(proxyRE, "reverse proxy"); err != nil {
			p.stop()
			return nil, "", err
		}
	}
	return p, proxyURL, nil
}

// await waits up to 10 seconds for a line of p's output that matches re
// (one of the listeners serve prints after the API's), and returns the
// line's first group.
func (p *process) await(re *regexp.Regexp, what string) (string, error) {
	deadline := time.After(10 * time.Second)
	for {
		if m := re.FindStringSubmatch(p.log()); m != nil {
			return m[1], nil
		}
		select {
		case <-deadline:
			return "", fmt.Errorf("latchkey printed no %s line:\n%s", what, p.log())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func startBaseline(mode, upstream string, idle int) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-baseline", mode}
	if upstream != "" {
		args = append(args, "-upstream", upstream)
	}
	if idle > 0 {
		args = append(args, "-idle", strconv.Itoa(idle))
	}
	return startProcess("baseline "+mode, exec.Command(self, args...), baselineRE, 30*time.Second)
}

func hostOf(u string) string {
	_, a, _ := strings.Cut(u, "://")
	return strings.TrimSuffix(a, "/")
}

// memory is what a latchkey process holds.
type memory struct {
	rss, heap int64 // resident set; live Go heap after a forced collection
	peak      int64 // the most resident memory so far
}

func measureMemory(p *process, operator string) (memory, error) {
	var m memory
	// A forced collection first, so that the heap figure is live data,
	// not garbage from loading.
	if _, err := httpGet(p.url+"/debug/pprof/heap?gc=1", operator); err != nil {
		return m, err
	}
	metrics, err := scrape(p.url)
	if err != nil {
		return m, err
	}
	m.heap = int64(metrics[`go_memstats_heap_alloc_bytes`])
	if m.rss, err = p.rss(); err != nil {
		return m, err
	}
	m.peak, err = p.peakRSS()
	return m, err
}
