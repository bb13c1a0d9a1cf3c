package verify

import (
	"sync/atomic"
	"time"
)

// clockRecheck is how often wallNow reads the wall clock itself: a step
// of the wall clock (settimeofday, an NTP step, a leap second) shows in
// its readings at most this long after it happened.
const clockRecheck = 10 * time.Millisecond

// wallNow is the Verifier's default clock (New): the wall time to the
// nanosecond, as time.Now gives it, but from one read of the monotonic
// clock instead of two reads (wall and monotonic). On a virtual machine
// whose clock source is kvm-clock or hpet, each read costs tens of
// nanoseconds, a fifth of a verification. The monotonic clock runs at the
// wall clock's rate (NTP slews both), so the two differ by an offset that
// changes only when the wall clock is stepped; wallNow reads the wall
// clock again every clockRecheck to follow such steps. The time it
// returns has no monotonic reading (time.Time.Round(0)).
func wallNow() time.Time { return theClock.now() }

var theClock = newMonoClock()

// monoClock derives the wall time from the monotonic clock and an offset
// it refreshes every clockRecheck.
type monoClock struct {
	base time.Time    // carries a monotonic reading: time.Since(base) reads only the monotonic clock
	off  atomic.Int64 // wall clock (Unix ns) minus time since base, at the last refresh
	next atomic.Int64 // time since base at which to refresh off
}

func newMonoClock() *monoClock {
	c := &monoClock{base: time.Now()}
	c.off.Store(c.base.UnixNano())
	c.next.Store(int64(clockRecheck))
	return c
}

func (c *monoClock) now() time.Time {
	m := int64(time.Since(c.base))
	if next := c.next.Load(); m >= next && c.next.CompareAndSwap(next, m+int64(clockRecheck)) {
		return c.refresh() // one caller refreshes; the others use the offset they find
	}
	return time.Unix(0, c.off.Load()+m)
}

// clockJitter is how far below the current offset a new reading's may be
// and still be taken for the delay between time.Now's two reads rather
// than a step of the wall clock.
const clockJitter = 100 * time.Microsecond

// refresh reads the wall clock (and the monotonic one, with time.Now) and
// updates the offset. time.Now reads the wall clock first: a delay before
// its monotonic read (the thread descheduled between the two) gives an
// offset too small by that delay. So a smaller offset is taken only when
// it is smaller by more than clockJitter (a step back of the wall clock,
// or a long delay that the next refresh corrects), and a larger one
// always (a step forward, or a reading with less delay): the offset
// converges to the least delayed reading's, and the time never moves back
// unless the wall clock did.
func (c *monoClock) refresh() time.Time {
	t := time.Now()
	m := int64(t.Sub(c.base)) // monotonic
	off := t.UnixNano() - m
	if prev := c.off.Load(); off > prev || off < prev-int64(clockJitter) {
		c.off.Store(off)
	}
	return time.Unix(0, c.off.Load()+m)
}
