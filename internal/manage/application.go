package manage

import (
	"context"
	"encoding/json"

	"github.com/latchkey/latchkey"
)

// CreateApplication registers an application in account.
// Returns EINVALID for a bad name or description, EEXISTS if the name is
// taken, ENOTFOUND for an account the actor cannot see, EFORBIDDEN for a
// read-only actor.
func (s *Service) CreateApplication(ctx context.Context, a latchkey.Actor, account, name, description string, restrictions *latchkey.Restrictions) (*latchkey.Application, error) {
	return s.CreateOwnedApplication(ctx, a, account, name, description, "", restrictions)
}

// CreateOwnedApplication is CreateApplication with an owner: the consumer
// organisation whose people manage the application's keys in the portal
// ("" for none). Returns EINVALID for a bad owner (latchkey.ValidateOwner).
func (s *Service) CreateOwnedApplication(ctx context.Context, a latchkey.Actor, account, name, description, owner string, restrictions *latchkey.Restrictions) (*latchkey.Application, error) {
	if err := requireWrite(a, account); err != nil {
		return nil, err
	}
	if err := latchkey.ValidateName("name", name); err != nil {
		return nil, err
	}
	if err := latchkey.ValidateDescription(description); err != nil {
		return nil, err
	}
	if err := latchkey.ValidateOwner(owner); err != nil {
		return nil, err
	}
	if err := restrictions.Validate(); err != nil {
		return nil, err
	}
	now := s.now()
	app := &latchkey.Application{Account: account, Name: name, Description: description, Owner: owner, CreatedAt: now, Restrictions: nilIfEmpty(restrictions)}
	err := s.update(ctx, func(tx latchkey.Tx) error {
		if err := tx.CreateApplication(ctx, app); err != nil {
			return err
		}
		ev, err := s.audit(a, now, account, latchkey.ActionApplicationCreate, "application", name, name, nil, app)
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
// restrictions (nil arguments are left alone). New restrictions apply to
// every key of the application as soon as UpdateApplication returns. A call
// that changes nothing writes nothing and no audit event. Returns
// ENOTFOUND, EFORBIDDEN, EINVALID.
func (s *Service) UpdateApplication(ctx context.Context, a latchkey.Actor, account, name string, description *string, restrictions *latchkey.Restrictions) (*latchkey.Application, error) {
	return s.UpdateApplicationWith(ctx, a, account, name, ApplicationUpdate{Description: description, Restrictions: restrictions})
}

// ApplicationUpdate changes an application; nil fields are left alone.
type ApplicationUpdate struct {
	Description  *string
	Restrictions *latchkey.Restrictions
	// Owner: "" removes the owner (the portal then shows the
	// application to nobody).
	Owner *string
}

// UpdateApplicationWith is UpdateApplication with every field an
// application has, the owner among them. A new owner takes effect on the
// portal's next request: the consumers of the old owner no longer see the
// application.
func (s *Service) UpdateApplicationWith(ctx context.Context, a latchkey.Actor, account, name string, u ApplicationUpdate) (*latchkey.Application, error) {
	description, restrictions := u.Description, u.Restrictions
	if err := requireWrite(a, account); err != nil {
		return nil, err
	}
	if u.Owner != nil {
		if err := latchkey.ValidateOwner(*u.Owner); err != nil {
			return nil, err
		}
	}
	if description != nil {
		if err := latchkey.ValidateDescription(*description); err != nil {
			return nil, err
		}
	}
	if err := restrictions.Validate(); err != nil {
		return nil, err
	}
	var keys []*latchkey.AccessKey
	now := s.now()
	var app *latchkey.Application
	err := s.update(ctx, func(tx latchkey.Tx) error {
		before, err := tx.FindApplication(ctx, account, name)
		if err != nil {
			return err
		}
		after := *before
		if description != nil {
			after.Description = *description
		}
		if restrictions != nil {
			after.Restrictions = nilIfEmpty(restrictions)
		}
		if u.Owner != nil {
			after.Owner = *u.Owner
		}
		app = &after
		if after.Description == before.Description && after.Owner == before.Owner && sameRestrictions(after.Restrictions, before.Restrictions) {
			return nil // nothing changes: no write, no audit event
		}
		if err := tx.UpdateApplication(ctx, &after); err != nil {
			return err
		}
		if restrictions != nil {
			// reload the keys with the application's new restrictions
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
