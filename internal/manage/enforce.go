package manage

import (
	"context"
	"time"

	"github.com/latchkey/latchkey"
)

// EnforceResult counts what one EnforcePolicies round did.
type EnforceResult struct {
	Notices     int // webhooks queued: rotation due or soon, expiring, unused, actions announced
	Deactivated int
	Deleted     int
	Cancelled   int // announced actions no longer due (the key was used, reactivated or deleted)
	Rolled      int // old keys of rolls deactivated (quiet, or at the hard limit)
	Stalled     int // rolls whose old key was still in use when it was due to go
}

// policyActor is the audit actor of automatic actions.
func policyActor(account string) latchkey.Actor {
	return latchkey.Actor{Principal: latchkey.PolicyActor, Account: account, Role: latchkey.RoleOperator}
}

// enforceBatch is how many ledger entries one transaction inserts.
const enforceBatch = 100

// EnforcePolicies evaluates every key against its account's policy at
// Now and does what falls due: it queues the notices (key.rotation_due,
// key.expiring, key.unused), announces automatic actions ahead of time
// (key.unused with deactivate_at, key.deletion_scheduled with delete_at),
// and applies the announced actions whose time has come through the same
// rules and audit as a person would (actor "policy").
//
// Each notice and action is an entry of the policy ledger keyed by key,
// kind and due time. Inserting the entry and queueing its webhook share a
// transaction, and so do claiming an action and applying it: however many
// replicas run EnforcePolicies, and however often the server restarts,
// each happens once. An action due with less notice than the policy's
// notice_before is postponed until the notice has been given.
//
// Only the keys some account's policy can act on are read
// (latchkey.PolicyCandidates: old enough for rotation, expiring, idle, or
// not Active), a page of 1,000 at a time, with a pause after each page
// three times as long as the page took. The store still visits every key
// to select them, but a key that is used, young and Active is never
// decoded nor evaluated: a round over a million such keys costs the
// scan alone instead of about 15 s of CPU.
func (s *Service) EnforcePolicies(ctx context.Context) (EnforceResult, error) {
	var res EnforceResult
	now := s.now()
	var (
		policy     func(string) latchkey.Policy
		candidates latchkey.PolicyCandidates
		hooks      map[string][]*latchkey.Webhook
	)
	err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		var set []latchkey.Policy
		if policy, set, err = s.policySet(ctx, tx); err != nil {
			return err
		}
		candidates = latchkey.CandidatesOf(set, now)
		all, err := tx.ListWebhooks(ctx, "")
		hooks = map[string][]*latchkey.Webhook{}
		for _, w := range all {
			hooks[w.Account] = append(hooks[w.Account], w)
		}
		return err
	})
	if err != nil {
		return res, err
	}
	wants := func(account, typ string) bool {
		for _, w := range hooks[account] {
			if w.Wants(typ) {
				return true
			}
		}
		return false
	}

	// Notices and announcements: new ledger entries, in batches.
	type entry struct {
		a    *latchkey.PolicyAction
		typ  string
		data any
	}
	var pending []entry
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		batch := pending
		pending = nil
		n := 0
		err := s.update(ctx, func(tx latchkey.Tx) error {
			n = 0
			for _, e := range batch {
				added, err := tx.InsertPolicyAction(ctx, e.a)
				if err != nil {
					return err
				}
				if !added {
					continue // another replica, or an earlier round
				}
				n++
				if err := s.emit(ctx, tx, now, e.a.Account, e.typ, e.data); err != nil {
					return err
				}
			}
			return nil
		}, nil)
		res.Notices += n
		return err
	}
	add := func(k *latchkey.AccessKey, kind string, due, act time.Time, state, typ string, data any) error {
		pending = append(pending, entry{&latchkey.PolicyAction{AccessKeyID: k.ID, Kind: kind, DueAt: due.Truncate(time.Second),
			Account: k.Account, ActAt: act, State: state, CreatedAt: now}, typ, data})
		if len(pending) >= enforceBatch {
			return flush()
		}
		return nil
	}
	evaluate := func(page []*latchkey.AccessKey, states map[string]*latchkey.KeyState) error {
		for _, k := range page {
			p := policy(k.Account)
			ev := p.Evaluate(k, states[k.ID], now)
			sent := func(kind string, due time.Time, typ string, extra map[string]any) error {
				if !wants(k.Account, typ) {
					return nil // no receiver: nothing to send, and nothing recorded
				}
				data := map[string]any{"access_key": keyEvent(k), "findings": ev.Findings}
				for n, v := range extra {
					data[n] = v
				}
				done := now
				pending = append(pending, entry{&latchkey.PolicyAction{AccessKeyID: k.ID, Kind: kind, DueAt: due.Truncate(time.Second),
					Account: k.Account, ActAt: due, State: latchkey.PolicyActionApplied, CreatedAt: now, DoneAt: &done}, typ, data})
				if len(pending) >= enforceBatch {
					return flush()
				}
				return nil
			}
			var err error
			switch {
			case ev.Has(latchkey.FindingRotationDue):
				err = sent(latchkey.NoticeRotationDue, *ev.RotationDueAt, latchkey.EventKeyRotationDue,
					map[string]any{"rotation_due_at": ev.RotationDueAt, "overdue": true})
			case ev.Has(latchkey.FindingRotationSoon):
				err = sent(latchkey.NoticeRotationSoon, *ev.RotationDueAt, latchkey.EventKeyRotationDue,
					map[string]any{"rotation_due_at": ev.RotationDueAt, "overdue": false})
			}
			if err == nil && ev.Has(latchkey.FindingExpiringSoon) {
				err = sent(latchkey.NoticeExpiring, *k.ExpiresAt, latchkey.EventKeyExpiring, map[string]any{"expires_at": k.ExpiresAt})
			}
			if err == nil && ev.Has(latchkey.FindingUnused) {
				err = sent(latchkey.NoticeUnused, ev.UnusedSince.Add(p.UnusedAfter.D()), latchkey.EventKeyUnused,
					map[string]any{"unused_since": ev.UnusedSince, "deactivate_at": nil})
			}
			// Automatic actions are recorded whether or not anyone listens:
			// the entry fixes when the action may happen.
			if err == nil && ev.DeactivateAt != nil && !now.Before(ev.DeactivateAt.Add(-p.NoticeBefore.D())) {
				act := later(*ev.DeactivateAt, now.Add(p.NoticeBefore.D()))
				err = add(k, latchkey.ActionKindDeactivate, *ev.DeactivateAt, act, latchkey.PolicyActionScheduled, latchkey.EventKeyUnused,
					map[string]any{"access_key": keyEvent(k), "findings": ev.Findings, "unused_since": ev.UnusedSince, "deactivate_at": act})
			}
			if err == nil && ev.DeleteAt != nil && !now.Before(ev.DeleteAt.Add(-p.NoticeBefore.D())) {
				act := later(*ev.DeleteAt, now.Add(p.NoticeBefore.D()))
				err = add(k, latchkey.ActionKindDelete, *ev.DeleteAt, act, latchkey.PolicyActionScheduled, latchkey.EventKeyDeletionSched,
					map[string]any{"access_key": keyEvent(k), "findings": ev.Findings, "delete_at": act})
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	// Keys a page at a time, in creation order: a million keys are never
	// in memory at once. Only the keys some policy can act on are read
	// (latchkey.PolicyCandidates): in a store of keys that are used and
	// rotated, few.
	filter := &candidates
	if enforceEveryKey {
		filter = nil
	}
	for token := ""; ; {
		start := time.Now()
		keys, states, next, err := s.enforcePage(ctx, token, filter)
		if err != nil {
			return res, err
		}
		if err := evaluate(keys, states); err != nil {
			return res, err
		}
		if next == "" {
			break
		}
		token = next
		// Background work gives way to verifications: a pause three
		// times as long as the page took keeps a round to about a
		// quarter of one core (a million keys: about 15 s of work spread
		// over a minute).
		if err := sleep(ctx, 3*time.Since(start)); err != nil {
			return res, err
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	if err := s.applyDue(ctx, now, policy, &res); err != nil {
		return res, err
	}
	return res, s.driveRolls(ctx, now, &res)
}

// enforcePageSize is how many keys EnforcePolicies reads at once.
var enforcePageSize = 1000

// enforceEveryKey makes EnforcePolicies read every key, not only the
// candidates: for tests that compare the two.
var enforceEveryKey = false

// enforcePage reads the page of keys after page token token (of those
// filter selects, when not nil), with their
// pending usage, and their states; next is the following page's token,
// "" after the last page.
func (s *Service) enforcePage(ctx context.Context, token string, filter *latchkey.PolicyCandidates) (keys []*latchkey.AccessKey, states map[string]*latchkey.KeyState, next string, err error) {
	s.Index.ReadUsage(func() {
		err = s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
			keys, next, err = tx.ListAccessKeys(ctx, latchkey.AccessKeyFilter{After: token, Limit: enforcePageSize, Policy: filter})
			if err != nil {
				return err
			}
			for _, k := range keys {
				s.mergePending(k)
			}
			states, err = keyStates(ctx, tx, keys)
			return err
		})
	})
	return keys, states, next, err
}

// sleep waits for d, or returns ctx's error if ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// applyDue applies the scheduled actions whose time has come, each in one
// transaction with its claim.
func (s *Service) applyDue(ctx context.Context, now time.Time, policy func(string) latchkey.Policy, res *EnforceResult) error {
	for {
		var due []*latchkey.PolicyAction
		err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
			due, err = tx.ListPolicyActions(ctx, latchkey.PolicyActionFilter{State: latchkey.PolicyActionScheduled, ActBefore: &now, Limit: 100})
			return err
		})
		if err != nil || len(due) == 0 {
			return err
		}
		for _, a := range due {
			if err := s.applyAction(ctx, now, policy(a.Account), a, res); err != nil {
				return err
			}
		}
		if len(due) < 100 {
			return nil
		}
	}
}

func (s *Service) applyAction(ctx context.Context, now time.Time, p latchkey.Policy, a *latchkey.PolicyAction, res *EnforceResult) error {
	var (
		after   *latchkey.AccessKey
		deleted bool
		outcome string
	)
	pend := s.Index.PendingUsage(a.AccessKeyID)
	err := s.update(ctx, func(tx latchkey.Tx) error {
		after, deleted, outcome = nil, false, latchkey.PolicyActionCancelled
		k, err := tx.FindAccessKey(ctx, a.AccessKeyID)
		if err != nil && latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
			return err
		}
		var ev latchkey.Evaluation
		if k != nil {
			if pend.LastUsed != nil && (k.LastUsed == nil || pend.LastUsed.At.After(k.LastUsed.At)) {
				k.LastUsed = pend.LastUsed
			}
			st, err := tx.KeyStates(ctx, []string{k.ID})
			if err != nil {
				return err
			}
			ev = p.Evaluate(k, st[k.ID], now)
		}
		// Still due for the same reason? A key used, reactivated or
		// deleted since the announcement is left alone.
		stillDue := func(t *time.Time) bool { return t != nil && t.Truncate(time.Second).Equal(a.DueAt) && !now.Before(*t) }
		switch {
		case k == nil:
		case a.Kind == latchkey.ActionKindDeactivate && k.Status == latchkey.StatusActive && stillDue(ev.DeactivateAt):
			outcome = latchkey.PolicyActionApplied
		case a.Kind == latchkey.ActionKindDelete && k.Status == latchkey.StatusInactive && stillDue(ev.DeleteAt):
			outcome = latchkey.PolicyActionApplied
		}
		claimed, err := tx.ClaimPolicyAction(ctx, a.AccessKeyID, a.Kind, a.DueAt, outcome, now)
		if err != nil || !claimed || outcome != latchkey.PolicyActionApplied {
			return err // claimed elsewhere, or cancelled
		}
		actor := policyActor(k.Account)
		if a.Kind == latchkey.ActionKindDelete {
			if err := tx.DeleteAccessKey(ctx, k.ID); err != nil {
				return err
			}
			ev, err := s.audit(actor, now, k.Account, latchkey.ActionAccessKeyDelete, "access_key", k.ID, k.Application, k, nil)
			if err != nil {
				return err
			}
			if err := tx.AppendAudit(ctx, ev); err != nil {
				return err
			}
			deleted = true
			return s.keyDeleted(ctx, tx, actor, now, k)
		}
		after, err = s.deactivateAsPolicy(ctx, tx, now, k)
		return err
	}, func() {
		switch {
		case deleted:
			s.Index.Delete(a.AccessKeyID)
		case after != nil:
			s.Index.Put(after)
		}
	})
	if err != nil {
		return err
	}
	switch {
	case deleted:
		res.Deleted++
		s.Log.Info("policy deleted an Inactive key", "access_key_id", a.AccessKeyID, "account", a.Account)
	case after != nil:
		res.Deactivated++
		s.Log.Info("policy deactivated an unused key", "access_key_id", a.AccessKeyID, "account", a.Account)
	case outcome == latchkey.PolicyActionCancelled:
		res.Cancelled++
	}
	return nil
}

// deactivateAsPolicy makes k Inactive in tx, audited and announced with
// the actor "policy", and returns the key as it now is.
func (s *Service) deactivateAsPolicy(ctx context.Context, tx latchkey.Tx, now time.Time, k *latchkey.AccessKey) (*latchkey.AccessKey, error) {
	actor := policyActor(k.Account)
	before := *k
	n := *k
	n.Status, n.UpdatedAt = latchkey.StatusInactive, now
	if err := tx.UpdateAccessKey(ctx, &n); err != nil {
		return nil, err
	}
	ev, err := s.audit(actor, now, k.Account, latchkey.ActionAccessKeyUpdate, "access_key", k.ID, k.Application, &before, &n)
	if err != nil {
		return nil, err
	}
	if err := tx.AppendAudit(ctx, ev); err != nil {
		return nil, err
	}
	return &n, s.keyUpdated(ctx, tx, actor, now, &before, &n, latchkey.EventKeyUpdated)
}

// RunPolicies runs EnforcePolicies every interval until ctx ends, tells
// observe (if set) what each round did, and prunes webhook deliveries
// finished more than retention ago.
func (s *Service) RunPolicies(ctx context.Context, interval, retention time.Duration, observe func(EnforceResult)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		res, err := s.EnforcePolicies(ctx)
		if observe != nil {
			observe(res)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			s.Log.Warn("enforcing hygiene policies", "err", err)
		case res != EnforceResult{}:
			s.Log.Info("hygiene policies enforced", "notices", res.Notices, "deactivated", res.Deactivated,
				"deleted", res.Deleted, "cancelled", res.Cancelled, "rolled", res.Rolled, "stalled", res.Stalled)
		}
		if retention > 0 {
			cut := s.now().Add(-retention)
			err := s.Store.Update(ctx, func(tx latchkey.Tx) error {
				_, err := tx.PruneWebhookEvents(ctx, cut)
				return err
			})
			if err != nil && ctx.Err() == nil {
				s.Log.Warn("pruning webhook deliveries", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
