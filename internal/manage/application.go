package manage

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/latchkey/latchkey"
)

// CreateApplication registers an application in account.
// Returns EINVALID for a bad name or description, EEXISTS if the name is
// taken, ENOTFOUND for an account the actor cannot see, EFORBIDDEN for a
// read-only actor.
func (s *Service) CreateApplication(ctx context.Context, a latchkey.Actor, account, name, description string, restrictions *latchkey.Restrictions) (*latchkey.Application, error) {
	return s.CreateApplicationWith(ctx, a, account, latchkey.NewApplication{Name: name, Description: description, Restrictions: restrictions})
}

// CreateOwnedApplication is CreateApplication with an owner: the consumer
// organisation whose people manage the application's keys in the portal
// ("" for none).
func (s *Service) CreateOwnedApplication(ctx context.Context, a latchkey.Actor, account, name, description, owner string, restrictions *latchkey.Restrictions) (*latchkey.Application, error) {
	return s.CreateApplicationWith(ctx, a, account, latchkey.NewApplication{Name: name, Description: description, Owner: owner, Restrictions: restrictions})
}

// CreateApplicationWith registers an application in account, in an
// identity when in.IdentityID is set. Returns EINVALID for a bad name,
// description, owner (latchkey.ValidateOwner), metadata, or an identity_id
// that names no identity of the account; EEXISTS if the name is taken;
// ENOTFOUND for an account the actor cannot see; EFORBIDDEN for a
// read-only actor.
func (s *Service) CreateApplicationWith(ctx context.Context, a latchkey.Actor, account string, in latchkey.NewApplication) (*latchkey.Application, error) {
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
	if err := latchkey.ValidateDescription(in.Description); err != nil {
		return nil, err
	}
	if err := latchkey.ValidateOwner(in.Owner); err != nil {
		return nil, err
	}
	if err := in.Restrictions.Validate(); err != nil {
		return nil, err
	}
	now := s.now()
	app := &latchkey.Application{Account: account, Name: in.Name, Description: in.Description, Owner: in.Owner, CreatedAt: now,
		Restrictions: nilIfEmpty(in.Restrictions), IdentityID: in.IdentityID, Metadata: metadata}
	err = s.update(ctx, func(tx latchkey.Tx) error {
		if err := s.checkIdentityRef(ctx, tx, account, in.IdentityID, now); err != nil {
			return err
		}
		if err := tx.CreateApplication(ctx, app); err != nil {
			return err
		}
		ev, err := s.audit(a, now, account, latchkey.ActionApplicationCreate, "application", in.Name, in.Name, nil, app)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ev)
	}, nil)
	if err != nil {
		return nil, err
	}
	return app, nil
}

// checkIdentityRef refuses an identity_id that names no identity of the
// account ("" names none, and is fine). The identity's row is locked
// until commit, so that it is not deleted meanwhile.
func (s *Service) checkIdentityRef(ctx context.Context, tx latchkey.Tx, account, id string, now time.Time) error {
	if id == "" {
		return nil
	}
	if latchkey.ValidIdentityID(id) {
		_, err := tx.FindIdentity(ctx, account, id, now)
		if latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
			return err
		}
	}
	return latchkey.Errorf(latchkey.EINVALID, "identity_id: no identity %s in account %q", latchkey.CleanText(id, 64), account)
}

// GetApplication returns ENOTFOUND if the application does not exist or the
// actor cannot see its account.
func (s *Service) GetApplication(ctx context.Context, a latchkey.Actor, account, name string) (*latchkey.Application, error) {
	if err := requireRead(a, account); err != nil {
		return nil, err
	}
	var app *latchkey.Application
	err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		app, err = tx.FindApplication(ctx, account, name)
		return err
	})
	return app, err
}

// ListApplications returns one page of an account's applications.
func (s *Service) ListApplications(ctx context.Context, a latchkey.Actor, f latchkey.ApplicationFilter) ([]*latchkey.Application, string, error) {
	if err := requireRead(a, f.Account); err != nil {
		return nil, "", err
	}
	var (
		apps []*latchkey.Application
		next string
	)
	err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		apps, next, err = tx.ListApplications(ctx, f)
		return err
	})
	return apps, next, err
}

// UpdateApplication changes an application's description and default
// restrictions (nil arguments are left alone); see UpdateApplicationWith.
func (s *Service) UpdateApplication(ctx context.Context, a latchkey.Actor, account, name string, description *string, restrictions *latchkey.Restrictions) (*latchkey.Application, error) {
	return s.UpdateApplicationWith(ctx, a, account, name, latchkey.ApplicationUpdate{Description: description, Restrictions: restrictions})
}

// UpdateApplicationWith changes an application's description, default
// restrictions, owner, identity and metadata (nil fields are left alone).
// New restrictions, a move to another identity and new metadata apply to
// every key of the application as soon as it returns; a new owner takes
// effect on the portal's next request (the consumers of the old owner no
// longer see the application). A call that changes nothing writes nothing
// and no audit event. Returns ENOTFOUND, EFORBIDDEN, EINVALID (including
// an identity_id that names no identity of the account).
func (s *Service) UpdateApplicationWith(ctx context.Context, a latchkey.Actor, account, name string, u latchkey.ApplicationUpdate) (*latchkey.Application, error) {
	if err := requireWrite(a, account); err != nil {
		return nil, err
	}
	if u.Owner != nil {
		if err := latchkey.ValidateOwner(*u.Owner); err != nil {
			return nil, err
		}
	}
	if u.Description != nil {
		if err := latchkey.ValidateDescription(*u.Description); err != nil {
			return nil, err
		}
	}
	if err := u.Restrictions.Validate(); err != nil {
		return nil, err
	}
	var metadata json.RawMessage
	if u.Metadata != nil {
		var err error
		if metadata, err = latchkey.NormalizeMetadata(u.Metadata); err != nil {
			return nil, err
		}
	}
	var keys []*latchkey.AccessKey
	now := s.now()
	var app *latchkey.Application
	err := s.update(ctx, func(tx latchkey.Tx) error {
		keys = nil
		before, err := tx.FindApplication(ctx, account, name)
		if err != nil {
			return err
		}
		after := *before
		if u.Description != nil {
			after.Description = *u.Description
		}
		if u.Restrictions != nil {
			after.Restrictions = nilIfEmpty(u.Restrictions)
		}
		if u.Metadata != nil {
			after.Metadata = metadata
		}
		if u.IdentityID != nil && *u.IdentityID != before.IdentityID {
			if err := s.checkIdentityRef(ctx, tx, account, *u.IdentityID, now); err != nil {
				return err
			}
			after.IdentityID = *u.IdentityID
		}
		if u.Owner != nil {
			after.Owner = *u.Owner
		}
		app = &after
		indexed := !sameRestrictions(after.Restrictions, before.Restrictions) || after.IdentityID != before.IdentityID ||
			!bytes.Equal(after.Metadata, before.Metadata)
		if after.Description == before.Description && after.Owner == before.Owner && !indexed {
			return nil // nothing changes: no write, no audit event
		}
		if err := tx.UpdateApplication(ctx, &after); err != nil {
			return err
		}
		if indexed {
			// reload the keys with the application's new restrictions,
			// identity or metadata
			var err error
			if keys, _, err = tx.ListAccessKeys(ctx, latchkey.AccessKeyFilter{Account: account, Application: name, Kind: "application", Limit: 1000}); err != nil {
				return err
			}
		}
		ev, err := s.audit(a, now, account, latchkey.ActionApplicationUpdate, "application", name, name, before, &after)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ev)
	}, func() {
		for _, k := range keys {
			s.Index.Put(k)
		}
	})
	return app, err
}

// DeleteApplication deletes an application that owns no keys.
// Returns ECONFLICT while it still has keys, ENOTFOUND, EFORBIDDEN.
func (s *Service) DeleteApplication(ctx context.Context, a latchkey.Actor, account, name string) error {
	if err := requireWrite(a, account); err != nil {
		return err
	}
	now := s.now()
	return s.update(ctx, func(tx latchkey.Tx) error {
		before, err := tx.FindApplication(ctx, account, name)
		if err != nil {
			return err
		}
		if err := tx.DeleteApplication(ctx, account, name); err != nil {
			return err
		}
		ev, err := s.audit(a, now, account, latchkey.ActionApplicationDelete, "application", name, name, before, nil)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ev)
	}, nil)
}

// sameRestrictions compares two restriction sets by their JSON form.
func sameRestrictions(a, b *latchkey.Restrictions) bool {
	if a.Empty() || b.Empty() {
		return a.Empty() == b.Empty()
	}
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}
