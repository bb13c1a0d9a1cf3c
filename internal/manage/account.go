package manage

import (
	"context"

	"github.com/latchkey/latchkey"
)

// CreateAccount creates a tenant. Operators only: others get EFORBIDDEN.
func (s *Service) CreateAccount(ctx context.Context, a latchkey.Actor, name string) (*latchkey.Account, error) {
	if a.Role != latchkey.RoleOperator {
		return nil, latchkey.Errorf(latchkey.EFORBIDDEN, "only an operator may create accounts")
	}
	if err := latchkey.ValidateName("name", name); err != nil {
		return nil, err
	}
	now := s.now()
	acc := &latchkey.Account{Name: name, CreatedAt: now}
	err := s.update(ctx, func(tx latchkey.Tx) error {
		if err := tx.CreateAccount(ctx, acc); err != nil {
			return err
		}
		ev, err := s.audit(a, now, name, latchkey.ActionAccountCreate, "account", name, "", nil, acc)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ev)
	}, nil)
	if err != nil {
		return nil, err
	}
	return acc, nil
}

// ListAccounts returns every account for operators, the actor's own for
// everyone else.
func (s *Service) ListAccounts(ctx context.Context, a latchkey.Actor) ([]*latchkey.Account, error) {
	var out []*latchkey.Account
	err := s.Store.View(ctx, func(tx latchkey.Tx) error {
		if a.Role == latchkey.RoleOperator {
			var err error
			out, err = tx.ListAccounts(ctx)
			return err
		}
		acc, err := tx.FindAccount(ctx, a.Account)
		if err != nil {
			return err
		}
		out = []*latchkey.Account{acc}
		return nil
	})
	return out, err
}

// ListAuditEvents returns one page of audit events the actor may read.
func (s *Service) ListAuditEvents(ctx context.Context, a latchkey.Actor, f latchkey.AuditFilter) ([]*latchkey.AuditEvent, string, error) {
	if f.Account == "" && a.Role != latchkey.RoleOperator {
		f.Account = a.Account
	}
	if f.Account != "" {
		if err := requireRead(a, f.Account); err != nil {
			return nil, "", err
		}
	}
	var (
		evs  []*latchkey.AuditEvent
		next string
	)
	err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		evs, next, err = tx.ListAuditEvents(ctx, f)
		return err
	})
	return evs, next, err
}

// BootstrapPrincipal is the name of the first operator.
const BootstrapPrincipal = "admin"

// Bootstrap prepares an empty database: it creates the default account and
// a first operator with an access key, and returns that key with its
// secret. On a database that already has the default account it returns
// nil and does nothing.
func (s *Service) Bootstrap(ctx context.Context) (*CreatedKey, error) {
	sys := latchkey.System()
	var exists bool
	err := s.Store.View(ctx, func(tx latchkey.Tx) error {
		_, err := tx.FindAccount(ctx, latchkey.DefaultAccount)
		switch latchkey.ErrorCode(err) {
		case "":
			exists = true
			return nil
		case latchkey.ENOTFOUND:
			return nil
		}
		return err
	})
	if err != nil || exists {
		return nil, err
	}
	if _, err := s.CreateAccount(ctx, sys, latchkey.DefaultAccount); err != nil {
		if latchkey.ErrorCode(err) == latchkey.EEXISTS { // another replica won the race
			return nil, nil
		}
		return nil, err
	}
	p, err := s.CreatePrincipal(ctx, sys, latchkey.DefaultAccount, BootstrapPrincipal, latchkey.RoleOperator)
	if err != nil {
		return nil, err
	}
	return p.AccessKey, nil
}
