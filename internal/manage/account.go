package manage

import (
	"context"
	"slices"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// CreateAccount creates a tenant with the settings in set (nil fields:
// defaults). Operators only: others get EFORBIDDEN. Returns EINVALID for a
// bad name or key prefix (keyformat.ValidatePrefix), EEXISTS for a name
// taken.
func (s *Service) CreateAccount(ctx context.Context, a latchkey.Actor, name string, set latchkey.AccountUpdate) (*latchkey.Account, error) {
	if a.Role != latchkey.RoleOperator {
		return nil, latchkey.Errorf(latchkey.EFORBIDDEN, "only an operator may create accounts")
	}
	if err := latchkey.ValidateName("name", name); err != nil {
		return nil, err
	}
	now := s.now()
	acc := &latchkey.Account{Name: name, CreatedAt: now}
	if set.KeyPrefix != nil {
		if err := validateKeyPrefix(*set.KeyPrefix); err != nil {
			return nil, err
		}
		acc.KeyPrefix = *set.KeyPrefix
	}
	if set.Branding != nil {
		if err := set.Branding.Validate(); err != nil {
			return nil, err
		}
		if !set.Branding.Empty() {
			b := *set.Branding
			acc.Branding = &b
		}
	}
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

// UpdateAccount changes an account's settings: its key prefix and its
// portal branding (latchkey.Branding.Validate; an empty branding removes
// it). Operators
// and the account's admins may; viewers get EFORBIDDEN, other accounts
// ENOTFOUND. Returns EINVALID for a bad prefix. Audited as account.update
// with the prefix before and after (a prefix is no secret). Keys made
// before keep their secrets: only new keys get the new prefix.
func (s *Service) UpdateAccount(ctx context.Context, a latchkey.Actor, name string, u latchkey.AccountUpdate) (*latchkey.Account, error) {
	if err := requireWrite(a, name); err != nil {
		return nil, err
	}
	if u.KeyPrefix != nil {
		if err := validateKeyPrefix(*u.KeyPrefix); err != nil {
			return nil, err
		}
	}
	if err := u.Branding.Validate(); err != nil {
		return nil, err
	}
	now := s.now()
	var out *latchkey.Account
	err := s.update(ctx, func(tx latchkey.Tx) error {
		acc, err := tx.FindAccount(ctx, name)
		if err != nil {
			return err
		}
		before := *acc
		if u.KeyPrefix != nil {
			acc.KeyPrefix = *u.KeyPrefix
		}
		if u.Branding != nil {
			acc.Branding = nil
			if !u.Branding.Empty() {
				b := *u.Branding
				acc.Branding = &b
			}
		}
		if acc.KeyPrefix == before.KeyPrefix && sameBranding(acc.Branding, before.Branding) {
			out = acc
			return nil // nothing changed, nothing to audit
		}
		if err := tx.UpdateAccount(ctx, acc); err != nil {
			return err
		}
		ev, err := s.audit(a, now, name, latchkey.ActionAccountUpdate, "account", name, "", &before, acc)
		if err != nil {
			return err
		}
		out = acc
		return tx.AppendAudit(ctx, ev)
	}, nil)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// validateKeyPrefix is keyformat.ValidatePrefix as a latchkey.Error; ""
// (back to lksk_) is allowed.
func validateKeyPrefix(p string) error {
	if p == "" {
		return nil
	}
	if err := keyformat.ValidatePrefix(p); err != nil {
		return latchkey.Errorf(latchkey.EINVALID, "key_prefix %q: %v", p, err)
	}
	return nil
}

// KeyPrefixes returns the secret prefixes a scanner should look for:
// "lksk_" and the key prefixes of the accounts the actor may read (every
// account's for operators), each once, sorted after "lksk_".
func (s *Service) KeyPrefixes(ctx context.Context, a latchkey.Actor) ([]string, error) {
	accs, err := s.ListAccounts(ctx, a)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, acc := range accs {
		if acc.KeyPrefix != "" {
			out = append(out, acc.KeyPrefix)
		}
	}
	slices.Sort(out)
	return append([]string{keyformat.SecretPrefix}, slices.Compact(out)...), nil
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
// Returns EINVALID for an action that is not one of latchkey.AuditActions;
// ENOTFOUND for an account the actor may not read.
func (s *Service) ListAuditEvents(ctx context.Context, a latchkey.Actor, f latchkey.AuditFilter) ([]*latchkey.AuditEvent, string, error) {
	if f.Action != "" {
		if _, err := latchkey.ParseChoice("action", f.Action, latchkey.AuditActions()); err != nil {
			return nil, "", err
		}
	}
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
	if err == nil && !a.CanSeeCanaries(f.Account) {
		// A viewer does not learn of canaries from their alerts; the page
		// may then hold fewer events than asked for, and next still
		// leads on.
		evs = slices.DeleteFunc(evs, func(e *latchkey.AuditEvent) bool { return e.Action == latchkey.ActionCanaryTriggered })
	}
	return evs, next, err
}

// BootstrapPrincipal is the name of the first operator.
const BootstrapPrincipal = "admin"

// Bootstrap prepares an empty database: it creates the default account and
// a first operator with an access key, all in one transaction (a crash
// cannot leave an account without its operator), and returns that key with
// its secret. On a database that already has the default account it returns
// nil and does nothing; when several replicas start at once, one wins.
func (s *Service) Bootstrap(ctx context.Context) (*CreatedKey, error) {
	sys := latchkey.System()
	now := s.now()
	id, secret, err := s.newKeyMaterial()
	if err != nil {
		return nil, err
	}
	acc := &latchkey.Account{Name: latchkey.DefaultAccount, CreatedAt: now}
	p := &latchkey.Principal{Account: acc.Name, Name: BootstrapPrincipal, Role: latchkey.RoleOperator, CreatedAt: now}
	k := &latchkey.AccessKey{ID: id, Account: acc.Name, Principal: p.Name, Role: p.Role, Status: latchkey.StatusActive,
		CreatedAt: now, UpdatedAt: now, KeyType: latchkey.KeyTypeBearer, SecretDigest: keyformat.Sum(secret), Description: "created with the principal"}
	created := false
	err = s.update(ctx, func(tx latchkey.Tx) error {
		_, err := tx.FindAccount(ctx, acc.Name)
		switch latchkey.ErrorCode(err) {
		case "":
			return nil // already set up
		case latchkey.ENOTFOUND:
		default:
			return err
		}
		if err := tx.CreateAccount(ctx, acc); err != nil {
			return err
		}
		if err := tx.CreatePrincipal(ctx, p); err != nil {
			return err
		}
		if err := tx.CreateAccessKey(ctx, k); err != nil {
			return err
		}
		for _, e := range []struct {
			action, typ, target string
			after               any
		}{
			{latchkey.ActionAccountCreate, "account", acc.Name, acc},
			{latchkey.ActionPrincipalCreate, "principal", p.Name, p},
			{latchkey.ActionAccessKeyCreate, "access_key", k.ID, k},
		} {
			ev, err := s.audit(sys, now, acc.Name, e.action, e.typ, e.target, "", nil, e.after)
			if err != nil {
				return err
			}
			if err := tx.AppendAudit(ctx, ev); err != nil {
				return err
			}
		}
		created = true
		return nil
	}, func() {
		if created {
			s.Index.Put(k)
		}
	})
	if latchkey.ErrorCode(err) == latchkey.EEXISTS {
		return nil, nil // another replica set it up at the same moment
	}
	if err != nil || !created {
		return nil, err
	}
	return &CreatedKey{AccessKey: k, Secret: secret}, nil
}

func sameBranding(a, b *latchkey.Branding) bool {
	if a.Empty() || b.Empty() {
		return a.Empty() == b.Empty()
	}
	return *a == *b
}
