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
// million keys. paceGC keeps the heap's headroom (how far it may grow
// above the live heap before the next collection) at gcMaxHeadroom up to
// a live heap of as much (Go's default there: up to about a million keys,
// where the collector's share under forward-auth load is 1.42% with it and
// 3.21% with 64 MiB), shrinking linearly to gcMinHeadroom at a live heap
// of gcLargeHeap and staying there: at ten million keys (a live heap of
// about 1.4 GiB) that is GOGC=10, so the process holds the index and
// little more through a full resync and a policy round (RSS up 6%, where
// a headroom of 25% of the live heap took it up 20%).
//
// A smaller floor saves little memory for much CPU: a policy round at
// ten million keys makes about 100 MB of garbage a second, and with 32
// MiB (GOGC=3) serve collected 178 times a minute against 43, took 44.8 s
// of CPU a minute against 35.5, and verification's p99 was 37.5 ms
// against 29.7, to hold 152 bytes a key against 161 (docs/benchmarks.md,
// "The collector's floor at ten million keys, in serve").
//
// A collection's cost does not grow with the index: the index holds no
// pointer a key (internal/verify's TestIndexPointerFree), so a 5M-key
// index (668 MiB) is 550 KiB of scannable heap in about 3,400 objects,
// and a forced collection took 8 ms of process CPU there against 5 to 7
// ms at 1M (getrusage; BenchmarkIndexCollect). The tenth of a second a
// cycle seemed to cost at 10M was runtime/metrics' /cpu/classes/gc
// estimate on a host at load 20 to 40, which counts the collector's
// workers' time on their Ps, descheduled by the host or idle, not the
// CPU the process used (docs/benchmarks.md, "Pointers at ten million
// keys").
const (
	gcMaxHeadroom = 256 << 20 // bytes, up to a live heap of as much
	gcMinHeadroom = 128 << 20 // bytes, from a live heap of gcLargeHeap
	gcLargeHeap   = 1 << 30   // bytes
	// Every second: the pacing starts before the index loads (serve.go)
	// and must follow the live heap as it grows, or the load's garbage
	// grows with Go's default headroom of 100%.
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
