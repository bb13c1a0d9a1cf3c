package manage

import (
	"context"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// LeakAction is what a leak report does to a live key it matches.
type LeakAction string

const (
	// LeakDeactivate makes the key Inactive at once (the default).
	LeakDeactivate LeakAction = "deactivate"
	// LeakFlag only flags the key exposed.
	LeakFlag LeakAction = "flag"
)

// LeakResult is what a leak report did for one finding.
type LeakResult struct {
	// Status: "deactivated", "flagged" (exposed, left as it was),
	// "already_inactive", or "unknown": no key the reporter may see (a key
	// of another account that a secret reached was still flagged and
	// deactivated).
	Status      string `json:"status"`
	AccessKeyID string `json:"access_key_id,omitempty"`
}

// Leak is one leaked secret as a report gives it.
type Leak struct {
	Digest keyformat.Digest
	// Secret says that the report carried the secret itself, not only its
	// digest (see ReportLeak).
	Secret bool
	// Where it was found, as the reporter says; it is masked before it
	// is recorded (MarkExposed).
	Where string
}

// ReportLeak handles one leaked secret: the matching key is flagged exposed
// with where it was found and, with LeakDeactivate, made Inactive in the
// same transaction, audited with the reporter as actor, and announced by
// a key.exposed event. Keys of admin principals are handled as keys of
// applications: a leaked admin or operator key stops working at once.
//
// Which keys a report reaches depends on what it proves. With the secret
// itself, any key, in any account: whoever holds a secret can use it, so
// anyone may have it stopped. With only its digest (authenticated
// reporters; a copy of the database holds every digest), the keys the
// reporter could deactivate itself; an operator's key in the reporter's
// account is only flagged, for an operator to act on.
//
// The result says what happened only for keys the reporter may read;
// other keys, and digests that match nothing, are "unknown".
func (s *Service) ReportLeak(ctx context.Context, a latchkey.Actor, l Leak, action LeakAction) (LeakResult, error) {
	unknown := LeakResult{Status: "unknown"}
	e := s.Index.Lookup(&l.Digest)
	if e == nil {
		return unknown, nil
	}
	deactivate := action == LeakDeactivate
	if !l.Secret {
		if !a.CanWrite(e.Account) {
			return unknown, nil
		}
		if e.Role() == latchkey.RoleOperator && a.Role != latchkey.RoleOperator {
			deactivate = false
		}
	}
	actor := a
	if actor.Role != latchkey.RoleOperator {
		// The reporter acts for the key's own account, and only to flag
		// and deactivate it.
		actor.Account, actor.Role = e.Account, latchkey.RoleAdmin
	}
	wasActive := e.Active
	k, err := s.MarkExposed(ctx, actor, e.ID, l.Where, deactivate)
	if err != nil {
		if latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
			return unknown, nil
		}
		return LeakResult{}, err
	}
	res := LeakResult{AccessKeyID: k.ID, Status: "flagged"}
	switch {
	case !wasActive:
		res.Status = "already_inactive"
	case deactivate:
		res.Status = "deactivated"
	}
	s.Log.Warn("leaked key reported", "access_key_id", k.ID, "owner", k.Owner(), "status", res.Status, "reporter", a.Principal)
	if wasActive && deactivate && k.Role == latchkey.RoleOperator {
		s.alertIfNoOperatorLeft(ctx, k)
	}
	if !a.CanRead(k.Account) {
		return unknown, nil
	}
	return res, nil
}

// alertIfNoOperatorLeft logs an error when deactivating k left no Active
// operator key: nobody can manage every account until an operator has a
// key again (docs/security.md, "Leaked admin keys").
func (s *Service) alertIfNoOperatorLeft(ctx context.Context, k *latchkey.AccessKey) {
	now := s.now()
	active := 0
	err := s.Store.View(ctx, func(tx latchkey.Tx) error {
		f := latchkey.AccessKeyFilter{Kind: "principal", Limit: 1000}
		for {
			keys, next, err := tx.ListAccessKeys(ctx, f)
			if err != nil {
				return err
			}
			for _, o := range keys {
				if o.Role == latchkey.RoleOperator && o.Status == latchkey.StatusActive && (o.ExpiresAt == nil || o.ExpiresAt.After(now)) {
					active++
				}
			}
			if next == "" || active > 0 {
				return nil
			}
			f.After = next
		}
	})
	switch {
	case err != nil:
		s.Log.Error("counting the operator keys left after a leak report", "access_key_id", k.ID, "err", err)
	case active == 0:
		s.Log.Error("a leak report deactivated the last Active operator key: no operator can sign in until one has a new key (see docs/security.md, Leaked admin keys)",
			"access_key_id", k.ID, "principal", k.Principal, "account", k.Account)
	}
}

// KeyStatus answers whether a digest is a live key the actor may see:
// "Active", "Inactive", "Canary" (to those who may see canaries), or
// "unknown". It never touches the store, and raises no canary alert: the
// one asking is the key's owner checking a scan.
func (s *Service) KeyStatus(a latchkey.Actor, digest keyformat.Digest) (status, id string) {
	e := s.Index.Lookup(&digest)
	if e == nil || !a.CanRead(e.Account) || (e.Canary && !a.CanSeeCanaries(e.Account)) {
		return "unknown", ""
	}
	if e.Canary {
		return "Canary", e.ID
	}
	if e.Active {
		return string(latchkey.StatusActive), e.ID
	}
	return string(latchkey.StatusInactive), e.ID
}
