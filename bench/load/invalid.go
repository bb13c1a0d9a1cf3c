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
//     store operations meanwhile (there must be none for the floods);
//   - valid keys at a fixed rate (-invalid-rate), alone and with both
//     floods at -flood-rate each: the valid calls' p50 and p99;
//   - valid keys at the highest rate, alone and with both floods at
//     -flood-rate each: the valid calls' rate.
//
// Both comparisons run a third time beside a control: two loads of valid
// calls at -flood-rate each, on connections of their own like the floods.
// On a machine whose cores the server shares with the load generators,
// any extra calls slow the valid load; flooded against the control tells
// what invalid keys cost beside the same number of calls that are valid.
//
// Alone, flooded and the control alternate, round by round.

type kindResult struct {
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

type invalidRound struct {
	aloneFixed, floodFixed, ctrlFixed rateResult // valid keys at the fixed rate
	aloneRPS, floodRPS, ctrlRPS       float64    // valid keys at the highest rate
	floodOps                          map[string]float64
	floodStatuses                     map[int]int // the floods' answers during the fixed-rate run
	ctrlStatuses                      map[int]int // the control's answers during its fixed-rate run
}

type invalidResult struct {
	kinds  []kindResult
	rounds []invalidRound
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

func invalidKeys(ctx context.Context, lk *process, hot []string, c config) (*invalidResult, error) {
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
	// The control: as many calls as the floods make, with valid keys.
	control := []target{
		{"valid keys (control)", lk.addr(), lk, authorizeReqs(hot), 200},
		{"valid keys (control)", lk.addr(), lk, authorizeReqs(hot), 200},
	}
	for _, t := range append([]target{valid}, floods...) {
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
	for _, t := range append([]target{valid}, floods...) {
		idle0, err := usageSettled(lk, c.settle)
		if err != nil {
			return nil, err
		}
		time.Sleep(c.duration)
		before, err := scrape(lk.url)
		if err != nil {
			return nil, err
		}
		r, err := measureClosed(ctx, t, goClient)
		if err != nil {
			return nil, err
		}
		after, err := scrape(lk.url)
		if err != nil {
			return nil, err
		}
		res.kinds = append(res.kinds, kindResult{name: t.name, rps: r.rps, calls: int(r.rps * c.duration.Seconds()), cpuPer: r.cpuPer,
			storeOps: opsDelta(before, after), idleOps: opsDelta(idle0, before)})
	}

	// flooding runs the loads of ts (the floods or the control) at
	// c.floodRate each until stop is called, and returns their answers.
	flooding := func(ts []target) (stop func() map[int]int) {
		fctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		outs := make([]*outcome, len(ts))
		for i, t := range ts {
			wg.Go(func() { outs[i], _ = openLoop(fctx, t.addr, rateConns/2, c.floodRate, time.Hour, t.mk) })
		}
		time.Sleep(200 * time.Millisecond) // let the floods get going
		return func() map[int]int {
			cancel()
			wg.Wait()
			st := map[int]int{}
			for _, o := range outs {
				for s, n := range o.statuses {
					st[s] += n
				}
			}
			return st
		}
	}
	for r := range c.rounds {
		c.logf("invalid keys: round %d of %d (load average %s)", r+1, c.rounds, loadavg())
		var ir invalidRound
		if ir.aloneFixed, err = measureRate(ctx, valid, c.invalidRate, c.rateDur); err != nil {
			return nil, err
		}
		before, err := scrape(lk.url)
		if err != nil {
			return nil, err
		}
		stop := flooding(floods)
		ir.floodFixed, err = measureRate(ctx, valid, c.invalidRate, c.rateDur)
		ir.floodStatuses = stop()
		if err != nil {
			return nil, err
		}
		after, err := scrape(lk.url)
		if err != nil {
			return nil, err
		}
		ir.floodOps = opsDelta(before, after)
		stop = flooding(control)
		ir.ctrlFixed, err = measureRate(ctx, valid, c.invalidRate, c.rateDur)
		ir.ctrlStatuses = stop()
		if err != nil {
			return nil, err
		}

		alone, err := measureClosed(ctx, valid, c)
		if err != nil {
			return nil, err
		}
		stop = flooding(floods)
		flooded, err := measureClosed(ctx, valid, c)
		stop()
		if err != nil {
			return nil, err
		}
		stop = flooding(control)
		ctrl, err := measureClosed(ctx, valid, c)
		stop()
		if err != nil {
			return nil, err
		}
		ir.aloneRPS, ir.floodRPS, ir.ctrlRPS = alone.rps, flooded.rps, ctrl.rps
		res.rounds = append(res.rounds, ir)
	}
	return res, nil
}

// checkFloods returns an error when a flood reached the store: any usage
// write or key scan, or more reads than the idle window before saw plus
// one per 10,000 calls (the background's pace varies; a store read per
// call, or per hundred, would show as thousands).
func (r *invalidResult) checkFloods() error {
	for _, k := range r.kinds[1:] {
		s := k.storeOps
		if s["scan_access_keys"] != 0 || s["record_usage"] != 0 || s["view"] > k.idleOps["view"]+float64(k.calls)/10000 {
			return fmt.Errorf("%s reached the store: %v in %d calls (idle window before: %v)", k.name, s, k.calls, k.idleOps)
		}
	}
	return nil
}
