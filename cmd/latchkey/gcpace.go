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
// key, the usage flush, the policy round, the calls themselves) takes the
// process's memory to about twice the index: 2.5 to 4.9 GiB for ten
// million keys. The index is pointer-free, so a collection scans almost
// nothing whatever the number of keys, and collecting more often costs
// little. paceGC keeps the heap's headroom (how far it may grow above the
// live heap before the next collection) at gcMaxHeadroom up to a live heap
// of gcMaxHeadroom (Go's default there: up to about a million keys, whose
// collections already cost under 2% of the CPU under load, and a small
// index is not collected dozens of times a second for nothing), shrinking
// linearly to gcMinHeadroom at a live heap of gcLargeHeap and staying
// there: at ten million keys (a live heap of about 1.4 GiB) that is GOGC=3,
// so the process holds the index and little more.
const (
	gcMaxHeadroom = 256 << 20 // bytes, up to a live heap of as much
	gcMinHeadroom = 32 << 20  // bytes, from a live heap of gcLargeHeap
	gcLargeHeap   = 1 << 30   // bytes
	// Every second: the pacing starts before the index loads, and must
	// follow the live heap as it grows, or the load's garbage grows with
	// Go's default headroom of 100%.
	gcPaceEvery = time.Second
)

// gcHeadroom is the headroom in bytes above a live heap of live bytes.
func gcHeadroom(live uint64) uint64 {
	switch {
	case live <= gcMaxHeadroom:
		return gcMaxHeadroom
	case live >= gcLargeHeap:
		return gcMinHeadroom
	}
	return gcMaxHeadroom - (live-gcMaxHeadroom)*(gcMaxHeadroom-gcMinHeadroom)/(gcLargeHeap-gcMaxHeadroom)
}

// gcPercent is the GOGC value that gives a live heap of live bytes
// gcHeadroom(live) of headroom, rounded up, between 1 and Go's default of
// 100.
func gcPercent(live uint64) int {
	if live == 0 {
		return 100
	}
	p := int((gcHeadroom(live)*100 + live - 1) / live)
	return max(1, min(p, 100))
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
