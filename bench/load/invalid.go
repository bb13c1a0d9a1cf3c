package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/latchkey/latchkey/keyformat"
)

// Invalid keys beside valid ones: a flood of unknown
// well-formed keys and of keys with a bad checksum, from other clients, at
// the same time as valid-key load. It runs on a latchkey serve of its own
// on the same database, started with --guard-failures 0: with the guard
// on, a flooding address is answered 429 after 50 failures without its
// key being looked at, which is cheaper still; without it every call of
// the flood is parsed, checksummed, hashed and looked up, the worst case.
//
//   - each kind alone, closed loop: rate and server CPU per call, and the
//     store operations meanwhile (there must be none for the floods),
//     once a round, in a different order each round (a host whose speed
//     drifts during the phase would otherwise favour the kind measured
//     first);
//   - valid keys at a fixed rate (-invalid-rate), alone and with both
//     floods at -flood-rate each: the valid calls' p50 and p99;
//   - valid keys at the highest rate, alone and with both floods at
//     -flood-rate each: the valid calls' rate.
//
// Both comparisons run a third time beside a control: two loads of valid
// calls at -flood-rate each, with keys the valid load does not use, on
// connections of their own like the floods.
// On a machine whose cores the server shares with the load generators,
// any extra calls slow the valid load; flooded against the control tells
// what invalid keys cost beside the same number of calls that are valid.
//
// Alone, flooded and the control take turns, in a different order each
// round; six rounds run every order once.

// The kinds of key measured alone, in kindResult.kind.
const (
	kindValid = iota
	kindUnknown
	kindBadChecksum
)

type kindResult struct {
	kind     int // kindValid, kindUnknown or kindBadChecksum
	round    int
	name     string
	rps      float64
	calls    int
	cpuPer   time.Duration
	storeOps map[string]float64
	// idleOps are the store operations in a window of the same length
	// with no load, just before: the server's background work (the
	// policy round reads keys a page at a time, usage compaction, the
	// webhook dispatcher), which the load's own operations are told from.
	idleOps map[string]float64
}

// besideResult is the valid load's, alone or beside other loads (the
// floods or the control).
type besideResult struct {
	fixed   rateResult         // at the fixed rate
	rps     float64            // at the highest rate
	answers map[int]int        // the other loads' answers during the fixed-rate run
	perSec  float64            // and how many a second
	ops     map[string]float64 // the store's operations during it
}

type invalidRound struct {
	alone, flood, ctrl besideResult
}

type invalidResult struct {
	kinds  []kindResult // every kind in every round, in the order measured
	rounds []invalidRound
}

// roundOrders are the orders in which the rounds measure three things
// (the kinds alone; alone, flooded and the control): over six rounds each
// comes first, second and third twice, and right after each of the others
// twice.
var roundOrders = [6][3]int{{0, 1, 2}, {1, 2, 0}, {2, 0, 1}, {0, 2, 1}, {2, 1, 0}, {1, 0, 2}}

// kindsAlone measures every kind alone once a round, in roundOrders, and
// returns the results in the order measured, each with its kind and round.
func kindsAlone(rounds int, measure func(round, kind int) (kindResult, error)) ([]kindResult, error) {
	var out []kindResult
	for round := range rounds {
		for _, kind := range roundOrders[round%len(roundOrders)] {
			k, err := measure(round, kind)
			if err != nil {
				return nil, err
			}
			k.kind, k.round = kind, round
			out = append(out, k)
		}
	}
	return out, nil
}

// validCPU returns the valid keys' server CPU per call alone, by round.
func (r *invalidResult) validCPU() map[int]time.Duration {
	valid := map[int]time.Duration{}
	for _, k := range r.kinds {
		if k.kind == kindValid {
			valid[k.round] = k.cpuPer
		}
	}
	return valid
}

// costRatio returns k's server CPU per call over the valid keys' in its
// round (valid, from validCPU); false when the round has none.
func costRatio(k kindResult, valid map[int]time.Duration) (float64, bool) {
	v := valid[k.round]
	if v <= 0 {
		return 0, false
	}
	return float64(k.cpuPer) / float64(v), true
}

// costRatios returns, for kind, its costRatio in each round that has one.
func (r *invalidResult) costRatios(kind int) []float64 {
	valid := r.validCPU()
	var out []float64
	for _, k := range r.kinds {
		if k.kind != kind {
			continue
		}
		if x, ok := costRatio(k, valid); ok {
			out = append(out, x)
		}
	}
	return out
}

// storeOpNames are the store operations counted by the flood phases.
var storeOpNames = []string{"view", "update", "scan_access_keys", "record_usage"}

// badChecksum returns a well-shaped secret whose checksum is wrong: its
// last character changed.
func badChecksum() (string, error) {
	s, err := keyformat.NewSecret()
	if err != nil {
		return "", err
	}
	last := s[len(s)-1]
	repl := keyformat.Alphabet[0]
	if last == repl {
		repl = keyformat.Alphabet[1]
	}
	return s[:len(s)-1] + string(repl), nil
}

func secrets(n int, mk func() (string, error)) ([]string, error) {
	out := make([]string, n)
	for i := range out {
		s, err := mk()
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

func opsDelta(before, after map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for _, op := range storeOpNames {
		d[op] = storeOps(after, op) - storeOps(before, op)
	}
	return d
}

// controlSet picks up to n secrets of all spread evenly over them, none of
// them in hot: halfway between hotSet's picks.
func controlSet(all, hot []string, n int) []string {
	in := make(map[string]bool, len(hot))
	for _, s := range hot {
		in[s] = true
	}
	out := make([]string, 0, n)
	for i := range n {
		if j := (2*i + 1) * len(all) / (2 * n); j < len(all) && !in[all[j]] {
			out = append(out, all[j])
		}
	}
	return out
}

// invalidKeys runs the phase on lk, with the valid load over hot and the
// control over other keys of all.
func invalidKeys(ctx context.Context, lk *process, hot, all []string, c config) (*invalidResult, error) {
	unknown, err := secrets(4096, keyformat.NewSecret)
	if err != nil {
		return nil, err
	}
	bad, err := secrets(4096, badChecksum)
	if err != nil {
		return nil, err
	}
	valid := target{"valid keys", lk.addr(), lk, authorizeReqs(hot), 200}
	floods := []target{
		{"unknown well-formed keys", lk.addr(), lk, authorizeReqs(unknown), 401},
		{"keys with a bad checksum", lk.addr(), lk, authorizeReqs(bad), 401},
	}
	// The control: as many calls as the floods make, with valid keys of
	// other clients, none of them the valid load's, spread over the index
	// like its keys, each load with keys of its own like each flood.
	others := controlSet(all, hot, len(hot))
	if len(others) < 2 {
		return nil, fmt.Errorf("%d keys leave too few beside the %d in use for the control", len(all), len(hot))
	}
	half := len(others) / 2
	control := []target{
		{"valid keys of other clients (control)", lk.addr(), lk, authorizeReqs(others[:half]), 200},
		{"valid keys of other clients (control)", lk.addr(), lk, authorizeReqs(others[half:]), 200},
	}
	for _, t := range append(append([]target{valid}, floods...), control...) {
		if err := preflight(t, nil); err != nil {
			return nil, err
		}
		closedLoop(ctx, t.addr, c.conns, c.warmup, t.mk)
	}
	res := &invalidResult{}
	// The kinds alone with the Go client, which sees every status (wrk
	// counts 401 as an error).
	goClient := c
	goClient.wrk = ""
	kinds := [...]target{kindValid: valid, kindUnknown: floods[0], kindBadChecksum: floods[1]}
	res.kinds, err = kindsAlone(c.rounds, func(round, kind int) (kindResult, error) {
		t := kinds[kind]
		c.logf("invalid keys alone: round %d of %d, %s (load average %s)", round+1, c.rounds, t.name, loadavg())
		idle0, err := usageSettled(lk, c.settle)
		if err != nil {
			return kindResult{}, err
		}
		time.Sleep(c.duration)
		before, err := scrape(lk.url)
		if err != nil {
			return kindResult{}, err
		}
		r, err := measureClosed(ctx, t, goClient)
		if err != nil {
			return kindResult{}, err
		}
		after, err := scrape(lk.url)
		if err != nil {
			return kindResult{}, err
		}
		return kindResult{name: t.name, rps: r.rps, calls: int(r.rps * c.duration.Seconds()), cpuPer: r.cpuPer,
			storeOps: opsDelta(before, after), idleOps: opsDelta(idle0, before)}, nil
	})
	if err != nil {
		return nil, err
	}

	// flooding runs the loads of ts (the floods or the control) at
	// c.floodRate each until stop is called, and returns their answers
	// and how long they ran.
	flooding := func(ts []target) (stop func() (*outcome, time.Duration)) {
		fctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		outs := make([]*outcome, len(ts))
		start := time.Now()
		for i, t := range ts {
			wg.Go(func() { outs[i], _ = openLoop(fctx, t.addr, rateConns/2, c.floodRate, time.Hour, t.mk) })
		}
		time.Sleep(200 * time.Millisecond) // let the floods get going
		return func() (*outcome, time.Duration) {
			cancel()
			wg.Wait()
			merged := &outcome{}
			for _, o := range outs {
				merged.add(o.statuses, o.errs, o.firstErr)
			}
			return merged, time.Since(start)
		}
	}
	// beside measures the valid load at the fixed rate, then at the
	// highest rate, beside the loads of ts (none: alone), called name,
	// which must be answered want and nothing else.
	beside := func(name string, ts []target, want int) (b besideResult, err error) {
		under := func(phase string, measure func() error) (*outcome, time.Duration, error) {
			if len(ts) == 0 {
				return nil, 0, measure()
			}
			stop := flooding(ts)
			err := measure()
			o, took := stop()
			if err == nil {
				if err = o.check(want); err != nil {
					err = fmt.Errorf("%s, during the %s run: %w", name, phase, err)
				}
			}
			return o, took, err
		}
		before, err := scrape(lk.url)
		if err != nil {
			return
		}
		o, took, err := under("fixed-rate", func() (err error) {
			b.fixed, err = measureRate(ctx, valid, c.invalidRate, c.rateDur)
			return err
		})
		if err != nil {
			return
		}
		if o != nil {
			b.answers, b.perSec = o.statuses, float64(o.total())/took.Seconds()
		}
		after, err := scrape(lk.url)
		if err != nil {
			return
		}
		b.ops = opsDelta(before, after)
		_, _, err = under("highest-rate", func() error {
			closed, err := measureClosed(ctx, valid, c)
			b.rps = closed.rps
			return err
		})
		return
	}
	// The three in every order, one a round (roundOrders).
	for r := range c.rounds {
		c.logf("invalid keys: round %d of %d (load average %s)", r+1, c.rounds, loadavg())
		var ir invalidRound
		for _, which := range roundOrders[r%len(roundOrders)] {
			var err error
			switch which {
			case 0:
				ir.alone, err = beside("alone", nil, 0)
			case 1:
				ir.flood, err = beside("the floods", floods, 401)
			case 2:
				ir.ctrl, err = beside("the control", control, 200)
			}
			if err != nil {
				return nil, err
			}
		}
		res.rounds = append(res.rounds, ir)
	}
	return res, nil
}

// checkFloods returns an error when a flood reached the store: any usage
// write or key scan, or more reads than the idle window before saw plus
// one per 10,000 calls (the background's pace varies; a store read per
// call, or per hundred, would show as thousands).
func (r *invalidResult) checkFloods() error {
	for _, k := range r.kinds {
		if k.kind == kindValid {
			continue
		}
		s := k.storeOps
		if s["scan_access_keys"] != 0 || s["record_usage"] != 0 || s["view"] > k.idleOps["view"]+float64(k.calls)/10000 {
			return fmt.Errorf("%s reached the store: %v in %d calls (idle window before: %v)", k.name, s, k.calls, k.idleOps)
		}
	}
	return nil
}
