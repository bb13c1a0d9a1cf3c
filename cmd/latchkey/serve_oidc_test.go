package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/console"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/verify"
)

// TestOIDCFlags: the OIDC flags go together, the secret comes from a file
// or the environment only, and each mistake names its flag.
func TestOIDCFlags(t *testing.T) {
	dir := t.TempDir()
	roles := filepath.Join(dir, "roles.yaml")
	if err := os.WriteFile(roles, []byte("rules:\n  - values: [ops]\n    role: operator\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badRoles := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badRoles, []byte("rules:\n  - values: [ops]\n    role: verifier\n    account: default\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("from-the-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	full := func() oidcOptions {
		return oidcOptions{issuer: "https://idp.example", clientID: "lk", redirectURL: "https://lk.example/console/oidc/callback",
			roleMap: roles, revalidate: console.DefaultOIDCRevalidate, keySignin: true}
	}
	cases := []struct {
		name   string
		edit   func(o *oidcOptions)
		env    string
		err    string // "" = valid
		secret string
	}{
		{name: "off", edit: func(o *oidcOptions) { *o = oidcOptions{keySignin: true} }},
		{name: "secret from the environment", edit: func(*oidcOptions) {}, env: "from-the-env", secret: "from-the-env"},
		{name: "secret from a file", edit: func(o *oidcOptions) { o.secretFile = secretFile }, secret: "from-the-file"},
		{name: "public client", edit: func(*oidcOptions) {}},
		{name: "key sign-in off without OIDC", edit: func(o *oidcOptions) { *o = oidcOptions{} }, err: "--console-access-key-signin=false needs --oidc-issuer"},
		{name: "client ID without issuer", edit: func(o *oidcOptions) { o.issuer = "" }, err: "needs --oidc-issuer"},
		{name: "no client ID", edit: func(o *oidcOptions) { o.clientID = "" }, err: "--oidc-client-id"},
		{name: "no redirect URL", edit: func(o *oidcOptions) { o.redirectURL = "" }, err: "--oidc-redirect-url"},
		{name: "no role map", edit: func(o *oidcOptions) { o.roleMap = "" }, err: "--oidc-role-map"},
		{name: "role map missing", edit: func(o *oidcOptions) { o.roleMap = filepath.Join(dir, "nope") }, err: "--oidc-role-map"},
		{name: "role map refused", edit: func(o *oidcOptions) { o.roleMap = badRoles }, err: "--oidc-role-map " + badRoles + ": role map rule 1"},
		{name: "interval too short", edit: func(o *oidcOptions) { o.revalidate = time.Second }, err: "--oidc-revalidate-interval"},
		{name: "secret twice", edit: func(o *oidcOptions) { o.secretFile = secretFile }, env: "x", err: "give one, not both"},
		{name: "empty secret file", edit: func(o *oidcOptions) { o.secretFile = empty }, err: "is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("LATCHKEY_OIDC_CLIENT_SECRET", tc.env)
			o := full()
			tc.edit(&o)
			cfg, err := o.config()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error with %q", err, tc.err)
				}
				if tc.env != "" && strings.Contains(err.Error(), tc.env) {
					t.Error("the error shows the secret")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.issuer == "" {
				if cfg != nil {
					t.Fatal("OIDC configured without an issuer")
				}
				return
			}
			if cfg.ClientSecret != tc.secret {
				t.Errorf("secret %q, want %q", cfg.ClientSecret, tc.secret)
			}
		})
	}
}

func TestUnknownRoleMapAccounts(t *testing.T) {
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "lk.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc := manage.New(store, verify.NewIndex(), nil)
	if _, err := svc.Bootstrap(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateAccount(t.Context(), latchkey.System(), "acme", latchkey.AccountUpdate{}); err != nil {
		t.Fatal(err)
	}
	rm, err := console.ParseRoleMap([]byte(`rules:
  - {values: [ops], role: operator}
  - {values: [a], account: acme, role: admin}
  - {values: [b], account: ghost, role: viewer}
  - {values: [c], account: ghost, role: admin}
`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := unknownRoleMapAccounts(t.Context(), svc, rm)
	if err != nil || strings.Join(got, ",") != "ghost" {
		t.Fatalf("unknown accounts %v (%v), want [ghost]", got, err)
	}
}
