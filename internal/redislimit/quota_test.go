package redislimit_test

import (
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/redislimit"
)

// TestSpendQuota walks the script through one key's quota: nothing is
// granted before units are leased into Redis, a cost is taken only when
// enough is there, a new period drops the old one's units, a caller
// whose period is behind is refused and changes nothing, and the
// ledger's figure only goes down within a period.
func TestSpendQuota(t *testing.T) {
	l := newLimiter(t, redislimit.Options{})
	type step struct {
		name                          string
		period, cost, need, add, left int64
		want                          bool
		pool, ledger, state           int64
	}
	for i, s := range []step{
		{"nothing leased yet", 5, 1, 1, 0, -1, false, 0, -1, 5},
		{"lease 10, spend 3", 5, 3, 3, 10, 90, true, 7, 90, 5},
		{"cost 8 with 7 there", 5, 8, 8, 0, -1, false, 7, 90, 5},
		{"free call", 5, 0, 1, 0, -1, true, 7, 90, 5},
		{"an older lease's figure is ignored", 5, 1, 1, 2, 95, true, 8, 90, 5},
		{"a lower figure is kept", 5, 1, 1, 0, 40, true, 7, 40, 5},
		{"caller behind: refused", 4, 1, 1, 0, -1, false, 0, -1, 5},
		{"next period: the old units are gone", 6, 1, 1, 0, -1, false, 0, -1, 6},
		{"ledger dry", 6, 1, 1, 0, 0, false, 0, 0, 6},
	} {
		ok, pool, ledger, state, err := l.SpendQuota(t.Context(), "K1", 3, s.period, s.cost, s.need, s.add, s.left, time.Minute)
		if err != nil {
			t.Fatalf("step %d (%s): %v", i, s.name, err)
		}
		if ok != s.want || pool != s.pool || ledger != s.ledger || state != s.state {
			t.Errorf("step %d (%s): allowed %v, pool %d, ledger %d, period %d; want %v, %d, %d, %d",
				i, s.name, ok, pool, ledger, state, s.want, s.pool, s.ledger, s.state)
		}
	}
	// Another generation is another state.
	if ok, pool, _, _, err := l.SpendQuota(t.Context(), "K1", 4, 6, 1, 1, 0, -1, time.Minute); err != nil || ok || pool != 0 {
		t.Errorf("generation 4: allowed %v, pool %d, %v", ok, pool, err)
	}
}
