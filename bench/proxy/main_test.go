package main

import (
	"strings"
	"testing"
	"time"
)

// TestRun runs the benchmark briefly, so that it keeps working: both
// proxies answer every call, and the report has its table and ratio.
// Rounds of half a second: on a loaded machine a race build completed no
// call at all in a round of 100ms.
func TestRun(t *testing.T) {
	c := config{rounds: 2, duration: 500 * time.Millisecond, warmup: 100 * time.Millisecond, concurrency: 4, bodyBytes: 64}
	res, err := run(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.latchkey) != 2 || len(res.plain) != 2 {
		t.Fatalf("rounds: %v %v", res.latchkey, res.plain)
	}
	for _, r := range append(res.latchkey, res.plain...) {
		if r <= 0 {
			t.Errorf("a round measured %v req/s", r)
		}
	}
	var b strings.Builder
	res.print(&b, c)
	for _, want := range []string{"| round |", "**median**", "latchkey / plain = "} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
