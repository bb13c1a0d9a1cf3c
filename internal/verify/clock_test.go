package verify

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
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

// New leaves Now unset: decisions read wallNow, and usage the coarse clock.
func TestNewUsesWallNow(t *testing.T) {
	v := New(NewIndex(), nil)
	if v.Now != nil {
		t.Fatal("New set Now: every decision would read the clock")
	}
	if d := time.Until(v.now()); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("New's clock is %v from time.Now", d)
	}
}

// The coarse clock is never ahead of the wall clock, lags it by little,
// and moves while it is read.
func TestCoarseClockFollowsTime(t *testing.T) {
	var c coarseClock
	first := c.now()
	if d := time.Since(time.Unix(0, first)); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("the first reading (which reads the clock) is %v from time.Now", d)
	}
	prev, moved := first, 0
	for deadline := time.Now().Add(20 * coarseTick); time.Now().Before(deadline); time.Sleep(coarseTick / 10) {
		got := c.now()
		lag := time.Since(time.Unix(0, got))
		// Ahead by more than the rounding of wallNow's offset would be a
		// fault; behind by a second would mean the ticks stopped (a loaded
		// CI host delays them by milliseconds, not by that).
		if lag < -time.Millisecond || lag > time.Second {
			t.Fatalf("coarse time lags time.Now by %v", lag)
		}
		if got < prev {
			t.Fatalf("coarse time went back by %v", time.Duration(prev-got))
		}
		if got != prev {
			moved++
		}
		prev = got
	}
	if moved < 2 {
		t.Fatalf("coarse time moved %d times in %v of reading, want a move every %v", moved, 20*coarseTick, coarseTick)
	}
}

// The coarse clock's goroutine ends when nobody reads the time, and the
// next reading starts it again.
func TestCoarseClockStopsWhenIdle(t *testing.T) {
	var c coarseClock
	c.now()
	if !c.running.Load() {
		t.Fatal("the first reading did not start the ticks")
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.running.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the ticks still run 5s after the last reading")
		}
		time.Sleep(coarseTick)
	}
	if c.t.Load() != 0 {
		t.Fatal("stopped, but a reader would still take the last tick's time")
	}
	got := c.now()
	if d := time.Since(time.Unix(0, got)); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("the reading after a stop is %v from time.Now", d)
	}
	if !c.running.Load() {
		t.Fatal("the reading after a stop did not start the ticks again")
	}
}

// With the default clock, expiry is judged on the time read for the
// decision, not on the coarse clock's: a key that expired a moment ago is
// EXPIRED although the coarse time (which the plain key's calls keep
// running) is still before its expiry.
func TestDefaultClockJudgesExpiryExactly(t *testing.T) {
	ix := NewIndex()
	v := New(ix, nil)
	plain, err := keyformat.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := keyformat.NewID()
	ix.Put(&latchkey.AccessKey{ID: id, Account: "default", Application: "app", Status: latchkey.StatusActive, SecretDigest: keyformat.Sum(plain)})
	for i := range 50 {
		if c := v.Verify(&Request{Secret: plain}).Code; c != latchkey.CodeValid {
			t.Fatalf("plain key: %s", c)
		}
		sec, err := keyformat.NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		id, _ := keyformat.NewID()
		at := time.Now()
		ix.Put(&latchkey.AccessKey{ID: id, Account: "default", Application: "app", Status: latchkey.StatusActive, SecretDigest: keyformat.Sum(sec), ExpiresAt: &at})
		if c := v.Verify(&Request{Secret: sec}).Code; c != latchkey.CodeExpired {
			t.Fatalf("round %d: a key that expired at %v is %s at %v (coarse time %v)", i, at, c, time.Now(), time.Unix(0, usageClock.t.Load()))
		}
	}
}

// With the default clock, a call whose decision read no clock records
// its usage at the coarse time, and one whose decision read it at that.
func TestDefaultClockUsageTimes(t *testing.T) {
	ix := NewIndex()
	v := New(ix, nil)
	later := time.Now().Add(time.Hour)
	keys := map[string]*time.Time{"plain": nil, "expiring": &later}
	for name, exp := range keys {
		t.Run(name, func(t *testing.T) {
			sec, err := keyformat.NewSecret()
			if err != nil {
				t.Fatal(err)
			}
			id, _ := keyformat.NewID()
			ix.Put(&latchkey.AccessKey{ID: id, Account: "default", Application: "app", Status: latchkey.StatusActive, SecretDigest: keyformat.Sum(sec), ExpiresAt: exp})
			before := time.Now()
			if c := v.Verify(&Request{Secret: sec, IP: netip.MustParseAddr("192.0.2.7"), UserAgent: "curl"}).Code; c != latchkey.CodeValid {
				t.Fatalf("code %s", c)
			}
			after := time.Now()
			u := ix.PendingUsage(id)
			if u.Uses != 1 || u.LastUsed == nil || u.LastUsed.IP != "192.0.2.7" || u.LastUsed.UserAgent != "curl" {
				t.Fatalf("pending usage %+v", u)
			}
			low := before.Add(-time.Millisecond) // wallNow's rounding
			if exp == nil {
				low = before.Add(-time.Second) // the coarse clock's lag, on a loaded host
			}
			if at := u.LastUsed.At; at.Before(low) || at.After(after.Add(time.Millisecond)) {
				t.Fatalf("last used at %v, want within [%v, %v]", at, low, after)
			}
		})
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
