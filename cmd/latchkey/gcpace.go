package main

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The collector's pacing for a server whose live heap is mostly the key
// index. Go's default (GOGC=100) lets the heap grow to twice the live heap
// before it collects, so any steady allocation (a resync decoding every
// key, the usage flush, the calls themselves) takes the process's memory
// to about twice the index: 2.5 to 4.9 GiB for ten million keys. The
// index is pointer-free, so a collection scans almost nothing whatever
// the number of keys, and collecting more often costs little. paceGC
// keeps the heap's headroom at gcHeadroom of the live heap (GOGC=25), but
// never less than gcMinHeadroom: up to about a million keys (a live heap
// under 256 MiB) that is Go's default, whose collections already cost
// under 2% of the CPU under load there, and a small index is not collected
// dozens of times a second for nothing. A smaller headroom at ten
// million keys (32 MiB, GOGC=3) was tried and left: a collection of a
// 1.4 GiB heap still costs about 0.1 s of CPU (sweeping its spans), and
// re-adding every key took 114 collections and 14.4 s of collector CPU
// against 13 and 0.8 s (docs/benchmarks.md, "Collector pacing at ten
// million keys").
const (
	gcHeadroom    = 25        // percent of the live heap
	gcMinHeadroom = 256 << 20 // bytes
	// Every second: the pacing starts before the index loads (serve.go)
	// and must follow the live heap as it grows, or the load's garbage
	// grows with Go's default headroom of 100%.
	gcPaceEvery = time.Second
)

// gcPercent is the GOGC value that gives a live heap of live bytes the
// headroom above: gcHeadroom, or more for a heap under
// gcMinHeadroom*100/gcHeadroom, up to Go's default of 100.
func gcPercent(live uint64) int {
	if live == 0 {
		return 100
	}
	p := int(uint64(gcMinHeadroom) * 100 / live)
	return max(gcHeadroom, min(p, 100))
}

// paceGC sets the collector's percentage from the live heap every
// gcPaceEvery until ctx ends, unless the operator set GOGC or GOMEMLIMIT
// (theirs is kept). It returns at once in that case.
func paceGC(ctx context.Context, log *slog.Logger) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	last := 100
	t := time.NewTicker(gcPaceEvery)
	defer t.Stop()
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			if p := gcPercent(sample[0].Value.Uint64()); p != last {
				debug.SetGCPercent(p)
				log.Debug("collector pacing", "gogc", p, "live_heap_bytes", sample[0].Value.Uint64())
				last = p
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
