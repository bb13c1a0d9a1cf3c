package verify

import (
	"sync/atomic"
	"time"
)

// clockRecheck is how often wallNow reads the wall clock itself: a step
// of the wall clock (settimeofday, an NTP step, a leap second) shows in
// its readings at most this long after it happened.
const clockRecheck = 10 * time.Millisecond

// wallNow is the clock of a Verifier whose Now is unset (New's): the
// wall time to the nanosecond, as time.Now gives it, but from one read of
// the monotonic clock instead of two reads (wall and monotonic). On a
// virtual machine whose clock source is kvm-clock or hpet, each read
// costs tens of nanoseconds, a fifth of a verification. The monotonic
// clock runs at the wall clock's rate (NTP slews both), so the two differ
// by an offset that changes only when the wall clock is stepped; wallNow
// reads the wall clock again every clockRecheck to follow such steps. The
// time it returns has no monotonic reading (time.Time.Round(0)).
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

// coarseTick is how often the coarse clock (usageClock) reads the time
// while calls read it.
const coarseTick = 10 * time.Millisecond

// usageClock is the time a valid call's usage is recorded at when its
// decision needed no time of its own (Verifier.Now unset, and neither
// expiry, a rate limit, a quota nor the guard read the clock): the time at
// most about coarseTick before the call, without reading the clock on the
// call's path.
var usageClock = newCoarseClock()

// coarseClock is a time that a goroutine of its own refreshes every
// coarseTick, for readers that need the time only to within that: a
// verification that needs no time to decide still records when the key
// was last used, and reading the clock (one read of the monotonic clock)
// is a seventh of such a verification where the clock source is kvm-clock.
// The goroutine ticks only while the time is read: a tick that finds no
// reader since the one before stops the ticks, and the next reader
// starts them again (reading the clock itself once), so an idle process
// has no wake-ups. Neither a stop nor a start allocates.
type coarseClock struct {
	t       atomic.Int64  // wall time (Unix ns) at the last tick; 0 while the ticks are stopped
	read    atomic.Bool   // t was read since the last tick
	running atomic.Bool   // the ticks run (set before t is, cleared after)
	started atomic.Bool   // the goroutine exists (it never ends)
	wake    chan struct{} // the goroutine waits here while the ticks are stopped
}

func newCoarseClock() *coarseClock { return &coarseClock{wake: make(chan struct{}, 1)} }

// now returns the wall time in Unix nanoseconds, at most about coarseTick
// old (more only when the process has no CPU for its ticks).
func (c *coarseClock) now() int64 {
	if t := c.t.Load(); t != 0 {
		if !c.read.Load() { // a store per tick, not per call: the line stays shared
			c.read.Store(true)
		}
		return t
	}
	return c.start()
}

// start reads the clock and, unless another reader just did, starts the
// ticks that keep t.
func (c *coarseClock) start() int64 {
	t := wallNow().UnixNano()
	if c.running.CompareAndSwap(false, true) {
		c.read.Store(true)
		c.t.Store(t)
		if c.started.CompareAndSwap(false, true) {
			go c.tick()
		} else {
			// The goroutine has stopped (running was false) and waits for
			// this: one start a stop, so the one-slot buffer is empty and
			// the send does not block.
			c.wake <- struct{}{}
		}
	}
	return t
}

// tick keeps t while the time is read, and waits on wake while it is not.
func (c *coarseClock) tick() {
	tk := time.NewTicker(coarseTick)
	for {
		<-tk.C
		if c.read.Swap(false) {
			c.t.Store(wallNow().UnixNano())
			continue
		}
		// Nobody read the time for a whole tick: stop. A reader between
		// these two stores reads the clock itself.
		c.t.Store(0)
		c.running.Store(false)
		tk.Stop()
		<-c.wake
		tk.Reset(coarseTick)
	}
}
