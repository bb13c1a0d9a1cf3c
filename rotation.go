package latchkey

import (
	"context"
	"time"
)

// Rotation states. A roll waits until its old key may go; it stalls when
// the old key is still in use at that time; it is done once the old key is
// Inactive (by the roll, at the hard limit, or by a person) or gone.
const (
	RotationWaiting = "waiting"
	RotationStalled = "stalled"
	RotationDone    = "done"
)

// How a roll ended.
const (
	RotationEndQuiet     = "quiet"      // the old key went quiet and the roll deactivated it
	RotationEndHardLimit = "hard_limit" // the old key was still in use at the hard limit
	RotationEndManual    = "manual"     // the old key was deactivated or deleted by someone else
)

// Kinds of ledger entries a roll makes (see PolicyAction): the roll's
// deactivation of the old key, and its rotation.stalled notice. Both are
// inserted already applied, in the transaction that does what they say, so
// that one replica does it once.
const (
	ActionKindRollDeactivate = "roll:deactivate"
	NoticeRotationStalled    = "notice:rotation_stalled"
)

// DefaultRollQuietPeriod is how long the old key of a roll must go without
// a valid call before the roll deactivates it, when the roll names none.
const DefaultRollQuietPeriod = 15 * time.Minute

// Rotation is a server-side roll: a successor created for an Active
// application key, and the plan for the old key. From ExpiresAt the old
// key is deactivated as soon as it has gone QuietPeriod without a valid
// call; at HardLimitAt it is deactivated whether or not it is used.
// Deleting the Inactive old key is left to the hygiene policy.
type Rotation struct {
	OldKeyID    string `json:"old_access_key_id"`
	NewKeyID    string `json:"new_access_key_id"`
	Account     string `json:"account"`
	Application string `json:"application"`
	// CreatedBy is the principal that asked for the roll.
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
	QuietPeriod Duration  `json:"quiet_period"`
	// ExpiresAt is when the old key may go; nil: it stays until someone
	// deactivates it.
	ExpiresAt *time.Time `json:"old_key_expires_at"`
	// HardLimitAt is when the old key goes even if it is still in use;
	// nil: never.
	HardLimitAt *time.Time `json:"hard_limit_at"`
	State       string     `json:"state"`
	// StalledAt is when the roll found the old key still in use at
	// ExpiresAt and announced it (rotation.stalled).
	StalledAt *time.Time `json:"stalled_at"`
	DoneAt    *time.Time `json:"done_at"`
	Outcome   string     `json:"outcome,omitempty"`
}

// Roll is what a caller gives to roll a key. Nil fields take the defaults:
// the old key stays until deactivated, a quiet period of 15 minutes, no
// hard limit.
type Roll struct {
	// OldKeyExpiresIn is how long after the roll the old key may go.
	OldKeyExpiresIn *Duration `json:"old_key_expires_in,omitempty"`
	// QuietPeriod is how long the old key must go unused before the roll
	// deactivates it.
	QuietPeriod *Duration `json:"quiet_period,omitempty"`
	// HardLimit is how long after the roll the old key goes even if it is
	// still in use; at least OldKeyExpiresIn.
	HardLimit *Duration `json:"hard_limit,omitempty"`
	// Description of the successor; "" keeps the old key's.
	Description *string `json:"description,omitempty"`
}

// Validate checks the periods: each from 1s to 3650d, the hard limit not
// before the expiry, and a hard limit only with an expiry.
func (r Roll) Validate() error {
	for _, f := range []struct {
		name string
		v    *Duration
	}{{"old_key_expires_in", r.OldKeyExpiresIn}, {"quiet_period", r.QuietPeriod}, {"hard_limit", r.HardLimit}} {
		if f.v != nil && (f.v.D() < time.Second || f.v.D() > MaxPolicyDuration) {
			return Errorf(EINVALID, "%s must be from 1s to 3650d", f.name)
		}
	}
	if r.HardLimit != nil {
		if r.OldKeyExpiresIn == nil {
			return Errorf(EINVALID, "hard_limit needs old_key_expires_in: the old key cannot be forced out before it may go")
		}
		if *r.HardLimit < *r.OldKeyExpiresIn {
			return Errorf(EINVALID, "hard_limit %s is shorter than old_key_expires_in %s", r.HardLimit, r.OldKeyExpiresIn)
		}
	}
	if r.Description != nil {
		return ValidateDescription(*r.Description)
	}
	return nil
}

// RotationFilter selects rotations. Empty fields match everything.
type RotationFilter struct {
	Account string // "" = every account
	KeyID   string // old or new key
	Open    bool   // only rotations not done
	// NewestFirst orders by creation time, newest first (default: oldest
	// first).
	NewestFirst bool
	Limit       int
}

// RotationTx is the part of Tx that stores rolls.
type RotationTx interface {
	// CreateRotation stores a roll. Returns EEXISTS if the old key already
	// has one.
	CreateRotation(ctx context.Context, r *Rotation) error
	// UpdateRotation writes the state, StalledAt, DoneAt and Outcome of
	// the roll of r.OldKeyID if its stored state is from, and reports
	// whether it did: false when another transaction moved it on first
	// (or there is no such roll).
	UpdateRotation(ctx context.Context, r *Rotation, from string) (bool, error)
	// ListRotations returns rotations by creation time, oldest first
	// unless f.NewestFirst.
	ListRotations(ctx context.Context, f RotationFilter) ([]*Rotation, error)
}
