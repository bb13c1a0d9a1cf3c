package manage

import (
	"bytes"
	"context"
	"time"

	"github.com/latchkey/latchkey"
)

func identityOwner(id string) latchkey.QuotaOwner {
	return latchkey.QuotaOwner{Kind: latchkey.QuotaOwnerIdentity, ID: id}
}

func identityNotFound(id string) error {
	return latchkey.Errorf(latchkey.ENOTFOUND, "identity %s not found", latchkey.CleanText(id, 64))
}

// CreateIdentity makes an identity in account: a customer whose
// applications share its rate limit and quota. Returns EINVALID for a bad
// name, external ID, metadata, rate limit or quota; EEXISTS when the name
// or external ID is taken in the account; ENOTFOUND for an account the
// actor cannot see; EFORBIDDEN for a read-only actor.
func (s *Service) CreateIdentity(ctx context.Context, a latchkey.Actor, account string, in latchkey.NewIdentity) (*latchkey.Identity, error) {
	if err := requireWrite(a, account); err != nil {
		return nil, err
	}
	// A value of the wrong JSON type first: the API answers it as its
	// decoder would (MalformedRequest).
	metadata, err := latchkey.NormalizeMetadata(in.Metadata)
	if err != nil {
		return nil, err
	}
	if err := latchkey.ValidateName("name", in.Name); err != nil {
		return nil, err
	}
	if err := latchkey.ValidateExternalID(in.ExternalID); err != nil {
		return nil, err
	}
	if err := latchkey.ValidateIdentityRateLimit(in.RateLimit); err != nil {
		return nil, err
	}
	if err := validateQuota(in.Quota); err != nil {
		return nil, err
	}
	id, err := randomID(latchkey.IdentityPrefix, 10)
	if err != nil {
		return nil, err
	}
	now := s.now()
	ident := &latchkey.Identity{ID: id, Account: account, Name: in.Name, ExternalID: in.ExternalID, Metadata: metadata,
		RateLimit: in.RateLimit, CreatedAt: now, UpdatedAt: now}
	err = s.update(ctx, func(tx latchkey.Tx) error {
		if err := tx.CreateIdentity(ctx, ident); err != nil {
			return err
		}
		if in.Quota != nil {
			if err := s.writeIdentityQuota(ctx, tx, a, now, ident, in.Quota, false, false); err != nil {
				return err
			}
		}
		ev, err := s.audit(a, now, account, latchkey.ActionIdentityCreate, "identity", id, "", nil, ident)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ev)
	}, nil)
	if err != nil {
		return nil, err
	}
	return ident, nil
}

// GetIdentity returns an identity with its quota. Returns ENOTFOUND if it
// does not exist or the actor cannot see its account.
func (s *Service) GetIdentity(ctx context.Context, a latchkey.Actor, account, id string) (*latchkey.Identity, error) {
	if err := requireRead(a, account); err != nil {
		return nil, err
	}
	if !latchkey.ValidIdentityID(id) {
		return nil, identityNotFound(id)
	}
	var out *latchkey.Identity
	err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		out, err = tx.FindIdentity(ctx, account, id, s.now())
		return err
	})
	return out, err
}

// ListIdentities returns one page of an account's identities, by ID;
// f.ExternalID selects the one with that external ID. Returns EINVALID
// for a bad external ID.
func (s *Service) ListIdentities(ctx context.Context, a latchkey.Actor, f latchkey.IdentityFilter) ([]*latchkey.Identity, string, error) {
	if err := requireRead(a, f.Account); err != nil {
		return nil, "", err
	}
	if err := latchkey.ValidateExternalID(f.ExternalID); err != nil {
		return nil, "", err
	}
	if f.After != "" && !latchkey.ValidIdentityID(f.After) {
		return nil, "", latchkey.Errorf(latchkey.EINVALID, "page_token is not valid")
	}
	var (
		out  []*latchkey.Identity
		next string
	)
	err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		out, next, err = tx.ListIdentities(ctx, f)
		return err
	})
	return out, next, err
}

// UpdateIdentity changes an identity. A new rate limit, quota, external
// ID or metadata applies to every key of the identity's applications as
// soon as UpdateIdentity returns. A call that changes nothing writes
// nothing and no audit event. Returns ENOTFOUND, EFORBIDDEN, EINVALID,
// EEXISTS (name or external ID taken).
func (s *Service) UpdateIdentity(ctx context.Context, a latchkey.Actor, account, id string, u latchkey.IdentityUpdate) (*latchkey.Identity, error) {
	if err := requireWrite(a, account); err != nil {
		return nil, err
	}
	if u.Name != nil {
		if err := latchkey.ValidateName("name", *u.Name); err != nil {
			return nil, err
		}
	}
	if u.ExternalID != nil {
		if err := latchkey.ValidateExternalID(*u.ExternalID); err != nil {
			return nil, err
		}
	}
	var metadata []byte
	if u.Metadata != nil {
		var err error
		if metadata, err = latchkey.NormalizeMetadata(u.Metadata); err != nil {
			return nil, err
		}
	}
	if u.RateLimit != nil && u.RemoveRateLimit {
		return nil, latchkey.Errorf(latchkey.EINVALID, "give rate_limit or remove_rate_limit, not both")
	}
	if err := latchkey.ValidateIdentityRateLimit(u.RateLimit); err != nil {
		return nil, err
	}
	if u.Quota != nil && u.RemoveQuota {
		return nil, latchkey.Errorf(latchkey.EINVALID, "give quota or remove_quota, not both")
	}
	if err := validateQuota(u.Quota); err != nil {
		return nil, err
	}
	if !latchkey.ValidIdentityID(id) {
		return nil, identityNotFound(id)
	}
	now := s.now()
	var (
		out  *latchkey.Identity
		keys []*latchkey.AccessKey
	)
	err := s.update(ctx, func(tx latchkey.Tx) error {
		keys = nil
		before, err := tx.FindIdentity(ctx, account, id, now)
		if err != nil {
			return err
		}
		after := *before
		if u.Name != nil {
			after.Name = *u.Name
		}
		if u.ExternalID != nil {
			after.ExternalID = *u.ExternalID
		}
		if u.Metadata != nil {
			after.Metadata = metadata
		}
		switch {
		case u.RemoveRateLimit:
			after.RateLimit = nil
		case u.RateLimit != nil:
			after.RateLimit = u.RateLimit
		}
		out = &after
		changed := after.Name != before.Name || after.ExternalID != before.ExternalID ||
			!bytes.Equal(after.Metadata, before.Metadata) || !sameRateLimit(after.RateLimit, before.RateLimit)
		quotaChange := u.Quota != nil || (u.RemoveQuota && before.Quota != nil)
		if !changed && !quotaChange {
			return nil // nothing changes: no write, no audit event
		}
		if changed {
			after.UpdatedAt = now
			if err := tx.UpdateIdentity(ctx, &after); err != nil {
				return err
			}
			ev, err := s.audit(a, now, account, latchkey.ActionIdentityUpdate, "identity", id, "", before, &after)
			if err != nil {
				return err
			}
			if err := tx.AppendAudit(ctx, ev); err != nil {
				return err
			}
		}
		if quotaChange {
			if err := s.writeIdentityQuota(ctx, tx, a, now, &after, u.Quota, u.RemoveQuota, true); err != nil {
				return err
			}
		}
		keys, err = s.identityKeys(ctx, tx, account, id)
		return err
	}, func() {
		for _, k := range keys {
			s.Index.Put(k)
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteIdentity deletes an identity that no application belongs to, and
// its quota. Returns ECONFLICT while applications still belong to it
// (move them to another identity or to none first), ENOTFOUND,
// EFORBIDDEN.
func (s *Service) DeleteIdentity(ctx context.Context, a latchkey.Actor, account, id string) error {
	if err := requireWrite(a, account); err != nil {
		return err
	}
	if !latchkey.ValidIdentityID(id) {
		return identityNotFound(id)
	}
	now := s.now()
	return s.update(ctx, func(tx latchkey.Tx) error {
		before, err := tx.FindIdentity(ctx, account, id, now)
		if err != nil {
			return err
		}
		if err := tx.DeleteIdentity(ctx, account, id); err != nil {
			return err
		}
		ev, err := s.audit(a, now, account, latchkey.ActionIdentityDelete, "identity", id, "", before, nil)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ev)
	}, nil)
}

// identityKeys reads every key of the identity's applications, as the
// index holds them, for a reload after a change of the identity.
func (s *Service) identityKeys(ctx context.Context, tx latchkey.Tx, account, id string) ([]*latchkey.AccessKey, error) {
	ids, err := tx.IdentityKeyIDs(ctx, account, id)
	if err != nil {
		return nil, err
	}
	keys := make([]*latchkey.AccessKey, 0, len(ids))
	for _, kid := range ids {
		k, err := tx.FindAccessKey(ctx, kid)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// writeIdentityQuota sets (q != nil) or removes ident's quota in tx,
// records it in the quota's history and, when audit, in the audit log
// (identity.quota_update), and sets ident.Quota.
func (s *Service) writeIdentityQuota(ctx context.Context, tx latchkey.Tx, a latchkey.Actor, now time.Time, ident *latchkey.Identity, q *latchkey.Quota, remove, audit bool) error {
	before := ident.Quota
	if remove && before == nil {
		return nil
	}
	nq, err := setOwnerQuota(ctx, tx, a, now, identityOwner(ident.ID), ident.Account, q, remove)
	if err != nil {
		return err
	}
	ident.Quota = nq
	if !audit {
		return nil
	}
	return s.auditIdentityQuota(ctx, tx, a, now, ident, before, ident.Quota)
}

func (s *Service) auditIdentityQuota(ctx context.Context, tx latchkey.Tx, a latchkey.Actor, now time.Time, ident *latchkey.Identity, before, after *latchkey.Quota) error {
	ev, err := s.audit(a, now, ident.Account, latchkey.ActionIdentityQuotaUpdate, "identity", ident.ID, "", nilQuota(before), nilQuota(after))
	if err != nil {
		return err
	}
	return tx.AppendAudit(ctx, ev)
}

// GetIdentityQuota returns an identity's quota and its history. Returns
// ENOTFOUND when the actor may not read the identity, or it has no quota.
func (s *Service) GetIdentityQuota(ctx context.Context, a latchkey.Actor, account, id string) (*QuotaView, error) {
	ident, err := s.GetIdentity(ctx, a, account, id)
	if err != nil {
		return nil, err
	}
	if ident.Quota == nil {
		return nil, latchkey.Errorf(latchkey.ENOTFOUND, "identity %s has no quota", id)
	}
	v := &QuotaView{IdentityID: id, Quota: ident.Quota}
	err = s.Store.View(ctx, func(tx latchkey.Tx) error {
		v.History, err = tx.ListQuotaChanges(ctx, identityOwner(id), latchkey.MaxQuotaHistory)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.addHeld(ctx, identityOwner(id), v.Quota, s.now())
	return v, nil
}

// TopUpIdentityQuota adds amount (1 or more) to what an identity's quota
// has left. What this replica holds leased and has not spent is added
// back to the ledger's new figure, as TopUpQuota does for a key's; what
// other replicas (or a shared store) hold is dropped with the
// generation. Audited as
// identity.quota_update. Returns ENOTFOUND without a quota, EINVALID for
// a bad amount, EFORBIDDEN for a read-only actor.
func (s *Service) TopUpIdentityQuota(ctx context.Context, a latchkey.Actor, account, id string, amount int64) (*latchkey.Quota, error) {
	if err := requireWrite(a, account); err != nil {
		return nil, err
	}
	if !latchkey.ValidIdentityID(id) {
		return nil, identityNotFound(id)
	}
	if amount < 1 || amount > latchkey.MaxQuota {
		return nil, latchkey.Errorf(latchkey.EINVALID, "amount: must be 1 to %d, got %d", int64(latchkey.MaxQuota), amount)
	}
	now := s.now()
	var (
		out  *latchkey.Quota
		keys []*latchkey.AccessKey
	)
	// Held before the transaction, in the order leases take them: the
	// cell, then the store.
	hold := s.Index.HoldIdentityQuota(id)
	err := s.update(ctx, func(tx latchkey.Tx) error {
		ident, err := tx.FindIdentity(ctx, account, id, now)
		if err != nil {
			return err
		}
		if ident.Quota == nil {
			return latchkey.Errorf(latchkey.ENOTFOUND, "identity %s has no quota; set one with PATCH quota", id)
		}
		before := *ident.Quota
		held := hold.Drain(&before, now)
		before.Remaining, before.Leased = min(before.Remaining+held, latchkey.MaxQuota), held
		q, err := tx.TopUpQuota(ctx, identityOwner(id), amount+held, now)
		if err != nil {
			return err
		}
		out = q
		if err := tx.AddQuotaChange(ctx, identityOwner(id), &latchkey.QuotaChange{At: now, Kind: latchkey.QuotaTopUp,
			Amount: amount, Remaining: q.Remaining, Actor: a.Principal}); err != nil {
			return err
		}
		if err := s.auditIdentityQuota(ctx, tx, a, now, ident, &before, q); err != nil {
			return err
		}
		keys, err = s.identityKeys(ctx, tx, account, id)
		return err
	}, func() {
		for _, k := range keys {
			s.Index.Put(k)
		}
	})
	hold.Release(err == nil)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// sameRateLimit compares two rate limits.
func sameRateLimit(a, b *latchkey.RateLimit) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
