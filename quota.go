package latchkey

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// CodeQuotaExceeded answers a valid call whose key's quota has less left
// than the call costs. Gateway surfaces answer it with 429 and say when
// the quota refills.
const CodeQuotaExceeded Code = "QUOTA_EXCEEDED"

// Quota webhook events: the remaining budget fell to the owner's low
// threshold, or to zero. Each is sent at most once per refill period.
const (
	EventQuotaLow       = "quota.low"
	EventQuotaExhausted = "quota.exhausted"
)

// Quota is a budget of calls (credits) with an optional periodic refill.
// Each verification of a key with a quota costs 1 unless the caller or a
// scope rule says otherwise; a call the budget cannot pay is
// QUOTA_EXCEEDED. A refused call never costs anything.
//
// A quota has an owner (QuotaOwner): an access key today. The ledger is
// kept per owner, so that an identity can own one and share it among its
// keys without a change to the ledger.
type Quota struct {
	// Remaining is what is left in the current period. On a write it
	// sets the budget; on a read it is what can still be granted as the
	// replica that answers knows it: the ledger's figure plus Leased
	// (see docs/quotas.md for what holds with several replicas).
	Remaining int64 `json:"remaining"`
	// Leased (read only) is the part of Remaining that replicas hold
	// leased from the ledger and have not spent: this replica's lease,
	// or, with a shared store, every replica's.
	Leased int64   `json:"leased"`
	Refill *Refill `json:"refill,omitempty"`
	// LowThreshold: quota.low is sent once a period when Remaining falls
	// to it or below; 0 sends none.
	LowThreshold int64 `json:"low_threshold,omitempty"`

	// Read only.
	PeriodStart  *time.Time `json:"period_start,omitempty"`
	NextRefillAt *time.Time `json:"next_refill_at,omitempty"`
	UpdatedAt    time.Time  `json:"updated_at"`

	// Generation changes with every administrative change (set, top-up,
	// reset): replicas drop what they hold leased from an older one.
	Generation int64 `json:"-"`
	// Anchor is where an "every" schedule's periods are counted from.
	Anchor time.Time `json:"-"`
	// Period, Budget and Used are the ledger: the current period's
	// number, what it started with (or was set or topped up to), and
	// what has been leased from it.
	Period int64 `json:"-"`
	Budget int64 `json:"-"`
	Used   int64 `json:"-"`
}

// Refill gives a quota Amount at each boundary of Interval: its remaining
// budget is set to Amount (not increased by it), so that unused calls do
// not pile up.
type Refill struct {
	Amount   int64  `json:"amount"`
	Interval string `json:"interval"`
}

// Quota bounds.
const (
	MaxQuota        = 1 << 50
	MinRefillEvery  = time.Minute
	MaxRefillEvery  = 366 * 24 * time.Hour
	MaxMonthlyDay   = 28
	QuotaOwnerKey   = "access_key"
	MaxQuotaHistory = 100
)

// QuotaOwner names what a quota belongs to: Kind is QuotaOwnerKey (and,
// later, an identity), ID the owner's ID.
type QuotaOwner struct {
	Kind string
	ID   string
}

// Interval is a parsed refill interval: every Every from the quota's
// anchor, or monthly on MonthDay at 00:00 UTC.
type Interval struct {
	Every    time.Duration
	MonthDay int
}

// ParseInterval accepts a duration of at least a minute ("24h", "90m",
// "every 6h"), "daily" (24h), or "monthly:D" with D from 1 to 28 (the
// D-th of each month, 00:00 UTC).
func ParseInterval(s string) (Interval, error) {
	bad := func() (Interval, error) {
		return Interval{}, Errorf(EINVALID, `refill.interval: %q is not an interval; use a duration of 1m to 8784h ("24h", "every 6h"), "daily", or "monthly:D" with D from 1 to %d`, s, MaxMonthlyDay)
	}
	t := strings.TrimSpace(s)
	if t == "daily" {
		return Interval{Every: 24 * time.Hour}, nil
	}
	if d, ok := strings.CutPrefix(t, "monthly:"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > MaxMonthlyDay {
			return bad()
		}
		return Interval{MonthDay: n}, nil
	}
	t = strings.TrimSpace(strings.TrimPrefix(t, "every "))
	d, err := time.ParseDuration(t)
	if err != nil || d < MinRefillEvery || d > MaxRefillEvery {
		return bad()
	}
	return Interval{Every: d}, nil
}

// Period returns the number of the refill period that holds now, and its
// start and end. An "every" schedule counts from anchor (period 0 starts
// there); a monthly one counts months since year 0.
func (iv Interval) Period(anchor, now time.Time) (n int64, start, next time.Time) {
	if iv.Every > 0 {
		d := now.Sub(anchor)
		if d < 0 {
			d = 0
		}
		n = int64(d / iv.Every)
		start = anchor.Add(time.Duration(n) * iv.Every)
		return n, start, start.Add(iv.Every)
	}
	u := now.UTC()
	y, m := u.Year(), u.Month()
	start = time.Date(y, m, iv.MonthDay, 0, 0, 0, 0, time.UTC)
	if u.Before(start) {
		start = start.AddDate(0, -1, 0)
	}
	n = int64(start.Year())*12 + int64(start.Month()) - 1
	return n, start, start.AddDate(0, 1, 0)
}

// Validate checks a quota given by a caller.
func (q *Quota) Validate() error {
	if q.Remaining < 0 || q.Remaining > MaxQuota {
		return Errorf(EINVALID, "quota.remaining: must be 0 to %d, got %d", int64(MaxQuota), q.Remaining)
	}
	if q.LowThreshold < 0 || q.LowThreshold > MaxQuota {
		return Errorf(EINVALID, "quota.low_threshold: must be 0 to %d, got %d", int64(MaxQuota), q.LowThreshold)
	}
	if r := q.Refill; r != nil {
		if r.Amount < 1 || r.Amount > MaxQuota {
			return Errorf(EINVALID, "quota.refill.amount: must be 1 to %d, got %d", int64(MaxQuota), r.Amount)
		}
		if _, err := ParseInterval(r.Interval); err != nil {
			return err
		}
	}
	return nil
}

// Interval returns the parsed refill interval; ok is false without a
// refill.
func (q *Quota) Interval() (Interval, bool) {
	if q.Refill == nil {
		return Interval{}, false
	}
	iv, err := ParseInterval(q.Refill.Interval)
	return iv, err == nil
}

// PeriodAt returns the number, start and end of the period at now; a
// quota without refill has one period, 0, that never ends (zero times).
func (q *Quota) PeriodAt(now time.Time) (n int64, start, next time.Time) {
	iv, ok := q.Interval()
	if !ok {
		return 0, time.Time{}, time.Time{}
	}
	return iv.Period(q.Anchor, now)
}

// Roll brings the ledger to the period at now: a later period starts
// with the refill amount and nothing used. It reports whether it did.
func (q *Quota) Roll(now time.Time) bool {
	n, _, _ := q.PeriodAt(now)
	if n <= q.Period || q.Refill == nil {
		return false
	}
	q.Period, q.Budget, q.Used = n, q.Refill.Amount, 0
	return true
}

// Present brings the ledger to now (without writing it) and fills the
// read-only fields a caller is shown.
func (q *Quota) Present(now time.Time) {
	q.Roll(now)
	q.Remaining = q.Left()
	q.PeriodStart, q.NextRefillAt = nil, nil
	if _, start, next := q.PeriodAt(now); !next.IsZero() {
		q.PeriodStart, q.NextRefillAt = &start, &next
	}
}

// Left is what the ledger has not leased in the current period.
func (q *Quota) Left() int64 { return max(q.Budget-q.Used, 0) }

// QuotaLease is what a replica was granted from a quota's ledger.
type QuotaLease struct {
	Generation int64
	Period     int64
	Granted    int64
	// Left is what the ledger has left after the grant.
	Left int64
	// Low and Exhausted are true when this lease is the one that took
	// the ledger to the low threshold or to zero for the first time in
	// the period: the caller sends the webhook.
	Low, Exhausted bool
	// Stale is true when the lease was asked under another generation:
	// nothing was granted, and the caller's view of the quota is old.
	Stale bool
}

// QuotaChange is one entry of a quota's history.
type QuotaChange struct {
	At time.Time `json:"at"`
	// Kind is set, top_up, reset, removed, refill (a period ended;
	// Amount is what it had left) or exhausted.
	Kind      string `json:"kind"`
	Amount    int64  `json:"amount"`
	Remaining int64  `json:"remaining"`
	Actor     string `json:"actor,omitempty"`
}

// Quota history kinds.
const (
	QuotaSet       = "set"
	QuotaTopUp     = "top_up"
	QuotaRemoved   = "removed"
	QuotaRefilled  = "refill"
	QuotaExhausted = "exhausted"
)

// QuotaTx keeps quotas and their ledgers, in a transaction.
type QuotaTx interface {
	// FindQuota returns the owner's quota with its ledger brought to now
	// (not written), or ENOTFOUND when it has none.
	FindQuota(ctx context.Context, owner QuotaOwner, now time.Time) (*Quota, error)
	// SetQuota replaces the owner's quota: its budget becomes
	// q.Remaining in the period at now, and its generation changes, so
	// replicas drop their leases. Returns ENOTFOUND if the owner does not
	// exist.
	SetQuota(ctx context.Context, owner QuotaOwner, account string, q *Quota, now time.Time) error
	// TopUpQuota adds amount to what the owner's quota has left now (the
	// generation changes, as for SetQuota). Returns ENOTFOUND without a
	// quota.
	TopUpQuota(ctx context.Context, owner QuotaOwner, amount int64, now time.Time) (*Quota, error)
	// DeleteQuota removes the owner's quota; ENOTFOUND without one.
	DeleteQuota(ctx context.Context, owner QuotaOwner) error
	// AddQuotaChange appends to the owner's history, keeping the newest
	// MaxQuotaHistory entries.
	AddQuotaChange(ctx context.Context, owner QuotaOwner, c *QuotaChange) error
	// ListQuotaChanges returns the owner's history, newest first.
	ListQuotaChanges(ctx context.Context, owner QuotaOwner, limit int) ([]*QuotaChange, error)
	// LeaseQuota takes up to want from the owner's ledger at now, in
	// generation gen, rolling the period first. Returns ENOTFOUND
	// without a quota.
	LeaseQuota(ctx context.Context, owner QuotaOwner, gen, want int64, now time.Time) (*QuotaLease, error)
	// ReturnQuota gives back n unspent units leased in gen and period;
	// nothing happens when either has changed since.
	ReturnQuota(ctx context.Context, owner QuotaOwner, gen, period, n int64) error
}
