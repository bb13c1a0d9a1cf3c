package main

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// gcFuncs are the roots of the collector's CPU time in a CPU profile: the
// background mark workers (dedicated, fractional and idle), the marking
// an allocating goroutine is made to assist with, and the stop-the-world
// phases' work (the mark termination on the system stack, sweeping
// started by the allocator is in mallocgc and counted as the allocation's).
var gcFuncs = []string{"runtime.gcBgMarkWorker", "runtime.gcAssistAlloc", "runtime.gcMarkTermination", "runtime.bgsweep", "runtime.bgscavenge"}

// gcShare reads a CPU profile with go tool pprof and returns the share of
// its samples under gcFuncs (each function's cumulative share; they do not
// call one another), as "1.2% (runtime.gcBgMarkWorker 1.0%, ...)".
func gcShare(file string) (string, error) {
	out, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodefraction=0", "-edgefraction=0", file).Output()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %v", err)
	}
	return gcShareOf(string(out))
}

// gcShareOf is gcShare on go tool pprof -top -cum's output.
func gcShareOf(top string) (string, error) {
	var total float64
	var parts []string
	for _, line := range strings.Split(top, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		for _, fn := range gcFuncs {
			if f[5] != fn {
				continue
			}
			pct, err := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
			if err != nil {
				return "", fmt.Errorf("pprof line %q: %v", line, err)
			}
			total += pct
			parts = append(parts, fmt.Sprintf("%s %.2f%%", fn, pct))
		}
	}
	if len(parts) == 0 {
		return "0% (no collector function in the profile)", nil
	}
	return fmt.Sprintf("%.2f%% (%s)", total, strings.Join(parts, ", ")), nil
}
