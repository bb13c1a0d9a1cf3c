package manage

import (
	"context"

	"github.com/latchkey/latchkey"
)

// CreateApplication registers an application in account.
// Returns EINVALID for a bad name or description, EEXISTS if the name is
// taken, ENOTFOUND for an account the actor cannot see, EFORBIDDEN for a
// read-only actor.
func (s *Service) CreateApplication(ctx context.Context, a latchkey.Actor, account, name, description string) (*latchkey.Application, error) {
	if err := requireWrite(a, account); err != nil {
		return nil, err
	}
	if err := latchkey.ValidateName("name", name); err != nil {
		return nil, err
	}
	if err := latchkey.ValidateDescription(description); err != nil {
		return nil, err
	}
	now := s.now()
	app := &latchkey.Application{Account: account, Name: name, Description: description, CreatedAt: now}
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

// UpdateApplication changes an application's description. A call that
// changes nothing writes nothing and no audit event. Returns ENOTFOUND,
// EFORBIDDEN, EINVALID.
func (s *Service) UpdateApplication(ctx context.Context, a latchkey.Actor, account, name string, description *string) (*latchkey.Application, error) {
	if err := requireWrite(a, account); err != nil {
		return nil, err
	}
	if description != nil {
		if err := latchkey.ValidateDescription(*description); err != nil {
			return nil, err
		}
	}
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
		app = &after
		if after.Description == before.Description {
			return nil // nothing changes: no write, no audit event
		}
		if err := tx.UpdateApplication(ctx, &after); err != nil {
			return err
		}
		ev, err := s.audit(a, now, account, latchkey.ActionApplicationUpdate, "application", name, name, before, &after)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ev)
	}, nil)
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
