package manage_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
)

// fixture is a fresh set of objects in the default account for one case.
type fixture struct {
	app      string // owns key and offKey
	emptyApp string // owns no key
	key      *manage.CreatedKey
	offKey   *manage.CreatedKey // Inactive
	viewer   string             // a viewer principal
	n        int
}

func (e *env) fixture(t *testing.T, n int) *fixture {
	t.Helper()
	fx := &fixture{app: fmt.Sprintf("app-%d", n), emptyApp: fmt.Sprintf("empty-%d", n), viewer: fmt.Sprintf("viewer-%d", n), n: n}
	e.app(t, latchkey.DefaultAccount, fx.app)
	e.app(t, latchkey.DefaultAccount, fx.emptyApp)
	fx.key = e.key(t, latchkey.DefaultAccount, fx.app)
	fx.offKey = e.key(t, latchkey.DefaultAccount, fx.app)
	e.deactivate(t, fx.offKey.ID)
	e.principal(t, latchkey.DefaultAccount, fx.viewer, latchkey.RoleViewer)
	return fx
}

// TestRoles runs every Service method as every role against objects of
// the default account. Codes: "" allowed, ENOTFOUND for an account the
// actor cannot see (fail closed), EFORBIDDEN for a role that may see but
// not change.
func TestRoles(t *testing.T) {
	e := newEnv(t)
	const def = latchkey.DefaultAccount
	roles := []struct {
		name  string
		actor latchkey.Actor
	}{
		{"operator", e.operator},
		{"admin", e.admin},
		{"other admin", e.otherAdmin},
		{"viewer", e.viewer},
		{"verifier", e.verifier},
	}
	type want [5]string // operator, admin, other admin, viewer, verifier
	var (
		read        = want{"", "", latchkey.ENOTFOUND, "", latchkey.ENOTFOUND}
		write       = want{"", "", latchkey.ENOTFOUND, latchkey.EFORBIDDEN, latchkey.ENOTFOUND}
		operatorOnW = want{"", latchkey.EFORBIDDEN, latchkey.ENOTFOUND, latchkey.EFORBIDDEN, latchkey.ENOTFOUND}
		everyone    = want{"", "", "", "", ""}
	)
	desc := "changed"
	inactive := latchkey.StatusInactive
	ops := []struct {
		name string
		do   func(ctx context.Context, a latchkey.Actor, fx *fixture) error
		want want
	}{
		{"CreateAccount", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			_, err := e.svc.CreateAccount(ctx, a, fmt.Sprintf("acct-%d", fx.n), latchkey.AccountUpdate{})
			return err
		}, want{"", latchkey.EFORBIDDEN, latchkey.EFORBIDDEN, latchkey.EFORBIDDEN, latchkey.EFORBIDDEN}},
		{"ListAccounts", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			accs, err := e.svc.ListAccounts(ctx, a)
			if err == nil && a.Role != latchkey.RoleOperator && (len(accs) != 1 || accs[0].Name != a.Account) {
				return fmt.Errorf("a non-operator sees %d accounts", len(accs))
			}
			return err
		}, everyone},
		{"CreateApplication", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			_, err := e.svc.CreateApplication(ctx, a, def, fx.app+"-new", "", nil)
			return err
		}, write},
		{"GetApplication", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			_, err := e.svc.GetApplication(ctx, a, def, fx.app)
			return err
		}, read},
		{"ListApplications", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			_, _, err := e.svc.ListApplications(ctx, a, latchkey.ApplicationFilter{Account: def})
			return err
		}, read},
		{"UpdateApplication", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			_, err := e.svc.UpdateApplication(ctx, a, def, fx.app, &desc, nil)
			return err
		}, write},
		{"DeleteApplication", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			return e.svc.DeleteApplication(ctx, a, def, fx.emptyApp)
		}, write},
		{"CreateAccessKey", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			_, err := e.svc.CreateAccessKey(ctx, a, def, fx.emptyApp, latchkey.NewAccessKey{})
			return err
		}, write},
		{"GetAccessKey", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			_, err := e.svc.GetAccessKey(ctx, a, fx.key.ID)
			return err
		}, read},
		{"ListAccessKeys", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			_, _, err := e.svc.ListAccessKeys(ctx, a, latchkey.AccessKeyFilter{Account: def})
			return err
		}, read},
		{"ListAccessKeys of an application", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			keys, _, err := e.svc.ListAccessKeys(ctx, a, latchkey.AccessKeyFilter{Account: def, Application: fx.app})
			if err == nil && len(keys) != 2 {
				return fmt.Errorf("%d keys, want 2", len(keys))
			}
			return err
		}, read},
		{"UpdateAccessKey", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			_, err := e.svc.UpdateAccessKey(ctx, a, fx.key.ID, latchkey.AccessKeyUpdate{Status: &inactive})
			return err
		}, write},
		{"UpdateAccessKey of an operator", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			_, err := e.svc.UpdateAccessKey(ctx, a, e.operator.AccessKeyID, latchkey.AccessKeyUpdate{Description: &desc})
			return err
		}, operatorOnW},
		{"DeleteAccessKey", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			return e.svc.DeleteAccessKey(ctx, a, fx.offKey.ID, false)
		}, write},
		{"CreatePrincipal", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			_, err := e.svc.CreatePrincipal(ctx, a, def, fx.viewer+"-new", latchkey.RoleViewer)
			return err
		}, write},
		{"CreatePrincipal operator", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			_, err := e.svc.CreatePrincipal(ctx, a, def, fx.viewer+"-op", latchkey.RoleOperator)
			return err
		}, operatorOnW},
		{"GetPrincipal", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			_, err := e.svc.GetPrincipal(ctx, a, def, fx.viewer)
			return err
		}, read},
		{"ListPrincipals", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			_, err := e.svc.ListPrincipals(ctx, a, def)
			return err
		}, read},
		{"CreatePrincipalKey", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			_, err := e.svc.CreatePrincipalKey(ctx, a, def, fx.viewer, "")
			return err
		}, write},
		{"CreatePrincipalKey of an operator", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			k, err := e.svc.CreatePrincipalKey(ctx, a, def, manage.BootstrapPrincipal, "")
			if err == nil {
				e.deactivate(t, k.ID) // stay under the limit for the next role
				return e.svc.DeleteAccessKey(ctx, e.operator, k.ID, false)
			}
			return err
		}, operatorOnW},
		{"DeletePrincipal", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			return e.svc.DeletePrincipal(ctx, a, def, fx.viewer)
		}, write},
		{"ListAuditEvents", func(ctx context.Context, a latchkey.Actor, fx *fixture) error {
			_, _, err := e.svc.ListAuditEvents(ctx, a, latchkey.AuditFilter{Account: def})
			return err
		}, read},
	}
	n := 0
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			for i, r := range roles {
				t.Run(r.name, func(t *testing.T) {
					n++
					fx := e.fixture(t, n)
					before := len(e.events(t))
					err := op.do(t.Context(), r.actor, fx)
					if got := latchkey.ErrorCode(err); got != op.want[i] {
						t.Fatalf("%s as %s: %v (code %q), want code %q", op.name, r.name, err, got, op.want[i])
					}
					if err != nil {
						if after := len(e.events(t)); after != before {
							t.Errorf("a refused %s wrote %d audit events", op.name, after-before)
						}
					}
				})
			}
		})
	}
}

// TestFailClosed: what another account holds answers exactly like what
// does not exist.
func TestFailClosed(t *testing.T) {
	e := newEnv(t)
	e.app(t, "other", "ledger")
	k := e.key(t, "other", "ledger")
	unknown := "LKIAAAAAAAAAAAAAAAAA"
	ctx := t.Context()
	pairs := []struct {
		name           string
		theirs, absent func() error
		swap           [2]string
	}{
		{"GetAccessKey",
			func() error { _, err := e.svc.GetAccessKey(ctx, e.admin, k.ID); return err },
			func() error { _, err := e.svc.GetAccessKey(ctx, e.admin, unknown); return err },
			[2]string{k.ID, unknown}},
		{"UpdateAccessKey",
			func() error {
				_, err := e.svc.UpdateAccessKey(ctx, e.admin, k.ID, latchkey.AccessKeyUpdate{})
				return err
			},
			func() error {
				_, err := e.svc.UpdateAccessKey(ctx, e.admin, unknown, latchkey.AccessKeyUpdate{})
				return err
			},
			[2]string{k.ID, unknown}},
		{"DeleteAccessKey",
			func() error { return e.svc.DeleteAccessKey(ctx, e.admin, k.ID, true) },
			func() error { return e.svc.DeleteAccessKey(ctx, e.admin, unknown, true) },
			[2]string{k.ID, unknown}},
		{"GetApplication in another account",
			func() error { _, err := e.svc.GetApplication(ctx, e.admin, "other", "ledger"); return err },
			func() error { _, err := e.svc.GetApplication(ctx, e.admin, "nosuch", "ledger"); return err },
			[2]string{"other", "nosuch"}},
		{"ResolveAccount",
			func() error { _, err := manage.ResolveAccount(e.admin, "other"); return err },
			func() error { _, err := manage.ResolveAccount(e.admin, "nosuch"); return err },
			[2]string{"other", "nosuch"}},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			theirs, absent := p.theirs(), p.absent()
			wantCode(t, theirs, latchkey.ENOTFOUND)
			wantCode(t, absent, latchkey.ENOTFOUND)
			got := latchkey.ErrorMessage(theirs)
			want := latchkey.ErrorMessage(absent)
			if replaced := strings.ReplaceAll(got, p.swap[0], p.swap[1]); replaced != want {
				t.Errorf("another account's object: %q; a missing one: %q", got, want)
			}
		})
	}
	if e.storedKey(t, k.ID) == nil {
		t.Fatal("the other account's key was deleted")
	}
}

func TestResolveAccount(t *testing.T) {
	op := latchkey.Actor{Principal: "root", Account: "default", Role: latchkey.RoleOperator}
	admin := latchkey.Actor{Principal: "a", Account: "acme", Role: latchkey.RoleAdmin}
	ver := latchkey.Actor{Principal: "v", Account: "acme", Role: latchkey.RoleVerifier}
	tests := []struct {
		name      string
		a         latchkey.Actor
		requested string
		want      string
		code      string
	}{
		{"operator, none named", op, "", "default", ""},
		{"operator, any account", op, "globex", "globex", ""},
		{"admin, none named", admin, "", "acme", ""},
		{"admin, its own", admin, "acme", "acme", ""},
		{"admin, another", admin, "globex", "", latchkey.ENOTFOUND},
		{"verifier, its own", ver, "acme", "", latchkey.ENOTFOUND},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := manage.ResolveAccount(tc.a, tc.requested)
			if got != tc.want || latchkey.ErrorCode(err) != tc.code {
				t.Errorf("ResolveAccount = %q, %v; want %q, code %q", got, err, tc.want, tc.code)
			}
		})
	}
}
