package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// gcTrace adds up the collections a serve process reports with
// GODEBUG=gctrace=1 (one line per cycle on its standard error):
//
//	gc 12 @3.456s 5%: 0.012+1.2+0.003 ms clock, 0.024+0.5/1.1/0.3+0.006 ms cpu, 1400->1410->1390 MB, 1450 MB goal, 0 MB stacks, 0 MB globals, 2 P
//
// The CPU fields are the two pauses and the mark phase's assists,
// background (dedicated and fractional) and idle workers. Sweeping is not
// in them: it is done by the allocating goroutines and a background
// sweeper and shows only in the process's CPU.
type gcTrace struct {
	mu                         sync.Mutex
	cycles                     int
	pause, assist, bg, idle    float64 // ms of CPU
	lastLive, lastGoal, maxEnd int     // MB
}

var gcLineRE = regexp.MustCompile(`^gc \d+ @\S+ \d+%: \S+ ms clock, ([\d.]+)\+([\d.]+)/([\d.]+)/([\d.]+)\+([\d.]+) ms cpu, (\d+)->(\d+)->(\d+) MB, (\d+) MB goal`)

// line adds one line of serve's output if it is a gctrace line.
func (g *gcTrace) line(l string) bool {
	if !strings.HasPrefix(l, "gc ") {
		return false
	}
	m := gcLineRE.FindStringSubmatch(l)
	if m == nil {
		return false
	}
	f := func(i int) float64 { v, _ := strconv.ParseFloat(m[i], 64); return v }
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cycles++
	g.pause += f(1) + f(5)
	g.assist += f(2)
	g.bg += f(3)
	g.idle += f(4)
	g.maxEnd = max(g.maxEnd, n(7))
	g.lastLive, g.lastGoal = n(8), n(9)
	return true
}

// take returns what was added since the last take, as a line, and starts
// over.
func (g *gcTrace) take() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := "collector: no cycles"
	if g.cycles > 0 {
		total := g.pause + g.assist + g.bg + g.idle
		s = fmt.Sprintf("collector: %d cycles, mark CPU %.0f ms (%.1f ms a cycle: assist %.0f, background %.0f, idle %.0f, pauses %.1f); heap at most %d MB, last live %d MB, goal %d MB",
			g.cycles, total, total/float64(g.cycles), g.assist, g.bg, g.idle, g.pause, g.maxEnd, g.lastLive, g.lastGoal)
	}
	g.cycles, g.pause, g.assist, g.bg, g.idle, g.maxEnd = 0, 0, 0, 0, 0, 0
	return s
}
