package latchkey

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Duration is a policy period. In JSON it is a string: "90d" (days), or a
// Go duration such as "36h" or "10m"; "off" (or "0") turns the rule off.
type Duration time.Duration

// Day is the unit policies are usually written in.
const Day = 24 * time.Hour

// MaxPolicyDuration bounds every policy period (ten years).
const MaxPolicyDuration = 3650 * Day

// ParseDuration reads "90d", "36h", "1h30m", "off" or "0". The field name
// is for the error message, which says what would be accepted.
func ParseDuration(field, s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "off" || s == "0" {
		return 0, nil
	}
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		// Written so that NaN fails too.
		if err != nil || !(days > 0 && days <= float64(MaxPolicyDuration/Day)) {
			return 0, Errorf(EINVALID, "%s %q: expected a number of days such as 90d, a duration such as 36h, or off", field, s)
		}
		d = time.Duration(days * float64(Day))
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, Errorf(EINVALID, "%s %q: expected a number of days such as 90d, a duration such as 36h, or off", field, s)
		}
	}
	if d < time.Second || d > MaxPolicyDuration {
		return 0, Errorf(EINVALID, "%s %q: expected off, or from 1s to 3650d", field, s)
	}
	return Duration(d.Truncate(time.Second)), nil
}

// String writes whole days as "90d", other periods as a Go duration without
// trailing zero units ("36h", "1h30m"), and zero as "off".
func (d Duration) String() string {
	td := time.Duration(d)
	switch {
	case td == 0:
		return "off"
	case td%Day == 0:
		return strconv.FormatInt(int64(td/Day), 10) + "d"
	}
	s := td.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Off reports whether the rule is turned off.
func (d Duration) Off() bool { return d <= 0 }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes the String form.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads the forms ParseDuration accepts.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return Errorf(EINVALID, `a policy period must be a string such as "90d", "36h" or "off"`)
	}
	v, err := ParseDuration("period", s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Policy is the hygiene policy in force for an account: when keys are due
// for rotation, when they count as unused, and which automatic actions the
// server takes. A zero period turns its rule off.
type Policy struct {
	// MaxKeyAge is the age at which an Active key is due for rotation.
	MaxKeyAge Duration `json:"max_key_age"`
	// WarnBefore is how long before rotation is due, or a key expires, the
	// key is flagged (rotation_soon, expiring_soon) and a webhook is sent.
	WarnBefore Duration `json:"warn_before"`
	// UnusedAfter is how long an Active key may go without a valid call
	// before it is flagged unused.
	UnusedAfter Duration `json:"unused_after"`
	// DeactivateUnusedAfter, when on, makes the server deactivate
	// application keys that have gone this long without a valid call.
	DeactivateUnusedAfter Duration `json:"deactivate_unused_after"`
	// DeleteInactiveAfter, when on, makes the server delete application
	// keys that have been Inactive this long.
	DeleteInactiveAfter Duration `json:"delete_inactive_after"`
	// NoticeBefore is how long before an automatic action the key.unused
	// or key.deletion_scheduled webhook announces it. An action that
	// becomes due with less notice is postponed until the notice is given.
	NoticeBefore Duration `json:"notice_before"`
}

// DefaultPolicy is the server's default when none is configured.
func DefaultPolicy() Policy {
	return Policy{
		MaxKeyAge:    Duration(90 * Day),
		WarnBefore:   Duration(14 * Day),
		UnusedAfter:  Duration(30 * Day),
		NoticeBefore: Duration(7 * Day),
	}
}

// PolicySettings are an account's own choices; a nil field takes the
// server's default.
type PolicySettings struct {
	MaxKeyAge             *Duration `json:"max_key_age,omitempty"`
	WarnBefore            *Duration `json:"warn_before,omitempty"`
	UnusedAfter           *Duration `json:"unused_after,omitempty"`
	DeactivateUnusedAfter *Duration `json:"deactivate_unused_after,omitempty"`
	DeleteInactiveAfter   *Duration `json:"delete_inactive_after,omitempty"`
	NoticeBefore          *Duration `json:"notice_before,omitempty"`
}

// Apply returns p with the settings that s makes.
func (s PolicySettings) Apply(p Policy) Policy {
	set := func(dst *Duration, v *Duration) {
		if v != nil {
			*dst = *v
		}
	}
	set(&p.MaxKeyAge, s.MaxKeyAge)
	set(&p.WarnBefore, s.WarnBefore)
	set(&p.UnusedAfter, s.UnusedAfter)
	set(&p.DeactivateUnusedAfter, s.DeactivateUnusedAfter)
	set(&p.DeleteInactiveAfter, s.DeleteInactiveAfter)
	set(&p.NoticeBefore, s.NoticeBefore)
	return p
}

// Validate checks that every period is off or between 1s and 3650d.
func (s PolicySettings) Validate() error {
	for _, f := range []struct {
		name string
		v    *Duration
	}{
		{"max_key_age", s.MaxKeyAge}, {"warn_before", s.WarnBefore}, {"unused_after", s.UnusedAfter},
		{"deactivate_unused_after", s.DeactivateUnusedAfter}, {"delete_inactive_after", s.DeleteInactiveAfter},
		{"notice_before", s.NoticeBefore},
	} {
		if f.v != nil && (*f.v < 0 || (*f.v > 0 && (f.v.D() < time.Second || f.v.D() > MaxPolicyDuration))) {
			return Errorf(EINVALID, "%s must be off, or from 1s to 3650d", f.name)
		}
	}
	return nil
}

// AccountPolicy is an account's stored settings.
type AccountPolicy struct {
	Account   string         `json:"account"`
	Settings  PolicySettings `json:"settings"`
	UpdatedAt time.Time      `json:"updated_at"`
}

// Finding is a hygiene problem of a key, computed from the policy when the
// key is read.
type Finding string

const (
	// FindingRotationDue: the key is older than the policy's max_key_age.
	FindingRotationDue Finding = "rotation_due"
	// FindingRotationSoon: rotation is due within warn_before.
	FindingRotationSoon Finding = "rotation_soon"
	// FindingUnused: an Active key without a valid call for unused_after
	// (counted from its creation or reactivation if it was never used).
	FindingUnused Finding = "unused"
	// FindingUnrestricted: an application key that no restriction applies
	// to, neither its own nor its application's.
	FindingUnrestricted Finding = "unrestricted"
	// FindingExposed: the secret was seen where it should not be.
	FindingExposed Finding = "exposed"
	// FindingExpiringSoon: the key expires within warn_before.
	FindingExpiringSoon Finding = "expiring_soon"
	// FindingExpired: the key's expiry has passed.
	FindingExpired Finding = "expired"
)

// KeyState is what the hygiene policy knows of a key beyond the key itself:
// when its status last changed and when it last completed a rotation.
type KeyState struct {
	AccessKeyID string `json:"access_key_id"`
	// StatusSince is when the key's status last changed (nil: since it
	// was created, or before latchkey recorded it).
	StatusSince *time.Time `json:"status_since"`
	// RotatedAt is when this key completed a rotation: the older key of
	// its application that it replaced was deleted while this one was
	// Active. Nil for a key that replaced none.
	RotatedAt *time.Time `json:"rotated_at"`
	// Predecessor is the ID of the key it replaced.
	Predecessor string `json:"predecessor,omitempty"`
}

// Evaluation is the verdict of a policy on one key at one time.
type Evaluation struct {
	Findings []Finding `json:"findings"`
	// RotationDueAt is when the key is (or was) due for rotation; nil when
	// the rule is off or the key is Inactive.
	RotationDueAt *time.Time `json:"rotation_due_at"`
	// UnusedSince is the start of the idle period counted for the unused
	// rule: the last valid call, else the creation or last status change.
	UnusedSince time.Time `json:"unused_since"`
	// DeactivateAt is when the server will deactivate the key (automatic
	// action on), before any postponement for notice; nil otherwise.
	DeactivateAt *time.Time `json:"deactivate_at"`
	// DeleteAt is when the server will delete the Inactive key.
	DeleteAt *time.Time `json:"delete_at"`
}

// Has reports whether f is among the findings.
func (e Evaluation) Has(f Finding) bool {
	for _, x := range e.Findings {
		if x == f {
			return true
		}
	}
	return false
}

// Evaluate applies policy p to key k at time now. st may be nil. Automatic
// actions concern application keys only: a principal's key is never
// deactivated or deleted by policy, so an operator cannot be locked out.
func (p Policy) Evaluate(k *AccessKey, st *KeyState, now time.Time) Evaluation {
	ev := Evaluation{Findings: []Finding{}}
	if k.Canary {
		// A canary is never used on purpose, never rotated and never
		// acted on: a finding ("never used") or an action would only
		// give it away.
		return ev
	}
	active := k.Status == StatusActive
	statusSince := k.CreatedAt
	if st != nil && st.StatusSince != nil && st.StatusSince.After(statusSince) {
		statusSince = *st.StatusSince
	}
	if k.Exposed != nil {
		ev.Findings = append(ev.Findings, FindingExposed)
	}
	if k.ExpiresAt != nil {
		switch {
		case !now.Before(*k.ExpiresAt):
			ev.Findings = append(ev.Findings, FindingExpired)
		case !p.WarnBefore.Off() && !now.Before(k.ExpiresAt.Add(-p.WarnBefore.D())):
			ev.Findings = append(ev.Findings, FindingExpiringSoon)
		}
	}
	if active && !p.MaxKeyAge.Off() {
		due := k.CreatedAt.Add(p.MaxKeyAge.D())
		ev.RotationDueAt = &due
		switch {
		case !now.Before(due):
			ev.Findings = append(ev.Findings, FindingRotationDue)
		case !p.WarnBefore.Off() && !now.Before(due.Add(-p.WarnBefore.D())):
			ev.Findings = append(ev.Findings, FindingRotationSoon)
		}
	}
	ev.UnusedSince = statusSince
	if k.LastUsed != nil && k.LastUsed.At.After(ev.UnusedSince) {
		ev.UnusedSince = k.LastUsed.At
	}
	if active && !p.UnusedAfter.Off() && !now.Before(ev.UnusedSince.Add(p.UnusedAfter.D())) {
		ev.Findings = append(ev.Findings, FindingUnused)
	}
	if k.Principal == "" {
		if k.Restrictions.Empty() && k.AppRestrictions.Empty() {
			ev.Findings = append(ev.Findings, FindingUnrestricted)
		}
		if active && !p.DeactivateUnusedAfter.Off() {
			t := ev.UnusedSince.Add(p.DeactivateUnusedAfter.D())
			ev.DeactivateAt = &t
		}
		if !active && !p.DeleteInactiveAfter.Off() {
			t := statusSince.Add(p.DeleteInactiveAfter.D())
			ev.DeleteAt = &t
		}
	}
	return ev
}

// PolicyCandidates selects the keys a policy round must read: every key
// for which Evaluate, under any of the policies it was made from, can
// find something the round acts on (rotation due or soon, expiring soon,
// unused, an automatic deactivation or deletion within its notice). It
// may select more keys than that, never fewer; the round evaluates each
// key it reads as before. A zero time leaves its rule out; a
// PolicyCandidates with every rule left out selects no key.
//
// A key's unused time and status time are at least its creation, and
// its last use as the store has it is never later than the last use the
// round merges in from memory: so the bounds below, on stored columns
// only, hold for every key Evaluate would act on.
type PolicyCandidates struct {
	// CreatedBefore: keys created at or before it (rotation due or soon).
	CreatedBefore time.Time
	// IdleBefore: keys created at or before it and not used since
	// (unused; automatic deactivation).
	IdleBefore time.Time
	// ExpiresBefore: keys that expire at or before it (expiring soon).
	ExpiresBefore time.Time
	// NotActive: every key that is not Active (automatic deletion).
	NotActive bool
}

// CandidatesOf returns the PolicyCandidates of a round at now under
// policies: for each rule, the widest bound any policy needs.
func CandidatesOf(policies []Policy, now time.Time) PolicyCandidates {
	var c PolicyCandidates
	later := func(t *time.Time, u time.Time) {
		if t.IsZero() || u.After(*t) {
			*t = u
		}
	}
	for _, p := range policies {
		warn := time.Duration(0)
		if !p.WarnBefore.Off() {
			warn = p.WarnBefore.D()
			later(&c.ExpiresBefore, now.Add(warn))
		}
		if !p.MaxKeyAge.Off() {
			later(&c.CreatedBefore, now.Add(warn-p.MaxKeyAge.D()))
		}
		if !p.UnusedAfter.Off() {
			later(&c.IdleBefore, now.Add(-p.UnusedAfter.D()))
		}
		notice := max(p.NoticeBefore.D(), 0)
		if !p.DeactivateUnusedAfter.Off() {
			later(&c.IdleBefore, now.Add(notice-p.DeactivateUnusedAfter.D()))
		}
		if !p.DeleteInactiveAfter.Off() {
			c.NotActive = true
		}
	}
	return c
}

// Kinds of policy actions in the ledger. Notices are webhooks sent once;
// deactivate and delete are automatic actions, announced by a notice first.
const (
	ActionKindDeactivate  = "deactivate"
	ActionKindDelete      = "delete"
	NoticeRotationSoon    = "notice:rotation_soon"
	NoticeRotationDue     = "notice:rotation_due"
	NoticeExpiring        = "notice:expiring"
	NoticeUnused          = "notice:unused"
	PolicyActionScheduled = "scheduled" // announced; waiting for ActAt
	PolicyActionApplied   = "applied"   // done (or, for a notice, sent)
	PolicyActionCancelled = "cancelled" // no longer due: the key changed
	PolicyActor           = "policy"    // the audit actor of automatic actions
)

// PolicyAction is one entry of the policy ledger: a notice or an automatic
// action for one key, identified by the key, the kind and the time it is
// due. Inserting it is the claim that makes it happen once, whatever the
// number of replicas or restarts.
type PolicyAction struct {
	AccessKeyID string     `json:"access_key_id"`
	Kind        string     `json:"kind"`
	DueAt       time.Time  `json:"due_at"` // when the rule made it due
	Account     string     `json:"account"`
	ActAt       time.Time  `json:"act_at"` // when it may be applied: DueAt, or later to give notice
	State       string     `json:"state"`
	CreatedAt   time.Time  `json:"created_at"`
	DoneAt      *time.Time `json:"done_at"`
}

// PolicyActionFilter selects ledger entries.
type PolicyActionFilter struct {
	AccessKeyID string
	State       string
	ActBefore   *time.Time // ActAt <= this
	Limit       int
}

// PolicyTx is the part of Tx that stores policies and the policy ledger.
type PolicyTx interface {
	// FindPolicy returns an account's settings, ENOTFOUND if it has none.
	FindPolicy(ctx context.Context, account string) (*AccountPolicy, error)
	// PutPolicy stores an account's settings, replacing any. Returns
	// ENOTFOUND if the account does not exist.
	PutPolicy(ctx context.Context, p *AccountPolicy) error
	// ListPolicies returns every account's settings, by account.
	ListPolicies(ctx context.Context) ([]*AccountPolicy, error)

	// KeyStates returns the stored states of the given keys, by ID; keys
	// without a state are absent.
	KeyStates(ctx context.Context, ids []string) (map[string]*KeyState, error)
	// PutKeyState stores a key's state, replacing any.
	PutKeyState(ctx context.Context, s *KeyState) error
	// DeleteKeyState removes a key's state; a missing one is not an error.
	DeleteKeyState(ctx context.Context, id string) error

	// InsertPolicyAction adds an entry unless one with the same key, kind
	// and due time exists; it reports whether it added it.
	InsertPolicyAction(ctx context.Context, a *PolicyAction) (bool, error)
	// ClaimPolicyAction moves the scheduled entry (key, kind, due) to
	// state and reports whether it did: false when it was not scheduled
	// (another replica claimed it first, or it never was).
	ClaimPolicyAction(ctx context.Context, id, kind string, due time.Time, state string, at time.Time) (bool, error)
	// ListPolicyActions returns entries by ActAt, then key and kind.
	ListPolicyActions(ctx context.Context, f PolicyActionFilter) ([]*PolicyAction, error)
}
