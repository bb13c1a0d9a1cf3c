package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"github.com/latchkey/latchkey/keyformat"
)

func newSecret() (string, error) { return keyformat.NewSecret() }

func sortDurations(d []time.Duration) { slices.Sort(d) }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func medianDur(xs []time.Duration) time.Duration {
	f := make([]float64, len(xs))
	for i, x := range xs {
		f[i] = float64(x)
	}
	return time.Duration(median(f))
}

func rpsOf(rs []runResult) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.rps
	}
	return out
}

func cpuOf(rs []runResult) []time.Duration {
	out := make([]time.Duration, len(rs))
	for i, r := range rs {
		out[i] = r.cpuPer
	}
	return out
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Microsecond)) }
func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func (r *report) print(w io.Writer, c config) {
	fmt.Fprintf(w, "# bench/load, %s\n\n", r.start.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "%s/%s, %d CPUs, %s; %d keys in the database, load over %d of them; %d rounds, closed loop %s on %d connections, fixed rates %v for %s on %d connections\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), r.keys, r.hot, c.rounds, c.duration, c.conns, c.rates, c.rateDur, rateConns)
	fmt.Fprintf(w, "load average (1, 5, 15 min) before: %s; after: %s; took %s\n\n", r.loadBefore, r.loadAfter, r.end.Sub(r.start).Round(time.Second))

	fmt.Fprintln(w, "## Start-up and memory (latchkey serve, SQLite)")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- seeding %d keys took %s\n", r.keys, r.seedTook.Round(time.Millisecond))
	fmt.Fprintf(w, "- start-up, exec to \"listening on\" with the index loaded: %s (log: index loaded, %s)\n", r.startup.Round(time.Millisecond), r.indexLine)
	fmt.Fprintf(w, "- empty database: RSS %.1f MiB, live heap %.1f MiB; with %d keys: RSS %.1f MiB, live heap %.1f MiB\n",
		mib(r.memEmpty.rss), mib(r.memEmpty.heap), r.keys, mib(r.memFull.rss), mib(r.memFull.heap))
	if r.keys > 0 && !c.forwardOnly {
		fmt.Fprintf(w, "- per key: %.0f bytes of RSS, %.0f bytes of live heap (target: at most 400); peak RSS of the start-up %.1f MiB\n",
			float64(r.memFull.rss-r.memEmpty.rss)/float64(r.keys), float64(r.memFull.heap-r.memEmpty.heap)/float64(r.keys), mib(r.memFull.peak))
		fmt.Fprintf(w, "- after the runs below (before the flood): RSS %.1f MiB (%.0f bytes per key), live heap %.1f MiB (%.0f bytes per key); peak RSS during the runs %.1f MiB\n",
			mib(r.memAfter.rss), float64(r.memAfter.rss-r.memEmpty.rss)/float64(r.keys),
			mib(r.memAfter.heap), float64(r.memAfter.heap-r.memEmpty.heap)/float64(r.keys), mib(r.memAfter.peak))
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "## Highest rate (closed loop)")
	for _, p := range r.pairs {
		fmt.Fprintf(w, "\n### %s: %s vs %s\n\n", p.spec.name, p.spec.a.name, p.spec.b.name)
		fmt.Fprintln(w, "| round | A req/s | B req/s | A/B | A server CPU µs/req | B server CPU µs/req |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: |")
		for i := range p.a {
			fmt.Fprintf(w, "| %d | %.0f | %.0f | %.2f | %s | %s |\n", i+1, p.a[i].rps, p.b[i].rps, p.a[i].rps/p.b[i].rps, us(p.a[i].cpuPer), us(p.b[i].cpuPer))
		}
		ma, mb := median(rpsOf(p.a)), median(rpsOf(p.b))
		ca, cb := medianDur(cpuOf(p.a)), medianDur(cpuOf(p.b))
		fmt.Fprintf(w, "| **median** | **%.0f** | **%.0f** | **%.2f** | **%s** | **%s** |\n\n", ma, mb, ma/mb, us(ca), us(cb))
		if p.spec.threshold > 0 {
			fmt.Fprintf(w, "%s: A/B = %.2f (target at least %.2f: %s); server CPU per request A/B = %.2f\n",
				p.spec.name, ma/mb, p.spec.threshold, verdict(ma/mb >= p.spec.threshold), float64(ca)/float64(cb))
		} else {
			fmt.Fprintf(w, "%s: A/B = %.2f; server CPU per request A/B = %.2f\n", p.spec.name, ma/mb, float64(ca)/float64(cb))
		}
	}
	fmt.Fprintln(w)

	if len(c.rates) > 0 {
		fmt.Fprintln(w, "## Latency at fixed rates (open loop, from when each call was due; medians over rounds)")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| server | rate | achieved req/s | p50 ms | p99 ms | worst p99 ms | max ms | server CPU µs/req | p99 A/B (median of rounds) |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, p := range r.pairs {
			if p.spec.closedOnly {
				continue
			}
			for _, rate := range c.rates {
				for i, t := range []target{p.spec.a, p.spec.b} {
					rs := p.rates[rate][i]
					var ach []float64
					var p50, p99, mx, cpu []time.Duration
					for _, x := range rs {
						ach = append(ach, x.achieved)
						p50, p99, mx, cpu = append(p50, x.p50), append(p99, x.p99), append(mx, x.pMax), append(cpu, x.cpuPer)
					}
					ratio := ""
					if i == 0 {
						ratio = fmt.Sprintf("%.2f", p.p99Ratio(rate))
					}
					fmt.Fprintf(w, "| %s | %.0f | %.0f | %s | %s | %s | %s | %s | %s |\n", t.name, rate, median(ach),
						ms(medianDur(p50)), ms(medianDur(p99)), ms(slices.Max(p99)), ms(slices.Max(mx)), us(medianDur(cpu)), ratio)
				}
			}
		}
		fmt.Fprintln(w)
		for _, p := range r.pairs {
			if p.spec.p99Ratio == 0 {
				continue
			}
			for _, rate := range c.rates {
				x := p.p99Ratio(rate)
				fmt.Fprintf(w, "%s: p99 A/B at %.0f/s = %.2f (target at most %.2f at 3,000/s: %s)\n", p.spec.name, rate, x, p.spec.p99Ratio,
					verdict(x <= p.spec.p99Ratio))
			}
		}
		fmt.Fprintln(w)
	}

	if c.forwardOnly {
		r.printProfile(w)
		return
	}
	if c.only != "" {
		return // no later phases were run
	}
	fmt.Fprintln(w, "## Management writes (create-access-key through the API, from when each call was due)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| verification load | verifications/s meanwhile | calls | p50 ms | p99 ms | max ms | p99 under 20 ms |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | --- |")
	for _, m := range r.mgmt {
		label := m.label
		if m.rate > 0 {
			label = fmt.Sprintf("%s (%.0f/s)", m.label, m.rate)
		}
		p99 := percentile(m.lat, 99)
		fmt.Fprintf(w, "| %s | %.0f | %d | %s | %s | %s | %s |\n", label, m.verifications, len(m.lat),
			ms(percentile(m.lat, 50)), ms(p99), ms(percentile(m.lat, 100)), verdict(p99 < 20*time.Millisecond))
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "## Usage writes to the database (write transactions counted by latchkey_store_duration_seconds_count)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| load | verifications/s | usage write transactions/s | other write transactions/s | seconds |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: |")
	for _, u := range r.usage {
		fmt.Fprintf(w, "| %s | %.0f | %.2f | %.2f | %.1f |\n", u.label, u.verifications, u.usageWrites, u.otherWrites, u.seconds)
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "## Flood of unknown keys (GET /v1/authorize, closed loop, one client address)")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- %.0f req/s, server CPU %s µs/req; answers by status: %v\n", r.flood.rps, us(r.flood.cpuPer), r.flood.statuses)
	fmt.Fprintf(w, "- store operations meanwhile: view %.0f, update %.0f, scan_access_keys %.0f, record_usage %.0f\n",
		r.flood.storeOps["view"], r.flood.storeOps["update"], r.flood.storeOps["scan_access_keys"], r.flood.storeOps["record_usage"])
	if len(r.pairs) > 0 {
		fwd := r.pairs[0]
		fmt.Fprintf(w, "- valid keys in the rounds above: %.0f req/s, server CPU %s µs/req\n", median(rpsOf(fwd.a)), us(medianDur(cpuOf(fwd.a))))
	}
	if r.invalid != nil {
		r.invalid.print(w, c)
	}
	r.printProfile(w)
}

// printProfile names the forward-auth CPU profile and the share of its
// samples the garbage collector took.
func (r *report) printProfile(w io.Writer) {
	if r.profile == "" {
		return
	}
	fmt.Fprintf(w, "\nCPU profile of latchkey under forward-auth load: %s (go tool pprof -top %s)\n", r.profile, r.profile)
	if gc, err := gcShare(r.profile); err != nil {
		fmt.Fprintf(w, "GC share of that profile: %v\n", err)
	} else {
		fmt.Fprintf(w, "GC share of that profile: %s (target: at most 2%%)\n", gc)
	}
}

func opsString(m map[string]float64) string {
	return fmt.Sprintf("view %.0f, update %.0f, scan_access_keys %.0f, record_usage %.0f",
		m["view"], m["update"], m["scan_access_keys"], m["record_usage"])
}

func (r *invalidResult) print(w io.Writer, c config) {
	fmt.Fprintln(w, "## Invalid keys beside valid ones (GET /v1/authorize, latchkey serve --guard-failures 0)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Each kind alone, closed loop (Go client), once a round, in a different order each round:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| round | kind | req/s | server CPU µs/req | CPU / the round's valid key's | store operations meanwhile | in an idle window of the same length before |")
	fmt.Fprintln(w, "| ---: | --- | ---: | ---: | ---: | --- | --- |")
	valid := r.validCPU()
	for _, k := range r.kinds {
		ratio := "-" // no valid keys measured in the round
		if x, ok := costRatio(k, valid); ok {
			ratio = fmt.Sprintf("%.2f", x)
		}
		fmt.Fprintf(w, "| %d | %s | %.0f | %s | %s | %s | %s |\n", k.round+1, k.name, k.rps, us(k.cpuPer), ratio,
			opsString(k.storeOps), opsString(k.idleOps))
	}
	fmt.Fprintln(w)
	unknown, bad := median(r.costRatios(kindUnknown)), median(r.costRatios(kindBadChecksum))
	fmt.Fprintf(w, "invalid keys: server CPU per call against a valid key's: unknown well-formed keys %.2f, keys with a bad checksum %.2f (medians of the rounds; target: at most 1.00: %s)\n",
		unknown, bad, verdict(unknown <= 1 && bad <= 1))
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Valid keys alone and beside both floods (each at %.0f/s, open loop, on connections of their own), taking turns in a different order each round:\n\n", c.floodRate)
	fmt.Fprintf(w, "| round | valid p50 ms at %.0f/s alone | flooded | valid p99 ms alone | flooded | p99 flooded/alone | valid highest req/s alone | flooded | flooded/alone | floods' answers | store operations (fixed-rate run) |\n", c.invalidRate)
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
	var p99r, rpsr []float64
	for i, x := range r.rounds {
		a, f := x.alone.fixed, x.flood.fixed
		p99r = append(p99r, float64(f.p99)/float64(a.p99))
		rpsr = append(rpsr, x.flood.rps/x.alone.rps)
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %.2f | %.0f | %.0f | %.2f | %v | %s |\n", i+1, ms(a.p50), ms(f.p50), ms(a.p99), ms(f.p99),
			p99r[i], x.alone.rps, x.flood.rps, rpsr[i], x.flood.answers, opsString(x.flood.ops))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "invalid keys: valid keys' p99 flooded/alone = %.2f, highest rate flooded/alone = %.2f (medians of the rounds; target: at most 10%% slower)\n",
		median(p99r), median(rpsr))
	fmt.Fprintln(w)
	fmt.Fprintf(w, "The same valid keys beside the floods and beside a control of as many valid calls with other clients' keys (two loads at %.0f/s each, on connections of their own), in the same rounds:\n\n", c.floodRate)
	fmt.Fprintln(w, "| round | valid p99 ms flooded | beside the control | p99 flooded/control | valid highest req/s flooded | beside the control | flooded/control | the control's answers |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	var cp99r, crpsr []float64
	for i, x := range r.rounds {
		f, k := x.flood.fixed, x.ctrl.fixed
		cp99r = append(cp99r, float64(f.p99)/float64(k.p99))
		crpsr = append(crpsr, x.flood.rps/x.ctrl.rps)
		fmt.Fprintf(w, "| %d | %s | %s | %.2f | %.0f | %.0f | %.2f | %v |\n", i+1, ms(f.p99), ms(k.p99), cp99r[i], x.flood.rps, x.ctrl.rps, crpsr[i], x.ctrl.answers)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "invalid keys: against as many valid calls of other clients, valid keys' p99 flooded/control = %.2f, highest rate flooded/control = %.2f (medians of the rounds)\n",
		median(cp99r), median(crpsr))
	if err := r.checkFloods(); err != nil {
		fmt.Fprintf(w, "invalid keys: %v\n", err)
	} else {
		fmt.Fprintln(w, "invalid keys: the floods wrote no usage, scanned no keys, and read the store no more than the idle server did")
	}
}

func (r *revocationReport) print(w io.Writer, c config) {
	fmt.Fprintf(w, "# bench/load -revocation, %s\n\n", r.start.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "%s/%s, %d CPUs, %s; two latchkey serve replicas on one PostgreSQL database, %d keys (seeded in %s)\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), r.keys, r.seedTook.Round(time.Millisecond))
	fmt.Fprintf(w, "load average (1, 5, 15 min) before: %s; after: %s; took %s\n\n", r.loadBefore, r.loadAfter, r.end.Sub(r.start).Round(time.Second))
	fmt.Fprintf(w, "- forward-auth load meanwhile (open loop, %.0f/s asked of each): replica A %.0f/s, replica B %.0f/s, plus the poller's %.0f calls/s on B\n",
		r.rate, r.achievedA, r.achievedB, r.pollsB)
	fmt.Fprintf(w, "- PATCH /v1/access-keys/{id} on A, round trip: p50 %s ms, p99 %s ms\n", ms(percentile(r.patch, 50)), ms(percentile(r.patch, 99)))
	p99 := percentile(r.lags, 99)
	fmt.Fprintf(w, "- %d deactivations; from A's 200 to B's first refusal: p50 %s ms, p99 %s ms, max %s ms (%d refused by B before A's 200 arrived, counted as 0)\n",
		len(r.lags), ms(percentile(r.lags, 50)), ms(p99), ms(percentile(r.lags, 100)), r.beforeAck)
	if r.phase > 0 {
		fmt.Fprintf(w, "- waiting for a core (run queue, /proc schedstat) while the deactivations ran (%s):\n", r.phase.Round(time.Millisecond))
		for _, x := range r.waits {
			per := time.Duration(0)
			if x.runs > 0 {
				per = x.wait / time.Duration(x.runs)
			}
			fmt.Fprintf(w, "  - %s: %.0f ms per second in all, %s ms on average each time a thread ran (%d times)\n",
				x.name, 1000*x.wait.Seconds()/r.phase.Seconds(), ms(per), x.runs)
		}
	}
	if r.stages != nil {
		fmt.Fprintf(w, "- stages, from the replicas' /debug/changefeed (%d deactivations with both replicas' timings):\n\n", len(r.stages[0].d))
		fmt.Fprintln(w, "| stage | p50 ms | p90 ms | p99 ms | max ms |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: |")
		for _, st := range r.stages {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", st.name, ms(percentile(st.d, 50)), ms(percentile(st.d, 90)), ms(percentile(st.d, 99)), ms(percentile(st.d, 100)))
		}
	}
	fmt.Fprintf(w, "\nrevocation: p99 %s ms (target at most 100 ms: %s); each replica at least 5,000 verifications/s: %s\n",
		ms(p99), verdict(p99 <= 100*time.Millisecond), verdict(r.achievedA >= 5000 && r.achievedB >= 5000))
}

// p99Ratio is the median over rounds of A's p99 over B's p99 at rate,
// each ratio from one round (A and B measured one after the other).
func (p *pairResult) p99Ratio(rate float64) float64 {
	rs := p.rates[rate]
	if rs == nil {
		return 0
	}
	var out []float64
	for i := range min(len(rs[0]), len(rs[1])) {
		out = append(out, float64(rs[0][i].p99)/float64(rs[1][i].p99))
	}
	return median(out)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
