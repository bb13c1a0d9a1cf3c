package verify

import (
	"time"

	"github.com/latchkey/latchkey"
)

// Observer is told of every decision the Verifier makes, and of how long
// one decision in LatencySample took. It runs on the hot path: it must not
// allocate, block or take a lock that verifications contend for.
type Observer interface {
	Decided(code latchkey.Code)
	Took(elapsed time.Duration)
}

// LatencySample is how many decisions there are for each one timed, chosen
// at random: reading the clock twice per call would cost more than the
// decision where the clock is slow (some virtual machines).
const LatencySample = 64

// KeyCounts are the keys in the index by kind and state.
type KeyCounts struct {
	Kind  string // "application" or "principal"
	State string // "active", "inactive" or "expired" (Active but past its expiry)
	Count int
}

// Counts returns how many keys the index holds by kind and state, for
// metrics. It reads each shard under its read lock in turn, so it never
// stops verifications; a change made meanwhile may or may not be counted.
func (ix *Index) Counts(now time.Time) []KeyCounts {
	var n [2][3]int
	for i := range ix.shards {
		s := &ix.shards[i]
		s.mu.RLock()
		for _, sl := range s.t.slots {
			if sl == 0 {
				continue
			}
			r := ix.rec(uint32(sl))
			kind, state := 0, 0
			if r.kind != kindApplication {
				kind = 1
			}
			switch {
			case r.flags&flagActive == 0:
				state = 1
			case r.expires != 0 && now.UnixNano() >= r.expires:
				state = 2
			}
			n[kind][state]++
		}
		s.mu.RUnlock()
	}
	kinds, states := [2]string{"application", "principal"}, [3]string{"active", "inactive", "expired"}
	out := make([]KeyCounts, 0, 6)
	for k := range n {
		for st := range n[k] {
			out = append(out, KeyCounts{kinds[k], states[st], n[k][st]})
		}
	}
	return out
}
