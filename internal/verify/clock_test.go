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

// within fails t unless the Unix-nanosecond time got lies between before
// and after, give or take slack (wallNow's offset may round by less).
func within(t *testing.T, what string, got int64, before, after time.Time, slack time.Duration) {
	t.Helper()
	if g := time.Unix(0, got); g.Before(before.Add(-slack)) || g.After(after.Add(slack)) {
		t.Fatalf("%s: %v, want within [%v, %v]", what, g, before, after)
	}
}

// timeAt is a decision's clock that has read t.
func timeAt(t time.Time) *clock { return &clock{t: t, read: true} }

// New leaves Now unset: decisions read wallNow, and usage the coarse clock.
func TestNewLeavesNowUnset(t *testing.T) {
	v := New(NewIndex(), nil)
	if v.Now != nil {
		t.Fatal("New set Now: every decision would read the clock")
	}
	before := time.Now()
	got := v.now()
	within(t, "New's clock", got.UnixNano(), before, time.Now(), time.Millisecond)
}

// The coarse clock is never ahead of the wall clock, lags it by little,
// and moves while it is read.
func TestCoarseClockFollowsTime(t *testing.T) {
	c := newCoarseClock()
	before := time.Now()
	first := c.now()
	within(t, "the first reading (which reads the clock)", first, before, time.Now(), time.Millisecond)
	prev, moved := first, 0
	for deadline := time.Now().Add(20 * coarseTick); time.Now().Before(deadline); time.Sleep(coarseTick / 10) {
		got := c.now()
		// Ahead by more than the rounding of wallNow's offset would be a
		// fault; behind by a second would mean the ticks stopped (a loaded
		// CI host delays them by milliseconds, not by that).
		within(t, "a coarse reading", got, before.Add(-time.Second), time.Now(), time.Millisecond)
		if lag := time.Since(time.Unix(0, got)); lag > time.Second {
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

// The coarse clock's ticks stop when nobody reads the time, and the next
// reading starts them again, without allocating.
func TestCoarseClockStopsWhenIdle(t *testing.T) {
	c := newCoarseClock()
	c.now()
	if !c.running.Load() {
		t.Fatal("the first reading did not start the ticks")
	}
	for round := range 3 {
		// (Had the last reading not started the ticks again, t would be
		// 0 at once below, or the ticks would never stop.)
		deadline := time.Now().Add(5 * time.Second)
		for c.running.Load() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the ticks still run 5s after the last reading", round)
			}
			time.Sleep(coarseTick)
		}
		if c.t.Load() != 0 {
			t.Fatalf("round %d: stopped, but a reader would still take the last tick's time", round)
		}
		before := time.Now()
		var got int64
		warm := true // AllocsPerRun calls once before it counts: that call must not be the restart
		if n := testing.AllocsPerRun(1, func() {
			if warm {
				warm = false
				return
			}
			got = c.now()
		}); n != 0 {
			t.Fatalf("round %d: a reading that starts the ticks allocates %v times", round, n)
		}
		within(t, "the reading after a stop", got, before, time.Now(), time.Millisecond)
	}
}

// With the default clock, expiry is judged on the time read for the
// decision, not on the coarse clock's: a key that expired a moment ago is
// EXPIRED although the coarse time (which the plain key's calls keep
// running) may still be before its expiry.
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
		at := time.Now().Add(-time.Millisecond) // wallNow may lag time.Now by less than its offset's rounding
		ix.Put(&latchkey.AccessKey{ID: id, Account: "default", Application: "app", Status: latchkey.StatusActive, SecretDigest: keyformat.Sum(sec), ExpiresAt: &at})
		if c := v.Verify(&Request{Secret: sec}).Code; c != latchkey.CodeExpired {
			t.Fatalf("round %d: a key that expired at %v is %s at %v (coarse time %v)", i, at, c, time.Now(), time.Unix(0, usageClock.t.Load()))
		}
	}
}

// Which time each kind of call is recorded at: the coarse clock's (here
// one frozen an hour back, whose ticks never run) only for a valid call
// whose decision read no clock; the decision's time for a call that read
// it and for every refusal; the Verifier's own clock when it has one.
func TestUsageTimes(t *testing.T) {
	frozen := newCoarseClock()
	hourAgo := time.Now().Add(-time.Hour).Truncate(time.Microsecond).UnixNano() // stored to the microsecond
	frozen.t.Store(hourAgo)
	frozen.running.Store(true)
	fixed := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tracked := netip.MustParseAddr("198.51.100.9")
	later := time.Now().Add(time.Hour)
	tests := []struct {
		name      string
		key       func(*latchkey.AccessKey)
		ip        netip.Addr
		now       func() time.Time // the Verifier's Now
		want      latchkey.Code
		coarse    bool // recorded at the frozen coarse time
		fixedAt   bool // recorded at fixed
		wouldDeny bool // a would-deny is recorded too
	}{
		{"plain", nil, netip.MustParseAddr("192.0.2.7"), nil, latchkey.CodeValid, true, false, false},
		{"no address", nil, netip.Addr{}, nil, latchkey.CodeValid, true, false, false},
		{"with an expiry", func(k *latchkey.AccessKey) { k.ExpiresAt = &later }, netip.MustParseAddr("192.0.2.7"), nil, latchkey.CodeValid, false, false, false},
		{"from an address the guard tracks", nil, tracked, nil, latchkey.CodeValid, false, false, false},
		{"inactive: a refusal", func(k *latchkey.AccessKey) { k.Status = latchkey.StatusInactive }, netip.MustParseAddr("192.0.2.7"), nil, latchkey.CodeInactive, false, false, false},
		{"with a rate limit", func(k *latchkey.AccessKey) {
			k.Restrictions = &latchkey.Restrictions{RateLimit: &latchkey.RateLimit{PerSecond: 1e6, Burst: 1e6}}
		}, netip.MustParseAddr("192.0.2.7"), nil, latchkey.CodeValid, false, false, false},
		{"a report-only restriction would deny", func(k *latchkey.AccessKey) {
			k.ReportOnly = &latchkey.Restrictions{AllowedIPs: []string{"203.0.113.0/24"}}
		}, netip.MustParseAddr("192.0.2.7"), nil, latchkey.CodeValid, false, false, true},
		{"the Verifier's clock", nil, netip.MustParseAddr("192.0.2.7"), func() time.Time { return fixed }, latchkey.CodeValid, false, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ix := NewIndex()
			v := New(ix, nil)
			v.coarse, v.Now = frozen, tc.now
			v.Guard = NewGuard(100, 60)
			v.Guard.fail(tracked, timeAt(time.Now())) // tracked, not throttled
			sec, err := keyformat.NewSecret()
			if err != nil {
				t.Fatal(err)
			}
			id, _ := keyformat.NewID()
			k := &latchkey.AccessKey{ID: id, Account: "default", Application: "app", Status: latchkey.StatusActive, SecretDigest: keyformat.Sum(sec)}
			if tc.key != nil {
				tc.key(k)
			}
			ix.Put(k)
			before := time.Now()
			if c := v.Verify(&Request{Secret: sec, IP: tc.ip, UserAgent: "curl"}).Code; c != tc.want {
				t.Fatalf("code %s, want %s", c, tc.want)
			}
			after := time.Now()
			u := ix.PendingUsage(id)
			var ats []time.Time
			if u.LastRejected != nil {
				ats = append(ats, u.LastRejected.At)
			}
			if u.LastWouldDeny != nil {
				ats = append(ats, u.LastWouldDeny.At)
			}
			if u.LastUsed != nil {
				ats = append(ats, u.LastUsed.At)
			}
			if len(ats) == 0 || (tc.want == latchkey.CodeValid) != (u.LastUsed != nil) || (tc.want != latchkey.CodeValid) != (u.LastRejected != nil) {
				t.Fatalf("recorded %+v for a %s call", u, tc.want)
			}
			if tc.wouldDeny && u.LastWouldDeny == nil {
				t.Fatalf("no would-deny recorded: %+v", u)
			}
			for _, at := range ats {
				switch {
				case tc.coarse:
					if at.UnixNano() != hourAgo {
						t.Fatalf("recorded at %v, want the coarse clock's %v", at, time.Unix(0, hourAgo))
					}
				case tc.fixedAt:
					if !at.Equal(fixed) {
						t.Fatalf("recorded at %v, want the Verifier's clock's %v", at, fixed)
					}
				default:
					within(t, "recorded", at.UnixNano(), before, after, time.Millisecond)
				}
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

// BenchmarkClocks reads each clock a decision may read: what a key with a
// rate limit pays for its time on this host's clock source
// (/sys/devices/system/clocksource/clocksource0/current_clocksource), and
// what the coarse clock saves a decision that needs none.
func BenchmarkClocks(b *testing.B) {
	for _, c := range []struct {
		name string
		now  func() int64
	}{
		{"wallNow", func() int64 { return wallNow().UnixNano() }},
		{"time.Now", func() int64 { return time.Now().UnixNano() }},
		{"coarse", usageClock.now},
	} {
		b.Run(c.name, func(b *testing.B) {
			var last int64
			for b.Loop() {
				last = c.now()
			}
			if last <= 0 {
				b.Fatalf("read %d", last)
			}
		})
	}
}
