package manage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// CreatedKey is a new key with its secret, which exists only here: it is
// returned once and never stored.
type CreatedKey struct {
	*latchkey.AccessKey
	// Secret is "" for a signing key, whose private half latchkey never
	// sees.
	Secret string `json:"secret_access_key,omitempty"`
}

// CreateAccessKey creates a key for an application. Returns ELIMIT when the
// application already owns the maximum number of keys, ENOTFOUND for an
// unknown application, EINVALID for a bad description, external ID or
// metadata, an expiry in the past or a public key it does not accept,
// EFORBIDDEN for a read-only actor. With in.PublicKey it makes a signing
// key: no secret, and the secret digest stored is latchkey.SigningDigest,
// which no secret matches.
func (s *Service) CreateAccessKey(ctx context.Context, a latchkey.Actor, account, application string, in latchkey.NewAccessKey) (*CreatedKey, error) {
	if err := requireWrite(a, account); err != nil {
		return nil, err
	}
	if err := latchkey.ValidateDescription(in.Description); err != nil {
		return nil, err
	}
	if err := validateRestrictions(in.Restrictions, in.ReportOnly); err != nil {
		return nil, err
	}
	if err := latchkey.ValidateExternalID(in.ExternalID); err != nil {
		return nil, err
	}
	if err := validateQuota(in.Quota); err != nil {
		return nil, err
	}
	metadata, err := latchkey.NormalizeMetadata(in.Metadata)
	if err != nil {
		return nil, err
	}
	bound, err := latchkey.CertBinding(in.CertificateThumbprint, in.Certificate)
	if err != nil {
		return nil, err
	}
	var pub *latchkey.PublicKey
	if in.PublicKey != "" {
		if in.Canary {
			return nil, latchkey.Errorf(latchkey.EINVALID, "a canary key is a bearer key: give it no public_key")
		}
		if pub, err = latchkey.ParsePublicKey(in.PublicKey); err != nil {
			return nil, err
		}
	}
	now := s.now()
	if in.ExpiresAt != nil {
		t := in.ExpiresAt.UTC().Truncate(time.Microsecond)
		if !t.After(now) {
			return nil, latchkey.Errorf(latchkey.EINVALID, "expires_at %s is not in the future", t.Format(time.RFC3339))
		}
		in.ExpiresAt = &t
	}
	if in.Canary && (in.Restrictions != nil || in.ReportOnly != nil) {
		return nil, latchkey.Errorf(latchkey.EINVALID, "a canary key never authorizes anything: give it no restrictions or report_only_restrictions")
	}
	var out *CreatedKey
	err = retryOnCollision(func() error {
		id, secret, err := s.newKeyMaterial()
		if err != nil {
			return err
		}
		k := &latchkey.AccessKey{
			ID: id, Account: account, Application: application, Description: in.Description,
			Status: latchkey.StatusActive, CreatedAt: now, UpdatedAt: now, ExpiresAt: in.ExpiresAt,
			SecretDigest: keyformat.Sum(secret), Restrictions: nilIfEmpty(in.Restrictions), ReportOnly: nilIfEmpty(in.ReportOnly),
			ExternalID: in.ExternalID, Metadata: metadata, Canary: in.Canary,
			KeyType: latchkey.KeyTypeBearer, CertThumbprint: bound,
		}
		if pub != nil {
			k.KeyType, k.PublicKey, k.SecretDigest = latchkey.KeyTypeSigning, pub, latchkey.SigningDigest(id)
			secret = ""
		}
		return s.update(ctx, func(tx latchkey.Tx) error {
			if err := s.insertAppKey(ctx, tx, a, now, k, &secret); err != nil {
				return err
			}
			if in.Quota != nil {
				if err := quotaAllowed(k); err != nil {
					return err
				}
				if err := s.writeQuota(ctx, tx, a, now, k, in.Quota, false); err != nil {
					return err
				}
			}
			out = &CreatedKey{AccessKey: k, Secret: secret}
			return nil
		}, func() { s.Index.Put(k) })
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// insertAppKey stores the new application key k in tx, within the
// application's key limit (ELIMIT), audited and announced. A bearer key's
// *secret (a lksk_ secret) gets the account's key prefix, and k its digest.
func (s *Service) insertAppKey(ctx context.Context, tx latchkey.Tx, a latchkey.Actor, now time.Time, k *latchkey.AccessKey, secret *string) error {
	app, err := tx.FindApplication(ctx, k.Account, k.Application)
	if err != nil {
		return err
	}
	if k.KeyType == latchkey.KeyTypeBearer && *secret != "" {
		acc, err := tx.FindAccount(ctx, k.Account)
		if err != nil {
			return err
		}
		if acc.KeyPrefix != "" {
			if *secret, err = keyformat.WithPrefix(*secret, acc.KeyPrefix); err != nil {
				return latchkey.Internal(err)
			}
			k.SecretDigest = keyformat.Sum(*secret)
		}
	}
	if err := s.setAppFields(ctx, tx, k, app); err != nil {
		return err
	}
	// KeyCount leaves canaries out: they take no place of the two a
	// rotation needs.
	if !k.Canary && app.KeyCount >= s.MaxKeysPerApplication {
		return latchkey.Errorf(latchkey.ELIMIT,
			"application %q already has %d access keys, the most it may have; delete an Inactive key first (deactivate a key it no longer needs, check that nothing still uses it, then delete it)",
			k.Application, app.KeyCount)
	}
	if err := tx.CreateAccessKey(ctx, k); err != nil {
		return err
	}
	ev, err := s.audit(a, now, k.Account, latchkey.ActionAccessKeyCreate, "access_key", k.ID, k.Application, nil, k)
	if err != nil {
		return err
	}
	if err := tx.AppendAudit(ctx, ev); err != nil {
		return err
	}
	return s.keyCreated(ctx, tx, a, now, k)
}

// GetAccessKey returns a key the actor may read, with usage not yet flushed
// merged in. Returns ENOTFOUND otherwise: another account's key looks
// exactly like a missing one.
func (s *Service) GetAccessKey(ctx context.Context, a latchkey.Actor, id string) (*latchkey.AccessKey, error) {
	if !keyformat.ValidID(id) {
		return nil, keyNotFound(id)
	}
	var k *latchkey.AccessKey
	var err error
	s.Index.ReadUsage(func() {
		err = s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
			k, err = tx.FindAccessKey(ctx, id)
			return err
		})
		if err == nil {
			s.mergePending(k)
		}
	})
	if err != nil {
		if latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
			return nil, keyNotFound(id)
		}
		return nil, err
	}
	if !a.CanRead(k.Account) || (k.Canary && !a.CanSeeCanaries(k.Account)) {
		return nil, keyNotFound(id)
	}
	s.addFindings(ctx, []*latchkey.AccessKey{k})
	s.addHeld(ctx, keyOwner(k.ID), k.Quota, s.now())
	return k, nil
}

func keyNotFound(id string) error {
	if !keyformat.ValidID(id) {
		return latchkey.Errorf(latchkey.ENOTFOUND, "access key not found")
	}
	return latchkey.Errorf(latchkey.ENOTFOUND, "access key %s not found", id)
}

// mergePending adds usage that is still in memory to k.
func (s *Service) mergePending(k *latchkey.AccessKey) {
	p := s.Index.PendingUsage(k.ID)
	k.UseCount += p.Uses
	k.RejectCount += p.Rejections
	k.WouldDenyCount += p.WouldDeny
	if p.LastUsed != nil && (k.LastUsed == nil || p.LastUsed.At.After(k.LastUsed.At)) {
		k.LastUsed = p.LastUsed
	}
	if p.LastRejected != nil && (k.LastRejected == nil || p.LastRejected.At.After(k.LastRejected.At)) {
		k.LastRejected = p.LastRejected
	}
	if p.LastWouldDeny != nil && (k.LastWouldDeny == nil || p.LastWouldDeny.At.After(k.LastWouldDeny.At)) {
		k.LastWouldDeny = p.LastWouldDeny
	}
}

// validateRestrictions checks and normalises restriction sets.
func validateRestrictions(rs ...*latchkey.Restrictions) error {
	for _, r := range rs {
		if err := r.Validate(); err != nil {
			return err
		}
	}
	return nil
}

func nilIfEmpty(r *latchkey.Restrictions) *latchkey.Restrictions {
	if r.Empty() {
		return nil
	}
	return r
}

// ListAccessKeys returns one page of keys the actor may read. f.Account ""
// lists every account (operators only; others get their own).
func (s *Service) ListAccessKeys(ctx context.Context, a latchkey.Actor, f latchkey.AccessKeyFilter) ([]*latchkey.AccessKey, string, error) {
	if f.Account == "" && a.Role != latchkey.RoleOperator {
		f.Account = a.Account
	}
	if err := latchkey.ValidateExternalID(f.ExternalID); err != nil {
		return nil, "", err
	}
	if f.Account != "" {
		if err := requireRead(a, f.Account); err != nil {
			return nil, "", err
		}
		f.NoCanaries = !a.CanSeeCanaries(f.Account)
	}
	var (
		keys []*latchkey.AccessKey
		next string
	)
	var err error
	s.Index.ReadUsage(func() {
		err = s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
			if f.Application != "" && f.Account != "" {
				if _, err := tx.FindApplication(ctx, f.Account, f.Application); err != nil {
					return err
				}
			}
			keys, next, err = tx.ListAccessKeys(ctx, f)
			return err
		})
		for _, k := range keys {
			s.mergePending(k)
		}
	})
	if err == nil {
		s.addFindings(ctx, keys)
	}
	return keys, next, err
}

// UpdateAccessKey changes a key's status, description, expiry,
// restrictions, external ID or metadata. Returns
// ENOTFOUND, EFORBIDDEN, EINVALID.
func (s *Service) UpdateAccessKey(ctx context.Context, a latchkey.Actor, id string, u latchkey.AccessKeyUpdate) (*latchkey.AccessKey, error) {
	if u.Description != nil {
		if err := latchkey.ValidateDescription(*u.Description); err != nil {
			return nil, err
		}
	}
	if u.Status != nil {
		st, err := latchkey.ParseStatus(string(*u.Status))
		if err != nil {
			return nil, err
		}
		u.Status = &st
	}
	if err := validateRestrictions(u.Restrictions, u.ReportOnly); err != nil {
		return nil, err
	}
	if u.ExternalID != nil {
		if err := latchkey.ValidateExternalID(*u.ExternalID); err != nil {
			return nil, err
		}
	}
	var metadata json.RawMessage
	if u.Metadata != nil {
		var err error
		if metadata, err = latchkey.NormalizeMetadata(u.Metadata); err != nil {
			return nil, err
		}
	}
	if err := validateQuota(u.Quota); err != nil {
		return nil, err
	}
	bound, err := updatedCertBinding(u)
	if err != nil {
		return nil, err
	}
	if u.Quota != nil && u.RemoveQuota {
		return nil, latchkey.Errorf(latchkey.EINVALID, "give quota or remove_quota, not both")
	}
	if u.ClearExpiry && u.ExpiresAt != nil {
		return nil, latchkey.Errorf(latchkey.EINVALID, "give expires_at or clear_expiry, not both")
	}
	if u.EnforceReportOnly && u.ReportOnly != nil {
		return nil, latchkey.Errorf(latchkey.EINVALID, "give report_only_restrictions or enforce_report_only, not both")
	}
	now := s.now()
	if u.ExpiresAt != nil {
		t := u.ExpiresAt.UTC().Truncate(time.Microsecond)
		if !t.After(now) {
			return nil, latchkey.Errorf(latchkey.EINVALID, "expires_at %s is not in the future", t.Format(time.RFC3339))
		}
		u.ExpiresAt = &t
	}
	var after *latchkey.AccessKey
	err = s.update(ctx, func(tx latchkey.Tx) error {
		before, err := s.findWritableKey(ctx, tx, a, id)
		if err != nil {
			return err
		}
		k := *before
		changed := false
		if u.Status != nil && *u.Status != k.Status {
			k.Status, changed = *u.Status, true
		}
		if u.Description != nil && *u.Description != k.Description {
			k.Description, changed = *u.Description, true
		}
		if u.ExpiresAt != nil && (k.ExpiresAt == nil || !k.ExpiresAt.Equal(*u.ExpiresAt)) {
			k.ExpiresAt, changed = u.ExpiresAt, true
		}
		if u.ClearExpiry && k.ExpiresAt != nil {
			k.ExpiresAt, changed = nil, true
		}
		if u.ExternalID != nil && *u.ExternalID != k.ExternalID {
			k.ExternalID, changed = *u.ExternalID, true
		}
		if bound != nil && *bound != "" && k.Principal != "" {
			return latchkey.Errorf(latchkey.EINVALID, "access key %s is a principal's key: only application keys can be bound to a client certificate", k.ID)
		}
		if bound != nil && *bound != k.CertThumbprint {
			k.CertThumbprint, changed = *bound, true
		}
		if u.Metadata != nil && !bytes.Equal(metadata, k.Metadata) {
			k.Metadata, changed = metadata, true
		}
		if u.Restrictions != nil && !sameRestrictions(k.Restrictions, u.Restrictions) {
			k.Restrictions, changed = nilIfEmpty(u.Restrictions), true
		}
		if u.ReportOnly != nil && !sameRestrictions(k.ReportOnly, u.ReportOnly) {
			k.ReportOnly, changed = nilIfEmpty(u.ReportOnly), true
		}
		if u.EnforceReportOnly {
			if k.ReportOnly.Empty() {
				return latchkey.Errorf(latchkey.ECONFLICT, "access key %s has no report-only restrictions to enforce", k.ID)
			}
			k.Restrictions, k.ReportOnly, changed = k.ReportOnly, nil, true
		}
		after = &k
		if u.Quota != nil || u.RemoveQuota {
			if u.Quota != nil {
				if err := quotaAllowed(&k); err != nil {
					return err
				}
			}
			if err := s.writeQuota(ctx, tx, a, now, &k, u.Quota, u.RemoveQuota); err != nil {
				return err
			}
		}
		if !changed {
			return nil
		}
		k.UpdatedAt = now
		if err := tx.UpdateAccessKey(ctx, &k); err != nil {
			return err
		}
		ev, err := s.audit(a, now, k.Account, latchkey.ActionAccessKeyUpdate, "access_key", k.ID, k.Application, before, &k)
		if err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, ev); err != nil {
			return err
		}
		return s.keyUpdated(ctx, tx, a, now, before, &k, latchkey.EventKeyUpdated)
	}, func() { s.Index.Put(after) })
	if err != nil {
		return nil, err
	}
	s.mergePending(after)
	return after, nil
}

// updatedCertBinding is the x5t#S256 an update binds the key to ("" to
// unbind), or nil when it leaves the binding alone.
func updatedCertBinding(u latchkey.AccessKeyUpdate) (*string, error) {
	switch {
	case u.CertificateThumbprint != nil && u.Certificate != nil:
		return nil, latchkey.Errorf(latchkey.EINVALID, "give certificate_thumbprint or certificate, not both")
	case u.Certificate != nil && *u.Certificate == "":
		return nil, latchkey.Errorf(latchkey.EINVALID, "certificate is empty: to unbind the key give certificate_thumbprint \"\"")
	case u.Certificate != nil:
		t, err := latchkey.CertBinding("", *u.Certificate)
		return &t, err
	case u.CertificateThumbprint != nil:
		t, err := latchkey.CertBinding(*u.CertificateThumbprint, "")
		return &t, err
	}
	return nil, nil
}

// findWritableKey loads and locks a key the actor may change.
func (s *Service) findWritableKey(ctx context.Context, tx latchkey.Tx, a latchkey.Actor, id string) (*latchkey.AccessKey, error) {
	if !keyformat.ValidID(id) {
		return nil, keyNotFound(id)
	}
	k, err := tx.FindAccessKey(ctx, id)
	if err != nil {
		if latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
			return nil, keyNotFound(id)
		}
		return nil, err
	}
	if !a.CanRead(k.Account) || (k.Canary && !a.CanSeeCanaries(k.Account)) {
		return nil, keyNotFound(id)
	}
	if !a.CanWrite(k.Account) {
		return nil, latchkey.Errorf(latchkey.EFORBIDDEN, "role %s may not change anything", a.Role)
	}
	if k.Principal != "" && a.Role != latchkey.RoleOperator && k.Role == latchkey.RoleOperator {
		return nil, latchkey.Errorf(latchkey.EFORBIDDEN, "only an operator may change an operator's keys")
	}
	return k, nil
}

// DeleteAccessKey deletes a key for good. Returns EKEYACTIVE while the key
// is Active unless force is set, ENOTFOUND, EFORBIDDEN. Verification fails
// for the key as soon as DeleteAccessKey returns.
func (s *Service) DeleteAccessKey(ctx context.Context, a latchkey.Actor, id string, force bool) error {
	now := s.now()
	return s.update(ctx, func(tx latchkey.Tx) error {
		k, err := s.findWritableKey(ctx, tx, a, id)
		if err != nil {
			return err
		}
		if k.Status == latchkey.StatusActive && !force {
			return latchkey.Errorf(latchkey.EKEYACTIVE,
				"access key %s is Active; deactivate it (status Inactive) and confirm nothing still uses it, or pass force=true", id)
		}
		if err := tx.DeleteAccessKey(ctx, id); err != nil {
			return err
		}
		ev, err := s.audit(a, now, k.Account, latchkey.ActionAccessKeyDelete, "access_key", k.ID, k.Application, k, nil)
		if err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, ev); err != nil {
			return err
		}
		return s.keyDeleted(ctx, tx, a, now, k)
	}, func() { s.Index.Delete(id) })
}

// MarkExposed flags a key whose secret was seen where it should not be (a
// URL, a commit, a leak report) and, when deactivate is set, makes it
// Inactive in the same transaction. The actor must be able to change the
// key's account (the URL tripwire and leak reports act as the system for
// the key's own account); otherwise the key is ENOTFOUND. The key, its
// audit event and its key.exposed event name where, with every credential
// in it masked (exposureWhere); they never hold the secret.
func (s *Service) MarkExposed(ctx context.Context, a latchkey.Actor, id, where string, deactivate bool) (*latchkey.AccessKey, error) {
	now := s.now()
	var after *latchkey.AccessKey
	err := s.update(ctx, func(tx latchkey.Tx) error {
		if !keyformat.ValidID(id) {
			return keyNotFound(id)
		}
		before, err := tx.FindAccessKey(ctx, id)
		if err != nil {
			return err
		}
		if !a.CanWrite(before.Account) {
			return keyNotFound(id)
		}
		k := *before
		k.Exposed = &latchkey.Exposure{At: now, Where: exposureWhere(where)}
		if deactivate {
			k.Status = latchkey.StatusInactive
		}
		k.UpdatedAt = now
		if err := tx.UpdateAccessKey(ctx, &k); err != nil {
			return err
		}
		after = &k
		ev, err := s.audit(a, now, k.Account, latchkey.ActionAccessKeyExposed, "access_key", k.ID, k.Application, before, &k)
		if err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, ev); err != nil {
			return err
		}
		return s.keyUpdated(ctx, tx, a, now, before, &k, latchkey.EventKeyExposed)
	}, func() { s.Index.Put(after) })
	if err != nil {
		return nil, fmt.Errorf("marking %s exposed: %w", id, err)
	}
	return after, nil
}

// maxWhereLen bounds where a key was seen, as stored.
const maxWhereLen = 512

// exposureWhere is where as an exposure records it: valid text without
// control characters, every credential in it masked, at most maxWhereLen
// bytes. The text is cleaned before it is masked, as dropping a control
// character could join a secret that masking would otherwise not see
// ("lk\x00sk_..."), and cut after, as masking shortens it.
func exposureWhere(where string) string {
	return latchkey.CleanText(keyformat.MaskCredentials(latchkey.CleanText(where, 4*maxWhereLen)), maxWhereLen)
}

// setAppFields gives k what its index entry takes from its application
// app: restrictions, metadata and identity.
func (s *Service) setAppFields(ctx context.Context, tx latchkey.Tx, k *latchkey.AccessKey, app *latchkey.Application) error {
	k.AppRestrictions, k.AppMetadata, k.Identity = app.Restrictions, app.Metadata, nil
	if app.IdentityID == "" {
		return nil
	}
	var err error
	k.Identity, err = tx.FindKeyIdentity(ctx, app.IdentityID)
	return err
}
