package manage

import (
	"context"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// CreatedPrincipal is a new principal with its first key and that key's
// secret, returned once.
type CreatedPrincipal struct {
	*latchkey.Principal
	AccessKey *CreatedKey `json:"access_key"`
}

// CreatePrincipal creates an admin principal with a first access key.
// Only operators may create operators. Returns EEXISTS, EINVALID,
// EFORBIDDEN, ENOTFOUND.
func (s *Service) CreatePrincipal(ctx context.Context, a latchkey.Actor, account, name string, role latchkey.Role) (*CreatedPrincipal, error) {
	if err := requireWrite(a, account); err != nil {
		return nil, err
	}
	if err := latchkey.ValidateName("name", name); err != nil {
		return nil, err
	}
	if _, err := latchkey.ParseRole(string(role)); err != nil {
		return nil, err
	}
	if role == latchkey.RoleOperator && a.Role != latchkey.RoleOperator {
		return nil, latchkey.Errorf(latchkey.EFORBIDDEN, "only an operator may create an operator")
	}
	now := s.now()
	p := &latchkey.Principal{Account: account, Name: name, Role: role, CreatedAt: now}
	var out *CreatedPrincipal
	err := retryOnCollision(func() error {
		id, secret, err := s.newKeyMaterial()
		if err != nil {
			return err
		}
		k := &latchkey.AccessKey{ID: id, Account: account, Principal: name, Role: role, Status: latchkey.StatusActive,
			CreatedAt: now, UpdatedAt: now, KeyType: latchkey.KeyTypeBearer, SecretDigest: keyformat.Sum(secret), Description: "created with the principal"}
		return s.update(ctx, func(tx latchkey.Tx) error {
			if err := tx.CreatePrincipal(ctx, p); err != nil {
				return err
			}
			if err := tx.CreateAccessKey(ctx, k); err != nil {
				return err
			}
			ev, err := s.audit(a, now, account, latchkey.ActionPrincipalCreate, "principal", name, "", nil, p)
			if err != nil {
				return err
			}
			if err := tx.AppendAudit(ctx, ev); err != nil {
				return err
			}
			ev, err = s.audit(a, now, account, latchkey.ActionAccessKeyCreate, "access_key", k.ID, "", nil, k)
			if err != nil {
				return err
			}
			if err := tx.AppendAudit(ctx, ev); err != nil {
				return err
			}
			out = &CreatedPrincipal{Principal: p, AccessKey: &CreatedKey{AccessKey: k, Secret: secret}}
			return nil
		}, func() { s.Index.Put(k) })
	})
	return out, err
}

// CreatePrincipalKey adds a key to a principal (for rotating an admin's own
// credential). Returns ELIMIT at the maximum, ENOTFOUND, EFORBIDDEN.
func (s *Service) CreatePrincipalKey(ctx context.Context, a latchkey.Actor, account, name, description string) (*CreatedKey, error) {
	if err := requireWrite(a, account); err != nil {
		return nil, err
	}
	if err := latchkey.ValidateDescription(description); err != nil {
		return nil, err
	}
	now := s.now()
	var out *CreatedKey
	err := retryOnCollision(func() error {
		id, secret, err := s.newKeyMaterial()
		if err != nil {
			return err
		}
		k := &latchkey.AccessKey{ID: id, Account: account, Principal: name, Status: latchkey.StatusActive,
			CreatedAt: now, UpdatedAt: now, KeyType: latchkey.KeyTypeBearer, SecretDigest: keyformat.Sum(secret), Description: description}
		return s.update(ctx, func(tx latchkey.Tx) error {
			p, err := tx.FindPrincipal(ctx, account, name)
			if err != nil {
				return err
			}
			if p.Role == latchkey.RoleOperator && a.Role != latchkey.RoleOperator {
				return latchkey.Errorf(latchkey.EFORBIDDEN, "only an operator may change an operator's keys")
			}
			k.Role = p.Role
			existing, _, err := tx.ListAccessKeys(ctx, latchkey.AccessKeyFilter{Account: account, Principal: name, Kind: "principal", Limit: 100})
			if err != nil {
				return err
			}
			if len(existing) >= s.MaxKeysPerApplication {
				return latchkey.Errorf(latchkey.ELIMIT, "principal %q already has %d access keys; delete an Inactive key first", name, len(existing))
			}
			if err := tx.CreateAccessKey(ctx, k); err != nil {
				return err
			}
			ev, err := s.audit(a, now, account, latchkey.ActionAccessKeyCreate, "access_key", k.ID, "", nil, k)
			if err != nil {
				return err
			}
			if err := tx.AppendAudit(ctx, ev); err != nil {
				return err
			}
			out = &CreatedKey{AccessKey: k, Secret: secret}
			return nil
		}, func() { s.Index.Put(k) })
	})
	return out, err
}

// ListPrincipals lists an account's principals.
func (s *Service) ListPrincipals(ctx context.Context, a latchkey.Actor, account string) ([]*latchkey.Principal, error) {
	if err := requireRead(a, account); err != nil {
		return nil, err
	}
	var ps []*latchkey.Principal
	err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		ps, err = tx.ListPrincipals(ctx, account)
		return err
	})
	return ps, err
}

// GetPrincipal returns ENOTFOUND for a principal the actor cannot see.
func (s *Service) GetPrincipal(ctx context.Context, a latchkey.Actor, account, name string) (*latchkey.Principal, error) {
	if err := requireRead(a, account); err != nil {
		return nil, err
	}
	var p *latchkey.Principal
	err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		p, err = tx.FindPrincipal(ctx, account, name)
		return err
	})
	return p, err
}

// DeletePrincipal deletes a principal and its keys. A principal cannot
// delete itself (that would lock out the last operator by mistake).
func (s *Service) DeletePrincipal(ctx context.Context, a latchkey.Actor, account, name string) error {
	if err := requireWrite(a, account); err != nil {
		return err
	}
	if account == a.Account && name == a.Principal {
		return latchkey.Errorf(latchkey.ECONFLICT, "a principal cannot delete itself")
	}
	now := s.now()
	var ids []string
	return s.update(ctx, func(tx latchkey.Tx) error {
		p, err := tx.FindPrincipal(ctx, account, name)
		if err != nil {
			return err
		}
		if p.Role == latchkey.RoleOperator && a.Role != latchkey.RoleOperator {
			return latchkey.Errorf(latchkey.EFORBIDDEN, "only an operator may delete an operator")
		}
		keys, _, err := tx.ListAccessKeys(ctx, latchkey.AccessKeyFilter{Account: account, Principal: name, Kind: "principal", Limit: 1000})
		if err != nil {
			return err
		}
		for _, k := range keys {
			ids = append(ids, k.ID)
		}
		if err := tx.DeletePrincipal(ctx, account, name); err != nil {
			return err
		}
		ev, err := s.audit(a, now, account, latchkey.ActionPrincipalDelete, "principal", name, "", p, nil)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ev)
	}, func() {
		for _, id := range ids {
			s.Index.Delete(id)
		}
	})
}
