package manage

import (
	"context"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
)

// QuotaView is a key's or an identity's quota with its recent history,
// newest first.
type QuotaView struct {
	AccessKeyID string                  `json:"access_key_id,omitempty"`
	IdentityID  string                  `json:"identity_id,omitempty"`
	Quota       *latchkey.Quota         `json:"quota"`
	History     []*latchkey.QuotaChange `json:"history"`
}

func keyOwner(id string) latchkey.QuotaOwner {
	return latchkey.QuotaOwner{Kind: latchkey.QuotaOwnerKey, ID: id}
}

// validateQuota checks a quota given for key k: application keys only
// (an admin principal's key is never metered), and no canary.
func validateQuota(q *latchkey.Quota) error {
	if q == nil {
		return nil
	}
	return q.Validate()
}

func quotaAllowed(k *latchkey.AccessKey) error {
	if k.Principal != "" {
		return latchkey.Errorf(latchkey.EINVALID, "quota: only an application's key may have a quota")
	}
	if k.Canary {
		return latchkey.Errorf(latchkey.EINVALID, "quota: a canary key never authorizes anything: give it no quota")
	}
	return nil
}

// writeQuota sets (q != nil) or removes k's quota in tx, records it in
// the quota's history and the audit log, and sets k.Quota. remove on a
// key without a quota changes nothing.
func (s *Service) writeQuota(ctx context.Context, tx latchkey.Tx, a latchkey.Actor, now time.Time, k *latchkey.AccessKey, q *latchkey.Quota, remove bool) error {
	owner := keyOwner(k.ID)
	before := k.Quota
	if before != nil {
		// The audit's before is what a read at now says: the ledger
		// with what this replica holds leased added back.
		cur, err := tx.FindQuota(ctx, owner, now)
		if err != nil && latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
			return err
		}
		if cur != nil {
			if held := s.Index.QuotaHeld(keyOwner(k.ID), cur, now); held > 0 {
				cur.Remaining, cur.Leased = min(cur.Remaining+held, latchkey.MaxQuota), held
			}
			before = cur
		}
	}
	if remove && before == nil {
		return nil
	}
	nq, err := setOwnerQuota(ctx, tx, a, now, owner, k.Account, q, remove)
	if err != nil {
		return err
	}
	k.Quota = nq
	return s.auditQuota(ctx, tx, a, now, k, before, k.Quota)
}

// setOwnerQuota sets owner's quota to q, or removes it (remove), in tx,
// and records the change in the quota's history; it returns the quota
// now in force (nil when removed). Auditing is the caller's: a key's and
// an identity's are audited under different actions.
func setOwnerQuota(ctx context.Context, tx latchkey.Tx, a latchkey.Actor, now time.Time, owner latchkey.QuotaOwner, account string, q *latchkey.Quota, remove bool) (*latchkey.Quota, error) {
	change := &latchkey.QuotaChange{At: now, Actor: a.Principal}
	var nq *latchkey.Quota
	if remove {
		if err := tx.DeleteQuota(ctx, owner); err != nil {
			return nil, err
		}
		change.Kind = latchkey.QuotaRemoved
	} else {
		nq = &latchkey.Quota{Remaining: q.Remaining, Refill: q.Refill, LowThreshold: q.LowThreshold}
		if err := tx.SetQuota(ctx, owner, account, nq, now); err != nil {
			return nil, err
		}
		change.Kind, change.Amount, change.Remaining = latchkey.QuotaSet, q.Remaining, nq.Remaining
	}
	if err := tx.AddQuotaChange(ctx, owner, change); err != nil {
		return nil, err
	}
	return nq, nil
}

func (s *Service) auditQuota(ctx context.Context, tx latchkey.Tx, a latchkey.Actor, now time.Time, k *latchkey.AccessKey, before, after *latchkey.Quota) error {
	ev, err := s.audit(a, now, k.Account, latchkey.ActionQuotaUpdate, "access_key", k.ID, k.Application, nilQuota(before), nilQuota(after))
	if err != nil {
		return err
	}
	return tx.AppendAudit(ctx, ev)
}

// nilQuota keeps a typed nil out of the audit's before/after.
func nilQuota(q *latchkey.Quota) any {
	if q == nil {
		return nil
	}
	return q
}

// QuotaHolder says what replicas hold leased from owner's quota q (its
// generation and period as presented at now) and have not spent.
type QuotaHolder interface {
	QuotaHeld(ctx context.Context, owner latchkey.QuotaOwner, q *latchkey.Quota, now time.Time) (int64, error)
}

// addHeld makes owner's quota q, as the ledger presents it at now (what
// replicas leased counted as spent), say what can still be granted: the
// units replicas hold leased and have not spent are added back to
// Remaining and shown as Leased. With one replica, or with a shared
// store, the figure is exact; otherwise other replicas' unspent leases
// still count as spent (docs/quotas.md). A holder that cannot answer
// leaves the ledger's figure, which never overstates.
func (s *Service) addHeld(ctx context.Context, owner latchkey.QuotaOwner, q *latchkey.Quota, now time.Time) {
	if q == nil {
		return
	}
	var held int64
	if s.QuotaHolds != nil {
		n, err := s.QuotaHolds.QuotaHeld(ctx, owner, q, now)
		if err != nil {
			s.Log.Warn("quota read: what replicas hold leased is not known; the ledger's figure is shown", "owner", owner.Kind, "id", owner.ID, "error", err)
		}
		held = n
	} else if s.Index != nil {
		held = s.Index.QuotaHeld(owner, q, now)
	}
	if held > 0 {
		q.Leased = held
		q.Remaining = min(q.Remaining+held, latchkey.MaxQuota)
	}
}

// GetQuota returns a key's quota and its history. Returns ENOTFOUND when
// the actor may not read the key, or it has no quota.
func (s *Service) GetQuota(ctx context.Context, a latchkey.Actor, id string) (*QuotaView, error) {
	k, err := s.GetAccessKey(ctx, a, id)
	if err != nil {
		return nil, err
	}
	v := &QuotaView{AccessKeyID: k.ID}
	now := s.now()
	err = s.Store.View(ctx, func(tx latchkey.Tx) error {
		if v.Quota, err = tx.FindQuota(ctx, keyOwner(k.ID), now); err != nil {
			if latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
				return latchkey.Errorf(latchkey.ENOTFOUND, "access key %s has no quota", k.ID)
			}
			return err
		}
		v.History, err = tx.ListQuotaChanges(ctx, keyOwner(k.ID), latchkey.MaxQuotaHistory)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.addHeld(ctx, keyOwner(k.ID), v.Quota, now)
	return v, nil
}

// TopUpQuota adds amount (1 or more) to what a key's quota has left.
// What this replica holds leased and has not spent is added back to the
// ledger's new figure, so that with one replica the result is exact and
// what was shown as remaining grows by amount; what other replicas (or a
// shared store) hold is dropped with the generation. Audited. Returns
// ENOTFOUND without a quota, EINVALID for a bad amount, EFORBIDDEN for a
// read-only actor.
func (s *Service) TopUpQuota(ctx context.Context, a latchkey.Actor, id string, amount int64) (*latchkey.Quota, error) {
	if amount < 1 || amount > latchkey.MaxQuota {
		return nil, latchkey.Errorf(latchkey.EINVALID, "amount: must be 1 to %d, got %d", int64(latchkey.MaxQuota), amount)
	}
	now := s.now()
	var after *latchkey.AccessKey
	// Held before the transaction, in the order leases take them: the
	// cell, then the store.
	hold := s.Index.HoldQuota(id)
	err := s.update(ctx, func(tx latchkey.Tx) error {
		k, err := s.findWritableKey(ctx, tx, a, id)
		if err != nil {
			return err
		}
		if k.Quota == nil {
			return latchkey.Errorf(latchkey.ENOTFOUND, "access key %s has no quota; set one with PATCH quota", k.ID)
		}
		// The ledger at now (the key's row was presented at the
		// store's clock).
		cur, err := tx.FindQuota(ctx, keyOwner(k.ID), now)
		if err != nil {
			return err
		}
		before := *cur
		held := hold.Drain(&before, now)
		before.Remaining, before.Leased = min(before.Remaining+held, latchkey.MaxQuota), held
		q, err := tx.TopUpQuota(ctx, keyOwner(k.ID), amount+held, now)
		if err != nil {
			return err
		}
		k.Quota, after = q, k
		if err := tx.AddQuotaChange(ctx, keyOwner(k.ID), &latchkey.QuotaChange{At: now, Kind: latchkey.QuotaTopUp,
			Amount: amount, Remaining: q.Remaining, Actor: a.Principal}); err != nil {
			return err
		}
		return s.auditQuota(ctx, tx, a, now, k, &before, q)
	}, func() { s.Index.Put(after) })
	hold.Release(err == nil)
	if err != nil {
		return nil, err
	}
	return after.Quota, nil
}

// quotaEventData is what quota.low and quota.exhausted say: the key
// (access_key_id, application) or the identity (identity_id,
// external_id) whose quota it is.
type quotaEventData struct {
	AccessKeyID string     `json:"access_key_id,omitempty"`
	IdentityID  string     `json:"identity_id,omitempty"`
	ExternalID  string     `json:"external_id,omitempty"`
	Account     string     `json:"account"`
	Application string     `json:"application,omitempty"`
	Remaining   int64      `json:"remaining"`
	Threshold   int64      `json:"low_threshold,omitempty"`
	NextRefill  *time.Time `json:"next_refill_at,omitempty"`
}

// quotaEventFor names owner in a quota event; ok is false when the owner
// is gone (the lease is then stale).
func (s *Service) quotaEventFor(ctx context.Context, tx latchkey.Tx, owner latchkey.QuotaOwner) (quotaEventData, bool, error) {
	if owner.Kind == latchkey.QuotaOwnerIdentity {
		ki, err := tx.FindKeyIdentity(ctx, owner.ID)
		if err != nil || ki == nil {
			return quotaEventData{}, false, err
		}
		return quotaEventData{IdentityID: ki.ID, ExternalID: ki.ExternalID, Account: ki.Account}, true, nil
	}
	e := s.Index.Get(owner.ID)
	if e == nil {
		return quotaEventData{}, false, nil
	}
	return quotaEventData{AccessKeyID: owner.ID, Account: e.Account, Application: e.Application()}, true, nil
}

// LeaseQuota implements verify.QuotaLeaser over the store: the lease is
// durable when it returns, and the quota.low and quota.exhausted events
// it triggers are queued in the same transaction.
func (s *Service) LeaseQuota(owner latchkey.QuotaOwner, gen, want int64, now time.Time) (latchkey.QuotaLease, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if owner.Kind == latchkey.QuotaOwnerKey && s.Index.Get(owner.ID) == nil {
		return latchkey.QuotaLease{Stale: true}, nil
	}
	var out latchkey.QuotaLease
	var emitted bool
	err := s.Store.Update(ctx, func(tx latchkey.Tx) error {
		emitted = false
		l, err := tx.LeaseQuota(ctx, owner, gen, want, now)
		if err != nil {
			return err
		}
		out = *l
		if !l.Low && !l.Exhausted {
			return nil
		}
		d, ok, err := s.quotaEventFor(ctx, tx, owner)
		if err != nil || !ok {
			return err
		}
		q, err := tx.FindQuota(ctx, owner, now)
		if err != nil {
			return err
		}
		d.Remaining, d.Threshold, d.NextRefill = l.Left, q.LowThreshold, q.NextRefillAt
		emitted = true
		if l.Low {
			if err := s.emit(ctx, tx, now, d.Account, latchkey.EventQuotaLow, d); err != nil {
				return err
			}
		}
		if l.Exhausted {
			return s.emit(ctx, tx, now, d.Account, latchkey.EventQuotaExhausted, d)
		}
		return nil
	})
	if err != nil {
		s.Log.Warn("quota lease failed", "owner", owner.Kind, "id", owner.ID, "error", err)
		return latchkey.QuotaLease{}, err
	}
	if emitted && s.Wake != nil {
		s.Wake()
	}
	return out, nil
}

// ReturnQuota implements verify.QuotaLeaser.
func (s *Service) ReturnQuota(owner latchkey.QuotaOwner, gen, period, n int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Store.Update(ctx, func(tx latchkey.Tx) error {
		return tx.ReturnQuota(ctx, owner, gen, period, n)
	})
}

var _ verify.QuotaLeaser = (*Service)(nil)
