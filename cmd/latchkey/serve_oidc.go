package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/cli"
	"github.com/latchkey/latchkey/internal/console"
	"github.com/latchkey/latchkey/internal/manage"
)

// oidcOptions are the flags of single sign-on for the console.
type oidcOptions struct {
	issuer, clientID, secretFile, redirectURL, roleMap string
	scopes                                             []string
	revalidate                                         time.Duration
	keySignin                                          bool
}

func (o *oidcOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.issuer, "oidc-issuer", os.Getenv("LATCHKEY_OIDC_ISSUER"), "OpenID Provider issuer URL; enables single sign-on for the console (env LATCHKEY_OIDC_ISSUER)")
	f.StringVar(&o.clientID, "oidc-client-id", os.Getenv("LATCHKEY_OIDC_CLIENT_ID"), "the console's client ID at the OpenID Provider (env LATCHKEY_OIDC_CLIENT_ID)")
	f.StringVar(&o.secretFile, "oidc-client-secret-file", os.Getenv("LATCHKEY_OIDC_CLIENT_SECRET_FILE"), "file holding the client secret (or set env LATCHKEY_OIDC_CLIENT_SECRET; never a flag value)")
	f.StringVar(&o.redirectURL, "oidc-redirect-url", os.Getenv("LATCHKEY_OIDC_REDIRECT_URL"), "the console's callback as the browser reaches it, https://HOST/console/oidc/callback (env LATCHKEY_OIDC_REDIRECT_URL)")
	f.StringVar(&o.roleMap, "oidc-role-map", os.Getenv("LATCHKEY_OIDC_ROLE_MAP"), "YAML or JSON file mapping claims or groups to account and role; a person no rule matches is refused (env LATCHKEY_OIDC_ROLE_MAP)")
	f.StringSliceVar(&o.scopes, "oidc-scopes", splitEnv("LATCHKEY_OIDC_SCOPES"), "scopes to request (default openid,email,profile,offline_access; env LATCHKEY_OIDC_SCOPES)")
	f.DurationVar(&o.revalidate, "oidc-revalidate-interval", console.DefaultOIDCRevalidate, "how often a signed-in person is checked with the OpenID Provider again (refresh token, else userinfo): the bound on how long a removed person keeps access")
	f.BoolVar(&o.keySignin, "console-access-key-signin", os.Getenv("LATCHKEY_CONSOLE_ACCESS_KEY_SIGNIN") != "false", "allow console sign-in with an admin access key; false leaves only OIDC (env LATCHKEY_CONSOLE_ACCESS_KEY_SIGNIN=false)")
}

// config checks the flags and reads the client secret and the role map.
// It returns nil when OIDC is not configured.
func (o *oidcOptions) config() (*console.OIDCConfig, error) {
	if o.issuer == "" {
		for flag, v := range map[string]string{"--oidc-client-id": o.clientID, "--oidc-client-secret-file": o.secretFile,
			"--oidc-redirect-url": o.redirectURL, "--oidc-role-map": o.roleMap} {
			if v != "" {
				return nil, cli.UsageErrorf("%s needs --oidc-issuer", flag)
			}
		}
		if !o.keySignin {
			return nil, cli.UsageErrorf("--console-access-key-signin=false needs --oidc-issuer: nobody could sign in to the console")
		}
		return nil, nil
	}
	switch {
	case o.clientID == "":
		return nil, cli.UsageErrorf("--oidc-issuer needs --oidc-client-id")
	case o.redirectURL == "":
		return nil, cli.UsageErrorf("--oidc-issuer needs --oidc-redirect-url (https://HOST%s/oidc/callback, as registered at the provider)", console.Prefix)
	case o.roleMap == "":
		return nil, cli.UsageErrorf("--oidc-issuer needs --oidc-role-map: without it nobody could be given a role")
	case o.revalidate < 10*time.Second || o.revalidate > time.Hour:
		return nil, cli.UsageErrorf("--oidc-revalidate-interval %s: expected 10s to 1h", o.revalidate)
	}
	secret := os.Getenv("LATCHKEY_OIDC_CLIENT_SECRET")
	if o.secretFile != "" {
		if secret != "" {
			return nil, cli.UsageErrorf("--oidc-client-secret-file and env LATCHKEY_OIDC_CLIENT_SECRET: give one, not both")
		}
		b, err := os.ReadFile(o.secretFile)
		if err != nil {
			return nil, cli.UsageErrorf("--oidc-client-secret-file: %v", err)
		}
		if secret = strings.TrimSpace(string(b)); secret == "" {
			return nil, cli.UsageErrorf("--oidc-client-secret-file %s is empty", o.secretFile)
		}
	}
	doc, err := os.ReadFile(o.roleMap)
	if err != nil {
		return nil, cli.UsageErrorf("--oidc-role-map: %v", err)
	}
	rm, err := console.ParseRoleMap(doc)
	if err != nil {
		return nil, cli.UsageErrorf("--oidc-role-map %s: %s", o.roleMap, latchkey.ErrorMessage(err))
	}
	return &console.OIDCConfig{Issuer: o.issuer, ClientID: o.clientID, ClientSecret: secret, RedirectURL: o.redirectURL,
		Scopes: o.scopes, RoleMap: rm, Revalidate: o.revalidate}, nil
}

// newOIDC discovers the provider; an error names the flags to check.
func newOIDC(ctx context.Context, cfg *console.OIDCConfig) (*console.OIDC, error) {
	o, err := console.NewOIDC(ctx, *cfg)
	if err != nil {
		return nil, cli.UsageErrorf("--oidc-issuer/--oidc-redirect-url: %s", latchkey.ErrorMessage(err))
	}
	return o, nil
}

// unknownRoleMapAccounts returns the accounts the role map names that do
// not exist (yet): a person such a rule matches signs in to pages that say
// "not found". serve warns about them; an operator may create the account
// later.
func unknownRoleMapAccounts(ctx context.Context, svc *manage.Service, rm *console.RoleMap) ([]string, error) {
	accounts, err := svc.ListAccounts(ctx, latchkey.System())
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, a := range accounts {
		have[a.Name] = true
	}
	var out []string
	for _, r := range rm.Rules {
		if !have[r.Account] {
			have[r.Account] = true // once each
			out = append(out, r.Account)
		}
	}
	return out, nil
}

func warnUnknownRoleMapAccounts(ctx context.Context, svc *manage.Service, rm *console.RoleMap, log *slog.Logger) {
	missing, err := unknownRoleMapAccounts(ctx, svc, rm)
	if err != nil {
		log.Warn("could not check the OIDC role map's accounts", "err", err)
		return
	}
	for _, a := range missing {
		log.Warn("the OIDC role map names an account that does not exist", "account", a, "flag", "--oidc-role-map")
	}
}
