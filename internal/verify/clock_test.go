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
	if d := c.now().Sub(time.Now()); d < 59*time.Minute {
		t.Fatalf("before the refresh: %v ahead of time.Now, want the stale hour", d)
	}
	c.next.Store(0) // the refresh is due
	if d := c.now().Sub(time.Now()); d < -time.Millisecond || d > time.Millisecond {
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
	if d := v.Now().Sub(time.Now()); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("New's clock is %v from time.Now", d)
	}
}
