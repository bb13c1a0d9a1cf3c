package manage

import (
	"context"
	"time"

	"github.com/latchkey/latchkey"
)

// PolicyView is an account's hygiene policy: the one in force, the
// account's own settings, and the server's defaults they override.
type PolicyView struct {
	Account  string                  `json:"account"`
	Policy   latchkey.Policy         `json:"policy"`
	Settings latchkey.PolicySettings `json:"settings"`
	Defaults latchkey.Policy         `json:"defaults"`
	// UpdatedAt is when the account's settings last changed; nil when the
	// account has never set any.
	UpdatedAt *time.Time `json:"updated_at"`
}

// GetPolicy returns the policy of an account the actor may read, ENOTFOUND
// otherwise.
func (s *Service) GetPolicy(ctx context.Context, a latchkey.Actor, account string) (*PolicyView, error) {
	if err := requireRead(a, account); err != nil {
		return nil, err
	}
	var v *PolicyView
	err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		if _, err := tx.FindAccount(ctx, account); err != nil {
			return err
		}
		v, err = s.policyView(ctx, tx, account)
		return err
	})
	return v, err
}

func (s *Service) policyView(ctx context.Context, tx latchkey.Tx, account string) (*PolicyView, error) {
	v := &PolicyView{Account: account, Defaults: s.DefaultPolicy, Policy: s.DefaultPolicy}
	p, err := tx.FindPolicy(ctx, account)
	switch latchkey.ErrorCode(err) {
	case "":
		v.Settings, v.Policy, v.UpdatedAt = p.Settings, p.Settings.Apply(s.DefaultPolicy), &p.UpdatedAt
	case latchkey.ENOTFOUND:
	default:
		return nil, err
	}
	return v, nil
}

// PutPolicy replaces an account's settings (fields left out take the
// server's defaults), audited as policy.update. Returns EINVALID,
// EFORBIDDEN, ENOTFOUND.
func (s *Service) PutPolicy(ctx context.Context, a latchkey.Actor, account string, settings latchkey.PolicySettings) (*PolicyView, error) {
	if err := requireWrite(a, account); err != nil {
		return nil, err
	}
	if err := settings.Validate(); err != nil {
		return nil, err
	}
	now := s.now()
	var v *PolicyView
	err := s.update(ctx, func(tx latchkey.Tx) error {
		before, err := s.policyView(ctx, tx, account)
		if err != nil {
			return err
		}
		p := &latchkey.AccountPolicy{Account: account, Settings: settings, UpdatedAt: now}
		if err := tx.PutPolicy(ctx, p); err != nil {
			return err
		}
		v = &PolicyView{Account: account, Policy: settings.Apply(s.DefaultPolicy), Settings: settings, Defaults: s.DefaultPolicy, UpdatedAt: &now}
		ev, err := s.audit(a, now, account, latchkey.ActionPolicyUpdate, "policy", account, "", before.Settings, settings)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ev)
	}, nil)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// policies returns the policy in force for each of accounts.
func (s *Service) policies(ctx context.Context, tx latchkey.Tx) (func(account string) latchkey.Policy, error) {
	policy, _, err := s.policySet(ctx, tx)
	return policy, err
}

// policySet returns the policy in force for each of accounts, and every
// policy in force: each account's own and the default.
func (s *Service) policySet(ctx context.Context, tx latchkey.Tx) (func(account string) latchkey.Policy, []latchkey.Policy, error) {
	all, err := tx.ListPolicies(ctx)
	if err != nil {
		return nil, nil, err
	}
	m := make(map[string]latchkey.Policy, len(all))
	set := []latchkey.Policy{s.DefaultPolicy}
	for _, p := range all {
		m[p.Account] = p.Settings.Apply(s.DefaultPolicy)
		set = append(set, m[p.Account])
	}
	return func(account string) latchkey.Policy {
		if p, ok := m[account]; ok {
			return p
		}
		return s.DefaultPolicy
	}, set, nil
}

// keyStates returns the stored states of keys.
func keyStates(ctx context.Context, tx latchkey.Tx, keys []*latchkey.AccessKey) (map[string]*latchkey.KeyState, error) {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return tx.KeyStates(ctx, ids)
}

// addFindings sets the findings of keys read for a list or a get. A
// failure to read the policy leaves the keys without findings rather than
// failing the read: the findings are advice.
func (s *Service) addFindings(ctx context.Context, keys []*latchkey.AccessKey) {
	if len(keys) == 0 {
		return
	}
	now := s.now()
	err := s.Store.View(ctx, func(tx latchkey.Tx) error {
		policy, err := s.policies(ctx, tx)
		if err != nil {
			return err
		}
		states, err := keyStates(ctx, tx, keys)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if f := policy(k.Account).Evaluate(k, states[k.ID], now).Findings; len(f) > 0 {
				k.Findings = f
			}
		}
		return s.addRolls(ctx, tx, keys)
	})
	if err != nil {
		s.Log.Warn("computing key findings", "err", err)
	}
}
