// Package gatewaytest sets up what the tests of latchkey's gateway surfaces
// (the reverse proxy, Envoy ext_authz, forward auth) decide with: a SQLite
// store in a temporary directory, the key index, the verifier with its usage
// recorder, the management service and the httpapi.Server whose Decide they
// all share. Keys are made at run time; no secret is ever a fixture.
package gatewaytest

import (
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/verify"
)

// Env is a decision side ready for a gateway to use.
type Env struct {
	API      *httpapi.Server
	Service  *manage.Service
	Verifier *verify.Verifier
	Operator latchkey.Actor
}

// Key is an application key as its client holds it.
type Key struct {
	ID, Secret, Application string
}

// Options configure New.
type Options struct {
	// TrustedProxies are given to the httpapi.Server, as CIDRs.
	TrustedProxies []string
	// ScopeRules are "METHOD /path scope" rules.
	ScopeRules []string
	Log        *slog.Logger
}

// New returns an Env that is torn down when the test ends.
func New(t testing.TB, o Options) *Env {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "latchkey.db"))
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ix := verify.NewIndex()
	rec := verify.NewRecorder(store, time.Hour, log)
	svc := manage.New(store, ix, log)
	if _, err := svc.Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	recCtx, stopRec := context.WithCancel(ctx)
	rec.Start(recCtx)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = rec.Stop(sctx)
		stopRec()
		_ = store.Close()
	})
	var trusted []netip.Prefix
	for _, s := range o.TrustedProxies {
		trusted = append(trusted, netip.MustParsePrefix(s))
	}
	var rules []httpapi.ScopeRule
	for _, s := range o.ScopeRules {
		r, err := httpapi.ParseScopeRule(s)
		if err != nil {
			t.Fatalf("scope rule: %v", err)
		}
		rules = append(rules, r)
	}
	v := verify.New(ix, rec)
	return &Env{
		API:      &httpapi.Server{Service: svc, Verifier: v, Log: log, TrustedProxies: trusted, ScopeRules: rules},
		Service:  svc,
		Verifier: v,
		Operator: latchkey.Actor{Principal: manage.BootstrapPrincipal, Account: latchkey.DefaultAccount, Role: latchkey.RoleOperator},
	}
}

// Key registers application app (once) and creates an Active key for it
// with the given restrictions (nil: none).
func (e *Env) Key(t testing.TB, app string, r *latchkey.Restrictions) Key {
	t.Helper()
	ctx := context.Background()
	if _, err := e.Service.GetApplication(ctx, e.Operator, latchkey.DefaultAccount, app); latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
		if _, err := e.Service.CreateApplication(ctx, e.Operator, latchkey.DefaultAccount, app, "", nil); err != nil {
			t.Fatalf("creating application %s: %v", app, err)
		}
	}
	k, err := e.Service.CreateAccessKey(ctx, e.Operator, latchkey.DefaultAccount, app, latchkey.NewAccessKey{Restrictions: r})
	if err != nil {
		t.Fatalf("creating a key for %s: %v", app, err)
	}
	return Key{ID: k.ID, Secret: k.Secret, Application: app}
}

// SetStatus makes a key Active or Inactive.
func (e *Env) SetStatus(t testing.TB, id string, s latchkey.Status) {
	t.Helper()
	if _, err := e.Service.UpdateAccessKey(context.Background(), e.Operator, id, latchkey.AccessKeyUpdate{Status: &s}); err != nil {
		t.Fatalf("setting %s %s: %v", id, s, err)
	}
}

// Exposed reports where a key was flagged exposed, "" if it was not.
func (e *Env) Exposed(t testing.TB, id string) string {
	t.Helper()
	k, err := e.Service.GetAccessKey(context.Background(), e.Operator, id)
	if err != nil {
		t.Fatalf("reading %s: %v", id, err)
	}
	if k.Exposed == nil {
		return ""
	}
	return k.Exposed.Where
}
