package manage

import (
	"context"
	"errors"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// RolledKey is the result of a roll: the successor with its secret, shown
// this once, and the rotation that now watches the old key.
type RolledKey struct {
	AccessKey *CreatedKey        `json:"access_key"`
	Rotation  *latchkey.Rotation `json:"rotation"`
}

// RollAccessKey rolls an Active application key in one call: it creates the
// successor (same application, restrictions and description unless given)
// and records the pair as a rotation that EnforcePolicies drives to its end
// (driveRolls). Audited as access_key.create and access_key.roll, in one
// transaction. Returns ENOTFOUND, EFORBIDDEN, EINVALID for a principal's
// key, an Inactive key or bad periods, ELIMIT when the application has no room for a second key, EEXISTS when
// the key is already being rolled.
func (s *Service) RollAccessKey(ctx context.Context, a latchkey.Actor, id string, in latchkey.Roll) (*RolledKey, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	now := s.now()
	var out *RolledKey
	var created *latchkey.AccessKey
	err := retryOnCollision(func() error {
		newID, secret, err := s.newKeyMaterial()
		if err != nil {
			return err
		}
		return s.update(ctx, func(tx latchkey.Tx) error {
			old, err := s.findWritableKey(ctx, tx, a, id)
			if err != nil {
				return err
			}
			if old.Principal != "" {
				return latchkey.Errorf(latchkey.EINVALID, "access key %s belongs to a principal; only application keys can be rolled", id)
			}
			if old.Status != latchkey.StatusActive {
				return latchkey.Errorf(latchkey.EINVALID, "access key %s is Inactive; only an Active key can be rolled", id)
			}
			if old.Canary {
				return latchkey.Errorf(latchkey.EINVALID, "access key %s is a canary; a canary is never rolled", id)
			}
			if old.KeyType == latchkey.KeyTypeSigning {
				return latchkey.Errorf(latchkey.EINVALID,
					"access key %s is a signing key, whose private key the server never holds; make its successor with create-access-key --generate-key-pair (or --public-key-file)", id)
			}
			if old.Quota != nil {
				// Each key has its own ledger: a successor with a copy
				// of the quota would double the budget while both live,
				// and one without would be unmetered.
				return latchkey.Errorf(latchkey.EINVALID,
					"access key %s has a quota, which a roll cannot carry over; create the successor with its own quota, then retire this key", id)
			}
			desc := old.Description
			if in.Description != nil {
				desc = *in.Description
			}
			k := &latchkey.AccessKey{
				ID: newID, Account: old.Account, Application: old.Application, Description: desc,
				Status: latchkey.StatusActive, CreatedAt: now, UpdatedAt: now,
				SecretDigest: keyformat.Sum(secret), Restrictions: old.Restrictions, ReportOnly: old.ReportOnly,
				ExternalID: old.ExternalID, Metadata: old.Metadata, KeyType: latchkey.KeyTypeBearer,
				CertThumbprint: old.CertThumbprint, // the successor stays bound to the same certificate
			}
			if err := s.insertAppKey(ctx, tx, a, now, k, &secret); err != nil {
				return err
			}
			r := &latchkey.Rotation{OldKeyID: old.ID, NewKeyID: k.ID, Account: old.Account, Application: old.Application,
				CreatedBy: a.Principal, CreatedAt: now, QuietPeriod: latchkey.Duration(latchkey.DefaultRollQuietPeriod),
				State: latchkey.RotationWaiting}
			if in.QuietPeriod != nil {
				r.QuietPeriod = *in.QuietPeriod
			}
			if in.OldKeyExpiresIn != nil {
				t := now.Add(in.OldKeyExpiresIn.D())
				r.ExpiresAt = &t
			}
			if in.HardLimit != nil {
				t := now.Add(in.HardLimit.D())
				r.HardLimitAt = &t
			}
			if err := tx.CreateRotation(ctx, r); err != nil {
				return err
			}
			ev, err := s.audit(a, now, r.Account, latchkey.ActionAccessKeyRoll, "access_key", old.ID, old.Application, nil, r)
			if err != nil {
				return err
			}
			if err := tx.AppendAudit(ctx, ev); err != nil {
				return err
			}
			created = k
			out = &RolledKey{AccessKey: &CreatedKey{AccessKey: k, Secret: secret}, Rotation: r}
			return nil
		}, func() { s.Index.Put(created) })
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListRotations returns the rolls of an account the actor may read (""
// for an operator: every account), or those of one key (old or new) when
// keyID is set. open keeps only the rolls not done.
func (s *Service) ListRotations(ctx context.Context, a latchkey.Actor, account, keyID string, open bool) ([]*latchkey.Rotation, error) {
	if account == "" && a.Role != latchkey.RoleOperator {
		account = a.Account
	}
	if account != "" {
		if err := requireRead(a, account); err != nil {
			return nil, err
		}
	}
	var out []*latchkey.Rotation
	err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		out, err = tx.ListRotations(ctx, latchkey.RotationFilter{Account: account, KeyID: keyID, Open: open, Limit: 1000})
		return err
	})
	return out, err
}

// rotationStalledData is the body of rotation.stalled.
type rotationStalledData struct {
	Rotation  *latchkey.Rotation `json:"rotation"`
	AccessKey eventKey           `json:"access_key"` // the old key, still in use
}

// driveRolls moves every open roll on at now:
//   - the old key was deactivated or deleted by someone else: the roll is
//     done ("manual");
//   - before ExpiresAt (or with none): nothing;
//   - from ExpiresAt, the old key has gone QuietPeriod without a valid
//     call, or HardLimitAt has come: the roll deactivates it ("quiet",
//     "hard_limit") as the actor "policy";
//   - otherwise the old key is still in use: the roll stalls and says so
//     once, by the rotation.stalled webhook, and keeps waiting.
//
// The deactivation and the notice are entries of the policy ledger
// (roll:deactivate, notice:rotation_stalled), inserted in the transaction
// that does what they say; the row's key makes a second insert add nothing,
// so however many replicas drive the same roll, each happens once. The
// change of the roll's state is conditional on the state read, for the
// same reason.
func (s *Service) driveRolls(ctx context.Context, now time.Time, res *EnforceResult) error {
	var open []*latchkey.Rotation
	err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		open, err = tx.ListRotations(ctx, latchkey.RotationFilter{Open: true, Limit: 1000})
		return err
	})
	if err != nil {
		return err
	}
	for _, r := range open {
		if err := s.driveRoll(ctx, now, r, res); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) driveRoll(ctx context.Context, now time.Time, r *latchkey.Rotation, res *EnforceResult) error {
	var (
		after   *latchkey.AccessKey
		stalled bool
	)
	id := r.OldKeyID
	pend := s.Index.PendingUsage(id)
	err := s.update(ctx, func(tx latchkey.Tx) error {
		after, stalled = nil, false
		cur, err := tx.ListRotations(ctx, latchkey.RotationFilter{KeyID: id, Open: true, Limit: 10})
		if err != nil {
			return err
		}
		r = nil
		for _, c := range cur {
			if c.OldKeyID == id {
				r = c
			}
		}
		if r == nil {
			return nil // done meanwhile
		}
		k, err := tx.FindAccessKey(ctx, r.OldKeyID)
		if err != nil && latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
			return err
		}
		before := *r
		actor := policyActor(r.Account)
		finish := func(outcome string) error {
			r.State, r.DoneAt, r.Outcome = latchkey.RotationDone, &now, outcome
			return s.rotationChanged(ctx, tx, actor, now, &before, r)
		}
		if k == nil || k.Status != latchkey.StatusActive {
			return finish(latchkey.RotationEndManual)
		}
		if r.ExpiresAt == nil || now.Before(*r.ExpiresAt) {
			return nil
		}
		if pend.LastUsed != nil && (k.LastUsed == nil || pend.LastUsed.At.After(k.LastUsed.At)) {
			k.LastUsed = pend.LastUsed
		}
		quiet := k.LastUsed == nil || !now.Before(k.LastUsed.At.Add(r.QuietPeriod.D()))
		hard := r.HardLimitAt != nil && !now.Before(*r.HardLimitAt)
		if quiet || hard {
			added, err := tx.InsertPolicyAction(ctx, &latchkey.PolicyAction{AccessKeyID: k.ID, Kind: latchkey.ActionKindRollDeactivate,
				DueAt: r.ExpiresAt.Truncate(time.Second), Account: k.Account, ActAt: now, State: latchkey.PolicyActionApplied,
				CreatedAt: now, DoneAt: &now})
			if err != nil || !added {
				return err
			}
			if after, err = s.deactivateAsPolicy(ctx, tx, now, k); err != nil {
				return err
			}
			if quiet {
				return finish(latchkey.RotationEndQuiet)
			}
			return finish(latchkey.RotationEndHardLimit)
		}
		if r.State != latchkey.RotationWaiting {
			return nil // stalled, and said so
		}
		added, err := tx.InsertPolicyAction(ctx, &latchkey.PolicyAction{AccessKeyID: k.ID, Kind: latchkey.NoticeRotationStalled,
			DueAt: r.ExpiresAt.Truncate(time.Second), Account: k.Account, ActAt: now, State: latchkey.PolicyActionApplied,
			CreatedAt: now, DoneAt: &now})
		if err != nil || !added {
			return err
		}
		r.State, r.StalledAt = latchkey.RotationStalled, &now
		if err := s.rotationChanged(ctx, tx, actor, now, &before, r); err != nil {
			return err
		}
		stalled = true
		return s.emit(ctx, tx, now, r.Account, latchkey.EventRotationStalled, rotationStalledData{r, keyEvent(k)})
	}, func() {
		if after != nil {
			s.Index.Put(after)
		}
	})
	if err == errRollMoved {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case after != nil:
		res.Rolled++
		s.Log.Info("roll deactivated the old key", "access_key_id", after.ID, "account", after.Account, "outcome", r.Outcome)
	case stalled:
		res.Stalled++
		s.Log.Info("roll stalled: the old key is still in use", "access_key_id", r.OldKeyID, "account", r.Account)
	}
	return nil
}

// errRollMoved rolls back a transaction of driveRoll whose roll another
// replica moved on first.
var errRollMoved = errors.New("the roll moved on elsewhere")

// rotationChanged writes the roll's new state, audited as rotation.update,
// if the stored roll is still in before's state; errRollMoved otherwise.
func (s *Service) rotationChanged(ctx context.Context, tx latchkey.Tx, a latchkey.Actor, now time.Time, before, after *latchkey.Rotation) error {
	moved, err := tx.UpdateRotation(ctx, after, before.State)
	if err != nil {
		return err
	}
	if !moved {
		return errRollMoved
	}
	ev, err := s.audit(a, now, after.Account, latchkey.ActionRotationUpdate, "access_key", after.OldKeyID, after.Application, before, after)
	if err != nil {
		return err
	}
	return tx.AppendAudit(ctx, ev)
}

// rollsByKey maps each key, old or new, to the latest of rolls that it is
// part of.
func rollsByKey(rolls []*latchkey.Rotation) map[string]*latchkey.Rotation {
	m := make(map[string]*latchkey.Rotation, 2*len(rolls))
	for _, r := range rolls {
		for _, id := range []string{r.OldKeyID, r.NewKeyID} {
			if o := m[id]; o == nil || !o.CreatedAt.After(r.CreatedAt) {
				m[id] = r
			}
		}
	}
	return m
}

// addRolls sets the Roll of keys that are part of one. Keys of one account
// (a list) take one query; keys of several, one per account.
func (s *Service) addRolls(ctx context.Context, tx latchkey.Tx, keys []*latchkey.AccessKey) error {
	byAccount := map[string]map[string]*latchkey.Rotation{}
	for _, k := range keys {
		if k.Application == "" {
			continue
		}
		m, ok := byAccount[k.Account]
		if !ok {
			rolls, err := tx.ListRotations(ctx, latchkey.RotationFilter{Account: k.Account, NewestFirst: true, Limit: 1000})
			if err != nil {
				return err
			}
			m = rollsByKey(rolls)
			byAccount[k.Account] = m
		}
		k.Roll = m[k.ID]
	}
	return nil
}
