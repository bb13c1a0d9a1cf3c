package verify

import (
	"math"
	"testing"
	"time"
)

// wallNow agrees with time.Now to well within a millisecond and never
// goes back while the wall clock does not.
func TestWallNowFollowsTimeNow(t *testing.T) {
	prev := wallNow()
	deadline := time.Now().Add(3 * clockRecheck)
	for n := 0; time.Now().Before(deadline) || n < 1000; n++ {
		before := time.Now()
		got := wallNow()
		after := time.Now()
		// The clocks differ by the time between their reads and the
		// rounding of the offset, which are far below this.
		const slack = time.Millisecond
		if got.Before(before.Add(-slack)) || got.After(after.Add(slack)) {
			t.Fatalf("wallNow %v outside [%v, %v]", got, before, after)
		}
		if got.Before(prev) {
			t.Fatalf("wallNow went back: %v after %v", got, prev)
		}
		prev = got
	}
}

// A step of the wall clock shows in wallNow's readings at the next
// refresh, at most clockRecheck later: simulated by a stale offset.
func TestWallNowFollowsStep(t *testing.T) {
	c := newMonoClock()
	c.next.Store(math.MaxInt64) // no refresh yet, however slow this host
	c.off.Add(int64(time.Hour)) // as if the wall clock had been stepped back an hour since
	if d := time.Until(c.now()); d < 59*time.Minute {
		t.Fatalf("before the refresh: %v ahead of time.Now, want the stale hour", d)
	}
	c.next.Store(0) // the refresh is due
	if d := time.Until(c.now()); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("after the refresh: %v from time.Now", d)
	}
	if got := c.next.Load() - int64(time.Since(c.base)); got <= 0 || got > int64(clockRecheck) {
		t.Fatalf("next refresh in %v, want within %v", time.Duration(got), clockRecheck)
	}
}

func TestWallNowHasNoMonotonicReading(t *testing.T) {
	if got := wallNow(); got != got.Round(0) {
		t.Fatalf("wallNow() = %v carries a monotonic reading", got)
	}
}

func TestNewUsesWallNow(t *testing.T) {
	v := New(NewIndex(), nil)
	if v.Now == nil {
		t.Fatal("New left Now nil")
	}
	if d := time.Until(v.Now()); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("New's clock is %v from time.Now", d)
	}
}

// A refresh that finds a slightly smaller offset keeps the larger one
// (the smaller comes from a delay between time.Now's two reads), and
// takes a larger one at once.
func TestWallNowRefreshJitter(t *testing.T) {
	tests := []struct {
		name  string
		shift time.Duration // added to the offset before the refresh
		keep  bool          // the refresh keeps the shifted offset
	}{
		{"slightly ahead: jitter, kept", clockJitter / 2, true},
		{"far ahead: a step back of the wall clock, followed", time.Second, false},
		{"behind: followed", -10 * time.Millisecond, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newMonoClock()
			c.next.Store(math.MaxInt64)
			c.refresh()
			want := c.off.Load() + int64(tc.shift)
			c.off.Store(want)
			c.refresh()
			got := c.off.Load()
			if tc.keep && got != want {
				t.Fatalf("offset moved by %v, want kept", time.Duration(got-want))
			}
			// followed: back to the clock's own offset, want - shift,
			// give or take the delays of the reads
			if d := time.Duration(got - (want - int64(tc.shift))); !tc.keep && (d > tc.shift.Abs()/2 || d < -tc.shift.Abs()/2) {
				t.Fatalf("offset %v from the clock's after the refresh, want followed", d)
			}
		})
	}
}
