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
	// "already_inactive", or "unknown" (no key the reporter may see).
	Status      string `json:"status"`
	AccessKeyID string `json:"access_key_id,omitempty"`
}

// ReportLeak handles one leaked secret, given by its digest: the matching
// key is flagged exposed with where it was found and, with LeakDeactivate,
// made Inactive in the same transaction, audited with the reporter as
// actor. account limits the match to one account ("" = any, for operators
// and verified scanning partners); keys outside it are "unknown", as are
// digests that match nothing.
func (s *Service) ReportLeak(ctx context.Context, a latchkey.Actor, account string, digest keyformat.Digest, where string, action LeakAction) (LeakResult, error) {
	e := s.Index.Lookup(&digest)
	if e == nil || (account != "" && e.Account != account) || e.IsPrincipal() && a.Role != latchkey.RoleOperator {
		return LeakResult{Status: "unknown"}, nil
	}
	actor := a
	if actor.Role != latchkey.RoleOperator {
		// A verified reporter acts for the key's own account, and only
		// to flag and deactivate it.
		actor.Account, actor.Role = e.Account, latchkey.RoleAdmin
	}
	wasActive := e.Active
	k, err := s.MarkExposed(ctx, actor, e.ID, where, action == LeakDeactivate)
	if err != nil {
		if latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
			return LeakResult{Status: "unknown"}, nil
		}
		return LeakResult{}, err
	}
	res := LeakResult{AccessKeyID: k.ID, Status: "flagged"}
	switch {
	case !wasActive:
		res.Status = "already_inactive"
	case action == LeakDeactivate:
		res.Status = "deactivated"
	}
	return res, nil
}

// KeyStatus answers whether a digest is a live key the actor may see:
// "Active", "Inactive", or "unknown". It never touches the store.
func (s *Service) KeyStatus(a latchkey.Actor, digest keyformat.Digest) (status, id string) {
	e := s.Index.Lookup(&digest)
	if e == nil || !a.CanRead(e.Account) {
		return "unknown", ""
	}
	if e.Active {
		return string(latchkey.StatusActive), e.ID
	}
	return string(latchkey.StatusInactive), e.ID
}
