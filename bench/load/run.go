package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// target is one server under load.
type target struct {
	name string
	addr string
	proc *process // whose CPU time is counted
	mk   requests
	want int // the status every answer must have
}

type pairSpec struct {
	name      string
	a, b      target
	threshold float64 // the target: A's rate must be at least this share of B's (docs/benchmarks.md)
	// p99Ratio, when set, is the target for latency at fixed rates: A's
	// p99 at most this multiple of B's in the same round.
	p99Ratio float64
	// closedOnly pairs are measured at the highest rate only, not at
	// the fixed rates.
	closedOnly bool
}

type runResult struct {
	rps    float64
	cpuPer time.Duration // server CPU per request
}

type rateResult struct {
	achieved       float64
	p50, p99, pMax time.Duration
	cpuPer         time.Duration
}

type pairResult struct {
	spec  *pairSpec
	a, b  []runResult
	rates map[float64]*[2][]rateResult // [0] is A, [1] is B
}

type usageResult struct {
	label         string
	verifications float64 // per second
	usageWrites   float64 // usage write transactions per second
	otherWrites   float64 // other write transactions per second
	seconds       float64
}

type floodResult struct {
	rps      float64
	cpuPer   time.Duration
	statuses map[int]int
	storeOps map[string]float64 // store operations during the flood, by op
}

type report struct {
	start, end            time.Time
	loadBefore, loadAfter string
	keys, hot             int
	seedTook              time.Duration
	startup               time.Duration // latchkey serve: exec to "listening on"
	indexLine             string        // the "index loaded" log line
	memEmpty, memFull     memory
	memAfter              memory // latchkey after every run above
	pairs                 []*pairResult
	mgmt                  []mgmtResult
	usage                 []usageResult
	flood                 floodResult
	invalid               *invalidResult
	profile               string
}

// hotSet picks n secrets spread evenly over all of them.
func hotSet(all []string, n int) []string {
	n = max(1, min(n, len(all)))
	out := make([]string, n)
	for i := range out {
		out[i] = all[i*len(all)/n]
	}
	return out
}

// pick spreads consecutive request numbers over n keys.
func pick(i, n int) int { return int(uint64(i) * 2654435761 % uint64(n)) }

func authorizeReqs(secrets []string) requests {
	return func(i int, b []byte) []byte {
		b = append(b, "GET /v1/authorize HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench-load\r\n"+
			"X-Forwarded-Method: GET\r\nX-Forwarded-Uri: /shipments/42\r\nX-Api-Key: "...)
		b = append(b, secrets[pick(i, len(secrets))]...)
		return append(b, "\r\n\r\n"...)
	}
}

func verifyReqs(secrets []string, verifier string) requests {
	return func(i int, b []byte) []byte {
		key := secrets[pick(i, len(secrets))]
		const pre, post = `{"key":"`, `","ip":"203.0.113.9","user_agent":"shop/1.0"}`
		b = append(b, "POST /v1/verify HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench-load\r\nContent-Type: application/json\r\nAuthorization: Bearer "...)
		b = append(b, verifier...)
		b = append(b, "\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(pre)+len(key)+len(post)), 10)
		b = append(b, "\r\n\r\n"+pre...)
		b = append(b, key...)
		return append(b, post...)
	}
}

func proxyReqs(secrets []string) requests {
	return func(i int, b []byte) []byte {
		b = append(b, "GET /shipments/42 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench-load\r\nX-Api-Key: "...)
		b = append(b, secrets[pick(i, len(secrets))]...)
		return append(b, "\r\n\r\n"...)
	}
}

func httpDo(method, url, auth, body string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

func httpGet(url, auth string) ([]byte, error) {
	code, b, err := httpDo("GET", url, auth, "")
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET %s: %d %.200s", url, code, b)
	}
	return b, err
}

// scrape reads the server's Prometheus metrics: every sample by its name
// and labels as printed.
func scrape(base string) (map[string]float64, error) {
	b, err := httpGet(base+"/metrics", "")
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

func storeOps(m map[string]float64, op string) float64 {
	return m[`latchkey_store_duration_seconds_count{op="`+op+`"}`]
}

// answerHeaders sends t's first request over a connection of its own and
// returns the answer's headers.
func answerHeaders(t target) (http.Header, error) {
	nc, err := net.DialTimeout("tcp", t.addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(t.mk(0, nil)); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return resp.Header, nil
}

// sameAnswer checks that the bare decision baseline (b) answers with the
// X-Latchkey-* headers latchkey (a) answers with, and values of the same
// lengths: a baseline that wrote less than latchkey would flatter it.
func sameAnswer(a, b target) error {
	ha, err := answerHeaders(a)
	if err != nil {
		return fmt.Errorf("%s: %w", a.name, err)
	}
	hb, err := answerHeaders(b)
	if err != nil {
		return fmt.Errorf("%s: %w", b.name, err)
	}
	shape := func(h http.Header) map[string][]int {
		m := map[string][]int{}
		for k, vs := range h {
			if strings.HasPrefix(k, "X-Latchkey-") {
				for _, v := range vs {
					m[k] = append(m[k], len(v))
				}
			}
		}
		return m
	}
	if sa, sb := shape(ha), shape(hb); !maps.EqualFunc(sa, sb, slices.Equal) {
		return fmt.Errorf("%s answers with X-Latchkey-* headers of lengths %v, but %s with %v: update decisionHeaders", a.name, sa, b.name, sb)
	}
	return nil
}

// preflight sends one request to t and checks the answer.
func preflight(t target, bodyHas []byte) error {
	c := &conn{addr: t.addr}
	defer c.close()
	status, body, err := c.do(t.mk(0, nil), true)
	if err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	if status != t.want || (bodyHas != nil && !bytes.Contains(body, bodyHas)) {
		return fmt.Errorf("%s answered %d %.300s; want %d with %q", t.name, status, body, t.want, bodyHas)
	}
	return nil
}

func measureClosed(ctx context.Context, t target, c config) (runResult, error) {
	cpu0, err := t.proc.cpu()
	if err != nil {
		return runResult{}, err
	}
	var out *outcome
	var elapsed time.Duration
	if c.wrk != "" {
		out, elapsed, err = wrkLoop(ctx, c.wrk, t, c.conns, c.duration, c.hot)
		if err != nil {
			return runResult{}, err
		}
	} else {
		out, elapsed = closedLoop(ctx, t.addr, c.conns, c.duration, t.mk)
	}
	cpu1, err := t.proc.cpu()
	if err != nil {
		return runResult{}, err
	}
	if err := out.check(t.want); err != nil {
		return runResult{}, fmt.Errorf("%s: %w", t.name, err)
	}
	n := out.total()
	return runResult{rps: float64(n) / elapsed.Seconds(), cpuPer: (cpu1 - cpu0) / time.Duration(n)}, nil
}

// rateConns is how many connections carry a fixed-rate load: enough that
// a call that waits does not hold up many others.
const rateConns = 32

func measureRate(ctx context.Context, t target, rate float64, d time.Duration) (rateResult, error) {
	cpu0, err := t.proc.cpu()
	if err != nil {
		return rateResult{}, err
	}
	out, lat := openLoop(ctx, t.addr, rateConns, rate, d, t.mk)
	cpu1, err := t.proc.cpu()
	if err != nil {
		return rateResult{}, err
	}
	if err := out.check(t.want); err != nil {
		return rateResult{}, fmt.Errorf("%s at %g/s: %w", t.name, rate, err)
	}
	n := out.total()
	return rateResult{achieved: float64(n) / d.Seconds(), p50: percentile(lat, 50), p99: percentile(lat, 99),
		pMax: percentile(lat, 100), cpuPer: (cpu1 - cpu0) / time.Duration(n)}, nil
}

func run(ctx context.Context, c config) (*report, error) {
	rep := &report{start: time.Now(), loadBefore: loadavg(), keys: c.keys}
	dir, err := os.MkdirTemp("", "latchkey-bench-load")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := c.binary
	if bin == "" {
		c.logf("building latchkey")
		if bin, err = buildLatchkey(dir); err != nil {
			return nil, err
		}
	}

	// Memory of latchkey on an empty database, to subtract.
	c.logf("measuring latchkey on an empty database")
	emptyDir := dir + "/empty"
	if err := os.Mkdir(emptyDir, 0o700); err != nil {
		return nil, err
	}
	empty, err := seed(ctx, emptyDir, 0, 0)
	if err != nil {
		return nil, err
	}
	p0, _, err := startLatchkey(bin, emptyDir, empty.dbPath, "")
	if err != nil {
		return nil, err
	}
	rep.memEmpty, err = measureMemory(p0, empty.operator)
	p0.stop()
	if err != nil {
		return nil, err
	}

	c.logf("seeding %d keys", c.keys)
	fullDir := dir + "/full"
	if err := os.Mkdir(fullDir, 0o700); err != nil {
		return nil, err
	}
	mgmtApps := int(3*c.mgmtRate*c.mgmtDur.Seconds())/2 + 10 // two keys each, for three runs
	db, err := seed(ctx, fullDir, c.keys, mgmtApps)
	if err != nil {
		return nil, err
	}
	rep.seedTook = db.took
	hot := hotSet(db.secrets, c.hot)
	rep.hot = len(hot)

	c.logf("starting the upstream and the baselines")
	upstream, err := startBaseline("upstream", "", 0)
	if err != nil {
		return nil, err
	}
	defer upstream.stop()
	bare200, err := startBaseline("200", "", 0)
	if err != nil {
		return nil, err
	}
	defer bare200.stop()
	bareAnswer, err := startBaseline("decision", "", 0)
	if err != nil {
		return nil, err
	}
	defer bareAnswer.stop()
	bareJSON, err := startBaseline("json", "", 0)
	if err != nil {
		return nil, err
	}
	defer bareJSON.stop()
	plain, err := startBaseline("proxy", upstream.url, max(c.conns, rateConns))
	if err != nil {
		return nil, err
	}
	defer plain.stop()

	c.logf("starting latchkey serve on %d keys", c.keys)
	// Forward auth is measured where a gateway is pointed at it: the
	// listener that serves it alone (serve --authorize-addr).
	lk, proxyURL, err := startLatchkey(bin, fullDir, db.dbPath, upstream.url, "--authorize-addr", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer lk.stop()
	authzURL, err := lk.await(authzRE, "forward auth")
	if err != nil {
		return nil, err
	}
	authz := hostOf(authzURL)
	rep.startup = lk.ready
	if m := loadedRE.FindStringSubmatch(lk.log()); m != nil {
		rep.indexLine = fmt.Sprintf("%s keys in %s", m[1], m[2])
	}
	if rep.memFull, err = measureMemory(lk, db.operator); err != nil {
		return nil, err
	}

	pairs := []*pairSpec{
		// The target's baseline: a bare net/http handler answering the
		// status latchkey answers an allowed call with (200, and so a
		// Content-Length: 0 that a 204 goes without).
		{name: "forward auth", threshold: 0.85,
			a: target{"latchkey GET /v1/authorize", authz, lk, authorizeReqs(hot), 200},
			b: target{"bare 200 handler", bare200.addr(), bare200, authorizeReqs(hot), 200}},
		// The same decisions on the API's listener, which net/http serves
		// and answers (the figure earlier runs measured).
		{name: "forward auth on the API listener", closedOnly: true,
			a: target{"latchkey GET /v1/authorize on the API listener", lk.addr(), lk, authorizeReqs(hot), 200},
			b: target{"bare 200 handler", bare200.addr(), bare200, authorizeReqs(hot), 200}},
		// The answer's own cost, apart from latchkey's: net/http writing
		// forward auth's eight headers (a header map cloned at
		// WriteHeader, sorted and written) against the bare 200, and
		// latchkey against a bare handler that writes the same answer.
		{name: "forward auth's answer alone", closedOnly: true,
			a: target{"bare handler writing forward auth's headers", bareAnswer.addr(), bareAnswer, authorizeReqs(hot), 200},
			b: target{"bare 200 handler", bare200.addr(), bare200, authorizeReqs(hot), 200}},
		{name: "forward auth against the same answer", closedOnly: true,
			a: target{"latchkey GET /v1/authorize", authz, lk, authorizeReqs(hot), 200},
			b: target{"bare handler writing forward auth's headers", bareAnswer.addr(), bareAnswer, authorizeReqs(hot), 200}},
		{name: "verify", threshold: 0.60,
			a: target{"latchkey POST /v1/verify", lk.addr(), lk, verifyReqs(hot, db.verifier), 200},
			b: target{"bare JSON handler", bareJSON.addr(), bareJSON, verifyReqs(hot, db.verifier), 200}},
		{name: "reverse proxy", threshold: 1.10, p99Ratio: 1.2,
			a: target{"latchkey reverse proxy", hostOf(proxyURL), lk, proxyReqs(hot), 200},
			b: target{"httputil.ReverseProxy", plain.addr(), plain, proxyReqs(hot), 200}},
	}
	proxyPair := pairs[len(pairs)-1]
	if c.only == "proxy" {
		pairs = []*pairSpec{proxyPair}
	}
	var before *process
	if c.before != "" {
		// The same keys in a copy of the database, served by the other
		// build: before and after in the same rounds.
		c.logf("starting the -before build on a copy of the database")
		bdir := dir + "/before"
		if err := os.Mkdir(bdir, 0o700); err != nil {
			return nil, err
		}
		bdb := bdir + "/latchkey.db"
		for _, suffix := range []string{"", "-wal"} {
			if _, err := os.Stat(db.dbPath + suffix); suffix != "" && err != nil {
				continue
			}
			if err := copyFile(db.dbPath+suffix, bdb+suffix); err != nil {
				return nil, err
			}
		}
		var bproxy string
		if before, bproxy, err = startLatchkey(c.before, bdir, bdb, upstream.url, "--authorize-addr", "127.0.0.1:0"); err != nil {
			return nil, err
		}
		defer before.stop()
		if c.only == "" {
			bauthzURL, err := before.await(authzRE, "forward auth")
			if err != nil {
				return nil, err
			}
			pairs = append(pairs, &pairSpec{name: "forward auth, this build against -before",
				a: target{"latchkey GET /v1/authorize", authz, lk, authorizeReqs(hot), 200},
				b: target{"-before GET /v1/authorize", hostOf(bauthzURL), before, authorizeReqs(hot), 200}},
				&pairSpec{name: "forward auth on the API listener, this build against -before", closedOnly: true,
					a: target{"latchkey GET /v1/authorize on the API listener", lk.addr(), lk, authorizeReqs(hot), 200},
					b: target{"-before GET /v1/authorize on the API listener", before.addr(), before, authorizeReqs(hot), 200}})
		}
		pairs = append(pairs, &pairSpec{name: "reverse proxy, this build against -before",
			a: target{"latchkey reverse proxy", hostOf(proxyURL), lk, proxyReqs(hot), 200},
			b: target{"-before reverse proxy", hostOf(bproxy), before, proxyReqs(hot), 200}})
	}
	if c.forwardOnly {
		pairs = slices.DeleteFunc(pairs, func(p *pairSpec) bool { return !strings.HasPrefix(p.name, "forward auth") })
	}
	for _, p := range pairs {
		var has []byte
		if p.name == "verify" {
			has = []byte(`"valid":true`)
		}
		if err := preflight(p.a, has); err != nil {
			return nil, err
		}
		if err := preflight(p.b, has); err != nil {
			return nil, err
		}
		if p.b.proc == bareAnswer {
			if err := sameAnswer(p.a, p.b); err != nil {
				return nil, err
			}
		}
	}
	c.logf("warming up")
	for _, p := range pairs {
		for _, t := range []target{p.a, p.b} {
			closedLoop(ctx, t.addr, c.conns, c.warmup, t.mk)
		}
	}

	for _, p := range pairs {
		rep.pairs = append(rep.pairs, &pairResult{spec: p, rates: map[float64]*[2][]rateResult{}})
	}
	for r := range c.rounds {
		c.logf("round %d of %d (load average %s)", r+1, c.rounds, loadavg())
		for _, pr := range rep.pairs {
			for i, t := range []target{pr.spec.a, pr.spec.b} {
				res, err := measureClosed(ctx, t, c)
				if err != nil {
					return nil, err
				}
				if i == 0 {
					pr.a = append(pr.a, res)
				} else {
					pr.b = append(pr.b, res)
				}
			}
			for _, rate := range c.rates {
				if pr.spec.closedOnly {
					break
				}
				if pr.rates[rate] == nil {
					pr.rates[rate] = &[2][]rateResult{}
				}
				for i, t := range []target{pr.spec.a, pr.spec.b} {
					res, err := measureRate(ctx, t, rate, c.rateDur)
					if err != nil {
						return nil, err
					}
					pr.rates[rate][i] = append(pr.rates[rate][i], res)
				}
			}
		}
	}

	before.stop() // idle from here on; its usage flushes are done
	fwd := pairs[0].a
	if c.forwardOnly {
		if c.profile != "" {
			c.logf("CPU profile of latchkey under forward-auth load")
			if err := profileUnderLoad(ctx, lk, db.operator, fwd, c.profile, c); err != nil {
				return nil, err
			}
			rep.profile = c.profile
		}
		rep.end, rep.loadAfter = time.Now(), loadavg()
		return rep, nil
	}
	if c.only == "proxy" {
		if c.proxyProfile != "" {
			c.logf("CPU profile of latchkey under reverse-proxy load")
			if err := profileUnderLoad(ctx, lk, db.operator, proxyPair.a, c.proxyProfile, c); err != nil {
				return nil, err
			}
		}
		if rep.memAfter, err = measureMemory(lk, db.operator); err != nil {
			return nil, err
		}
		rep.end, rep.loadAfter = time.Now(), loadavg()
		return rep, nil
	}

	c.logf("management writes, idle and under verification load")
	loads := []mgmtLoad{{label: "idle"}}
	if len(c.rates) > 0 {
		loads = append(loads, mgmtLoad{label: "forward auth at a fixed rate", rate: slices.Max(c.rates)})
	}
	loads = append(loads, mgmtLoad{label: "forward auth at the highest rate", rate: -1})
	made := 0
	for _, l := range loads {
		res, err := mgmtUnderLoad(ctx, lk, db.operator, fwd, l, made, c)
		if err != nil {
			return nil, err
		}
		made += len(res.lat)
		rep.mgmt = append(rep.mgmt, res)
	}

	c.logf("usage writes")
	for _, u := range []struct {
		label string
		rate  float64 // 0: as fast as the server goes
	}{{"1,000 verifications/s", 1000}, {"highest rate", 0}} {
		res, err := usageRun(ctx, lk, fwd, u.rate, c)
		if err != nil {
			return nil, err
		}
		res.label = u.label
		rep.usage = append(rep.usage, res)
	}

	if c.profile != "" {
		c.logf("CPU profile of latchkey under forward-auth load")
		if err := profileUnderLoad(ctx, lk, db.operator, fwd, c.profile, c); err != nil {
			return nil, err
		}
		rep.profile = c.profile
	}
	if c.proxyProfile != "" {
		c.logf("CPU profile of latchkey under reverse-proxy load")
		if err := profileUnderLoad(ctx, lk, db.operator, proxyPair.a, c.proxyProfile, c); err != nil {
			return nil, err
		}
	}

	if rep.memAfter, err = measureMemory(lk, db.operator); err != nil {
		return nil, err
	}
	if c.allocProfile != "" {
		// Every allocation since start-up, by where it was made.
		prof, err := httpGet(lk.url+"/debug/pprof/allocs", db.operator)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(c.allocProfile, prof, 0o644); err != nil {
			return nil, err
		}
	}

	// Last: the flood makes the guard throttle this address, valid keys
	// included, for minutes.
	c.logf("flood of unknown keys")
	if rep.flood, err = flood(ctx, lk, c); err != nil {
		return nil, err
	}

	c.logf("invalid keys beside valid ones, on a latchkey serve without the guard")
	lk.stop()
	open, _, err := startLatchkey(bin, fullDir, db.dbPath, "", "--guard-failures", "0")
	if err != nil {
		return nil, err
	}
	defer open.stop()
	if rep.invalid, err = invalidKeys(ctx, open, hot, db.secrets, c); err != nil {
		return nil, err
	}
	rep.end, rep.loadAfter = time.Now(), loadavg()
	return rep, nil
}

// mgmtLoad is the verification load under which management writes are
// timed: none (rate 0), a fixed rate, or the highest rate (-1).
type mgmtLoad struct {
	label string
	rate  float64
}

type mgmtResult struct {
	mgmtLoad
	verifications float64 // per second meanwhile
	lat           []time.Duration
}

// copyFile copies a file of a SQLite database that no process has open.
func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

func mgmtUnderLoad(ctx context.Context, lk *process, operator string, t target, l mgmtLoad, first int, c config) (mgmtResult, error) {
	res := mgmtResult{mgmtLoad: l}
	loadCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan *outcome, 1)
	start := time.Now()
	switch {
	case l.rate > 0:
		go func() {
			out, _ := openLoop(loadCtx, t.addr, rateConns, l.rate, c.mgmtDur+time.Second, t.mk)
			done <- out
		}()
	case l.rate < 0:
		go func() {
			out, _ := closedLoop(loadCtx, t.addr, c.conns, c.mgmtDur+time.Hour, t.mk)
			done <- out
		}()
	default:
		done <- &outcome{}
	}
	if l.rate != 0 {
		time.Sleep(c.settle / 3) // let the load get going
	}
	lat, err := createKeys(ctx, lk.url, operator, c.mgmtRate, c.mgmtDur, first)
	stop()
	out := <-done
	if err != nil {
		return res, err
	}
	res.lat = lat
	res.verifications = float64(out.total()) / time.Since(start).Seconds()
	return res, nil
}

// createKeys creates access keys through the management API at rate per
// second for d, two per application mgmt-N from the first'th key on, and
// returns the latencies (sorted), measured from when each call was due.
func createKeys(ctx context.Context, base, operator string, rate float64, d time.Duration, first int) ([]time.Duration, error) {
	period := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	var lat []time.Duration
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * period)
		if due.Sub(start) >= d || ctx.Err() != nil {
			break
		}
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		app := fmt.Sprintf("mgmt-%d", (first+i)/2)
		code, body, err := httpDo("POST", base+"/v1/applications/"+app+"/access-keys", operator, `{"description":"bench/load"}`)
		if err != nil {
			return nil, err
		}
		if code != http.StatusCreated {
			return nil, fmt.Errorf("create-access-key on %s: %d %.200s", app, code, body)
		}
		lat = append(lat, time.Since(due))
	}
	sortDurations(lat)
	return lat, nil
}

// usageRun puts forward-auth load on latchkey for c.usageDur, at rate or
// as fast as it goes (rate 0), and counts the write transactions the store
// saw meanwhile.
func usageRun(ctx context.Context, lk *process, t target, rate float64, c config) (usageResult, error) {
	time.Sleep(c.settle) // let the last load's usage be written
	before, err := scrape(lk.url)
	if err != nil {
		return usageResult{}, err
	}
	start := time.Now()
	var out *outcome
	if rate > 0 {
		out, _ = openLoop(ctx, t.addr, rateConns, rate, c.usageDur, t.mk)
	} else {
		out, _ = closedLoop(ctx, t.addr, c.conns, c.usageDur, t.mk)
	}
	after, err := scrape(lk.url)
	if err != nil {
		return usageResult{}, err
	}
	secs := time.Since(start).Seconds()
	if err := out.check(t.want); err != nil {
		return usageResult{}, err
	}
	return usageResult{
		verifications: float64(out.total()) / secs,
		usageWrites:   (storeOps(after, "record_usage") - storeOps(before, "record_usage")) / secs,
		otherWrites:   (storeOps(after, "update") - storeOps(before, "update")) / secs,
		seconds:       secs,
	}, nil
}

// profileUnderLoad writes to file a CPU profile of latchkey of
// c.profDur (whole seconds: see checkProfileDuration) under closed-loop
// load on t, and fails when any call of that load failed or was answered
// with another status than t's: a profile of errors or refusals is a
// profile of the wrong paths. The load has stopped when it returns.
func profileUnderLoad(ctx context.Context, lk *process, operator string, t target, file string, c config) error {
	loadCtx, stop := context.WithCancel(ctx)
	done := make(chan *outcome, 1)
	go func() {
		out, _ := closedLoop(loadCtx, t.addr, c.conns, c.profDur+time.Hour, t.mk)
		done <- out
	}()
	time.Sleep(500 * time.Millisecond)
	prof, err := httpGet(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", lk.url, int(c.profDur/time.Second)), operator)
	stop()
	out := <-done
	if err != nil {
		return err
	}
	if err := out.check(t.want); err != nil {
		return fmt.Errorf("%s, under the profile: %w", t.name, err)
	}
	return os.WriteFile(file, prof, 0o644)
}

// checkProfileDuration refuses a profile length the profiler cannot take:
// net/http/pprof counts whole seconds, and takes 30 for 0.
func checkProfileDuration(d time.Duration) error {
	if d < time.Second || d%time.Second != 0 {
		return fmt.Errorf("%s: a whole number of seconds, at least 1s (the profiler counts whole seconds)", d)
	}
	return nil
}

// usageSettled waits at least settle, then until the usage of the calls
// before has been written (no usage write for longer than the flush
// interval, a second), at most ten seconds, and returns the last scrape.
// A flush that a loaded machine made late would otherwise be counted
// against the phase that follows.
func usageSettled(lk *process, settle time.Duration) (map[string]float64, error) {
	time.Sleep(settle)
	last, err := scrape(lk.url)
	if err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(1200 * time.Millisecond)
		now, err := scrape(lk.url)
		if err != nil {
			return nil, err
		}
		if storeOps(now, "record_usage") == storeOps(last, "record_usage") {
			return now, nil
		}
		last = now
	}
	return last, nil
}

// flood sends well-formed secrets that no key has, as fast as latchkey
// answers, and counts the store operations meanwhile.
func flood(ctx context.Context, lk *process, c config) (floodResult, error) {
	unknown := make([]string, 4096)
	for i := range unknown {
		s, err := newSecret()
		if err != nil {
			return floodResult{}, err
		}
		unknown[i] = s
	}
	before, err := usageSettled(lk, c.settle)
	if err != nil {
		return floodResult{}, err
	}
	cpu0, err := lk.cpu()
	if err != nil {
		return floodResult{}, err
	}
	out, elapsed := closedLoop(ctx, lk.addr(), c.conns, c.duration, authorizeReqs(unknown))
	cpu1, err := lk.cpu()
	if err != nil {
		return floodResult{}, err
	}
	after, err := scrape(lk.url)
	if err != nil {
		return floodResult{}, err
	}
	if out.errs > 0 {
		return floodResult{}, fmt.Errorf("flood: %d calls failed: %v", out.errs, out.firstErr)
	}
	n := out.total()
	res := floodResult{rps: float64(n) / elapsed.Seconds(), cpuPer: (cpu1 - cpu0) / time.Duration(max(n, 1)),
		statuses: out.statuses, storeOps: map[string]float64{}}
	for _, op := range []string{"view", "update", "scan_access_keys", "record_usage"} {
		res.storeOps[op] = storeOps(after, op) - storeOps(before, op)
	}
	return res, nil
}
