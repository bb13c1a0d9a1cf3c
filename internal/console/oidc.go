package console

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"time"
	"unicode"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey"
)

// Single sign-on with an OpenID Provider (OIDC), beside or instead of the
// access-key sign-in.
//
// The flow is the authorization code flow with PKCE (S256). The state, the
// nonce, the PKCE verifier and the page to return to travel in one cookie,
// sealed with AES-256-GCM under a key made at start-up, HttpOnly,
// SameSite=Lax (the IdP's redirect back is a cross-site navigation, which a
// Strict cookie would miss) and valid for ten minutes. The callback accepts
// a code only with the matching state and that cookie, so a code or a
// session cannot be planted in somebody else's browser (login CSRF, code
// injection); the code is redeemed with the PKCE verifier; the ID token's
// signature (keys from the provider's JWKS, refetched when a new key ID
// appears), issuer, audience, expiry and nonce are checked by go-oidc and
// here. The person then gets the account and role of the first rule of the
// role map their claims match, or nothing.
//
// The portal (/portal) signs consumers in through the same provider,
// client and flow, at its own callback (the redirect URL's path with
// /portal instead of /console, which must be registered at the provider
// too), with its own flow cookie, and with the consumer rules of the role
// map only.
//
// Sessions end as the console's always do (idle, age, sign-out) and also
// when the IdP stops vouching for the person: every Revalidate interval
// (5 minutes by default) the session's refresh token is redeemed again, or,
// without one, the userinfo endpoint is asked. A refusal, an unreachable
// IdP or claims that no longer map end the session on the next request
// (fail closed); new claims that map to another role change the role. An
// IdP that sends OpenID Connect back-channel logout tokens to
// /console/oidc/backchannel-logout ends the person's sessions at once.

// Defaults for OIDC sign-in.
const (
	DefaultOIDCRevalidate = 5 * time.Minute
	oidcFlowTTL           = 10 * time.Minute
	oidcHTTPTimeout       = 15 * time.Second
	// maxClaim bounds the subject and email kept in a session and written
	// to the audit log.
	maxClaim = 256
)

// DefaultOIDCScopes are requested unless OIDCConfig.Scopes says otherwise.
var DefaultOIDCScopes = []string{oidc.ScopeOpenID, "email", "profile", oidc.ScopeOfflineAccess}

// OIDCConfig configures sign-in with an OpenID Provider.
type OIDCConfig struct {
	Issuer       string // the provider's issuer URL, exactly as its discovery document says
	ClientID     string
	ClientSecret string // from a file or the environment, never a flag
	RedirectURL  string // https://console.example.com/console/oidc/callback
	Scopes       []string
	RoleMap      *RoleMap
	// Revalidate is how often a session's person is checked with the IdP
	// again (default 5 minutes): the bound on how long a removed person
	// keeps access.
	Revalidate time.Duration
	// HTTPClient reaches the provider (default: a client with a 15 s
	// timeout).
	HTTPClient *http.Client
	// Now is the clock for token expiry checks (default time.Now).
	Now func() time.Time
}

// OIDC is a configured OpenID Provider. Make it with NewOIDC.
type OIDC struct {
	cfg      OIDCConfig
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
	aead     cipher.AEAD
	// console and portal are the two sign-in surfaces; portal's redirect
	// URL is the console's with the path /portal/oidc/callback.
	console, portal oidcSurface
	portalOAuth     oauth2.Config
	// ended are the session stores whose persons back-channel logout
	// ends: the console's, and the portal's once it is mounted.
	endMu sync.Mutex
	ended []*sessionStore
	// needed are the claims the role map reads, plus email: when the ID
	// token lacks one, the userinfo endpoint is asked for it.
	needed []string
}

// NewOIDC discovers the provider at cfg.Issuer and returns it ready for
// sign-ins. Returns EINVALID naming the missing setting, or EUNAVAILABLE
// when discovery fails.
func NewOIDC(ctx context.Context, cfg OIDCConfig) (*OIDC, error) {
	switch {
	case cfg.Issuer == "":
		return nil, latchkey.Errorf(latchkey.EINVALID, "OIDC: the issuer URL is missing")
	case cfg.ClientID == "":
		return nil, latchkey.Errorf(latchkey.EINVALID, "OIDC: the client ID is missing")
	case cfg.RedirectURL == "":
		return nil, latchkey.Errorf(latchkey.EINVALID, "OIDC: the redirect URL is missing")
	case cfg.RoleMap == nil:
		return nil, latchkey.Errorf(latchkey.EINVALID, "OIDC: the role map is missing; without one nobody could be given a role")
	}
	ru, err := url.Parse(cfg.RedirectURL)
	if err != nil || (ru.Scheme != "https" && ru.Scheme != "http") || ru.Host == "" || ru.Path != Prefix+"/oidc/callback" {
		return nil, latchkey.Errorf(latchkey.EINVALID, "OIDC: the redirect URL must be an absolute http(s) URL ending in %s/oidc/callback", Prefix)
	}
	if cfg.Revalidate <= 0 {
		cfg.Revalidate = DefaultOIDCRevalidate
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = DefaultOIDCScopes
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: oidcHTTPTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, latchkey.Internal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, latchkey.Internal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, latchkey.Internal(err)
	}
	ctx = oidc.ClientContext(ctx, cfg.HTTPClient)
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, latchkey.Errorf(latchkey.EUNAVAILABLE, "OIDC: discovery at %s failed: %v", cfg.Issuer, err)
	}
	o := &OIDC{cfg: cfg, provider: p, aead: aead,
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: cfg.Now}),
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: cfg.RedirectURL, Scopes: cfg.Scopes},
		needed: []string{"email", "email_verified"},
	}
	for _, r := range cfg.RoleMap.Rules {
		o.needed = append(o.needed, r.Claim)
		if r.OwnerClaim != "" {
			o.needed = append(o.needed, r.OwnerClaim)
		}
	}
	o.portalOAuth = o.oauth
	pu := *ru
	pu.Path = PortalPrefix + "/oidc/callback"
	o.portalOAuth.RedirectURL = pu.String()
	o.console = oidcSurface{prefix: Prefix, cookie: cookieOIDC, cookieSecure: cookieOIDCSecure, oauth: &o.oauth}
	o.portal = oidcSurface{prefix: PortalPrefix, cookie: cookiePortalOIDC, cookieSecure: cookiePortalOIDCSecure, oauth: &o.portalOAuth, consumer: true}
	return o, nil
}

// PortalRedirectURL is the portal's OIDC callback, which must be
// registered at the provider beside the console's.
func (o *OIDC) PortalRedirectURL() string { return o.portalOAuth.RedirectURL }

// Revalidate is the bound on how long the IdP's word about a person is
// trusted.
func (o *OIDC) Revalidate() time.Duration { return o.cfg.Revalidate }

func (o *OIDC) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, o.cfg.HTTPClient)
}

// flowState is what the browser carries, sealed, from the redirect to the
// IdP until the callback.
type flowState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"r"`
	Expires  int64  `json:"e"`
}

const (
	cookieOIDC       = "latchkey_oidc"
	cookieOIDCSecure = "__Host-latchkey_oidc"
)

// oidcSurface is one of the two places a person signs in to with OIDC:
// the console or the portal. Each has its own callback, flow cookie (whose
// name is the sealed flow's additional data, so a flow begun for one is
// refused by the other) and role map rules.
type oidcSurface struct {
	prefix               string // "/console" or "/portal"
	cookie, cookieSecure string
	oauth                *oauth2.Config
	consumer             bool // the portal: consumer rules only
}

// flowCookie is the cookie that carries a surface's sealed sign-in flow:
// HttpOnly, SameSite=Lax, for the surface's OIDC paths, and over TLS
// __Host- and Secure.
func (s *oidcSurface) flowCookie(secure bool, value string) *http.Cookie {
	ck := &http.Cookie{Name: s.cookie, Value: value, Path: s.prefix + "/oidc", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		MaxAge: int(oidcFlowTTL / time.Second)}
	if secure {
		ck.Name, ck.Path, ck.Secure = s.cookieSecure, "/", true
	}
	if value == "" {
		ck.MaxAge = -1
	}
	return ck
}

func (o *OIDC) seal(name string, f flowState) (string, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return "", latchkey.Internal(err)
	}
	nonce := make([]byte, o.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", latchkey.Internal(err)
	}
	return base64.RawURLEncoding.EncodeToString(o.aead.Seal(nonce, nonce, b, []byte(name))), nil
}

var errFlow = errors.New("no valid sign-in flow")

// open returns the flow sealed in value, if it is intact and not expired.
func (o *OIDC) open(name, value string, now time.Time) (flowState, error) {
	var f flowState
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < o.aead.NonceSize() {
		return f, errFlow
	}
	n := o.aead.NonceSize()
	b, err := o.aead.Open(nil, raw[:n], raw[n:], []byte(name))
	if err != nil {
		return f, errFlow
	}
	if err := json.Unmarshal(b, &f); err != nil || f.State == "" || f.Nonce == "" || f.Verifier == "" {
		return f, errFlow
	}
	if now.Unix() >= f.Expires {
		return f, errFlow
	}
	return f, nil
}

// begin starts a sign-in on surface s: it binds a fresh state, nonce and
// PKCE verifier to this browser (the sealed flow cookie) and sends it to
// the IdP. next must already be a safe page of the surface.
func (o *OIDC) begin(w http.ResponseWriter, r *http.Request, s *oidcSurface, secure bool, next string) error {
	state, err := randomToken()
	if err != nil {
		return err
	}
	nonce, err := randomToken()
	if err != nil {
		return err
	}
	f := flowState{State: state, Nonce: nonce, Verifier: oauth2.GenerateVerifier(), Next: next, Expires: o.cfg.Now().Add(oidcFlowTTL).Unix()}
	ck := s.flowCookie(secure, "x")
	sealed, err := o.seal(ck.Name, f)
	if err != nil {
		return err
	}
	ck.Value = sealed
	http.SetCookie(w, ck)
	http.Redirect(w, r, s.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusSeeOther)
	return nil
}

// oidcLogin starts a console sign-in.
func (c *Console) oidcLogin(w http.ResponseWriter, r *http.Request) {
	if err := c.OIDC.begin(w, r, &c.OIDC.console, c.secure(r), safeNext(r.URL.Query().Get("next"))); err != nil {
		c.fail(w, r, nil, err)
	}
}

// Messages of the OIDC callback.
const (
	msgOIDCFlow     = "The sign-in with your identity provider had expired or did not start in this browser, so it was refused. Sign in again."
	msgOIDCExchange = "The identity provider did not confirm the sign-in. Sign in again; if it keeps failing, ask an operator to check the OIDC settings."
	msgOIDCToken    = "The identity provider's answer could not be verified, so the sign-in was refused."
	msgOIDCNoRole   = "Your identity provider account is not given a role in latchkey, so you cannot use the console. Ask an operator to add one of your groups to the role map."
)

var idpErrorRE = regexp.MustCompile(`^[a-z_]{1,40}$`)

// flowRefusal is why a callback was refused: the status and the message
// the sign-in page shows.
type flowRefusal struct {
	status int
	msg    string
}

// finish completes a sign-in on surface s: the IdP sent the browser back
// with a code (or an error) and the state. The flow cookie is cleared
// whatever happens (one use). The state must match the sealed flow of this
// browser (login CSRF), the code is redeemed with the flow's PKCE verifier
// (code injection), and the ID token must carry the flow's nonce. It
// returns the person with the grant of the surface's first matching rule,
// and the page to go to.
func (o *OIDC) finish(w http.ResponseWriter, r *http.Request, s *oidcSurface, secure bool, log *slog.Logger, ip string, now time.Time) (*person, string, *flowRefusal) {
	q := r.URL.Query()
	name := s.flowCookie(secure, "x").Name
	raw := cookieValue(r, name)
	http.SetCookie(w, s.flowCookie(secure, "")) // one use, whatever happens
	f, err := o.open(name, raw, o.cfg.Now())
	if err != nil || !tokensEqual(q.Get("state"), f.State) {
		log.Warn(s.prefix[1:]+" OIDC callback refused", "reason", "state", "client_ip", ip)
		return nil, "", &flowRefusal{http.StatusForbidden, msgOIDCFlow}
	}
	if e := q.Get("error"); e != "" {
		if !idpErrorRE.MatchString(e) {
			e = "unknown error"
		}
		return nil, "", &flowRefusal{http.StatusForbidden, "Your identity provider refused the sign-in (" + e + ")."}
	}
	code := q.Get("code")
	if code == "" {
		return nil, "", &flowRefusal{http.StatusBadRequest, msgOIDCFlow}
	}
	ctx, cancel := context.WithTimeout(o.ctx(r.Context()), oidcHTTPTimeout)
	defer cancel()
	tok, err := s.oauth.Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		log.Warn(s.prefix[1:]+" OIDC code exchange failed", "err", err, "client_ip", ip)
		return nil, "", &flowRefusal{http.StatusBadGateway, msgOIDCExchange}
	}
	id, claims, err := o.verify(ctx, tok, f.Nonce)
	if err != nil {
		log.Warn(s.prefix[1:]+" OIDC token refused", "err", err, "client_ip", ip)
		return nil, "", &flowRefusal{http.StatusForbidden, msgOIDCToken}
	}
	p, err := newPerson(id.Subject, claims)
	if err != nil {
		log.Warn(s.prefix[1:]+" OIDC token refused", "err", err, "client_ip", ip)
		return nil, "", &flowRefusal{http.StatusForbidden, msgOIDCToken}
	}
	g, ok := o.cfg.RoleMap.matchFor(claims, s.consumer)
	if !ok {
		log.Info(s.prefix[1:]+" OIDC sign-in refused: no role", "subject", p.Subject, "email", p.Email, "client_ip", ip)
		msg := msgOIDCNoRole
		if s.consumer {
			msg = msgPortalNoRole
		}
		return nil, "", &flowRefusal{http.StatusForbidden, msg}
	}
	p.grant, p.token, p.claims, p.validated, p.consumer = g, tok, claims, now, s.consumer
	if sid, ok := claims["sid"].(string); ok && len(sid) <= maxClaim {
		p.SID = sid
	}
	return p, f.Next, nil
}

// oidcCallback finishes a console sign-in.
func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	ip := c.clientIP(r).String()
	p, next, refused := c.OIDC.finish(w, r, &c.OIDC.console, c.secure(r), c.Log, ip, c.now())
	if refused != nil {
		c.renderSignin(w, r, refused.status, signinData{Error: refused.msg})
		return
	}
	g := p.grant
	actor := latchkey.Actor{Principal: p.actorName(), Account: g.Account, Role: g.Role}
	sid, err := c.sessions.createPerson(actor, p, c.now(), c.IdleTimeout, c.MaxSessionAge)
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	c.Log.Info("console sign-in", "oidc_subject", p.Subject, "email", p.Email, "account", g.Account, "role", string(g.Role),
		"role_map_rule", g.Rule, "client_ip", ip)
	http.SetCookie(w, c.sessionCookie(r, sid))
	// A page, not a redirect: the browser arrived here from the IdP's site,
	// and over that cross-site redirect chain it would not send the
	// SameSite=Strict session cookie. The page's own navigation is
	// same-site.
	v := c.newView(r, nil, "Signed in", "", continueData{Next: next})
	v.Continue = next
	c.write(w, http.StatusOK, "continue", v)
}

type continueData struct{ Next string }

// verify checks the ID token of a token response (signature, issuer,
// audience, expiry; the nonce when one is given; the access token's hash
// when the token has one) and returns it with its claims, completed from
// the userinfo endpoint when the token lacks a claim the role map reads.
func (o *OIDC) verify(ctx context.Context, tok *oauth2.Token, nonce string) (*oidc.IDToken, map[string]any, error) {
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return nil, nil, errors.New("the token response has no id_token")
	}
	id, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, nil, err
	}
	if nonce != "" && !tokensEqual(id.Nonce, nonce) {
		return nil, nil, errors.New("the ID token's nonce is not this sign-in's")
	}
	if id.AccessTokenHash != "" && tok.AccessToken != "" {
		if err := id.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, nil, err
		}
	}
	claims := map[string]any{}
	if err := id.Claims(&claims); err != nil {
		return nil, nil, err
	}
	if err := o.completeClaims(ctx, tok, id.Subject, claims, false); err != nil {
		return nil, nil, err
	}
	return id, claims, nil
}

// completeClaims asks the userinfo endpoint for the claims the role map
// needs: those missing from claims, or, with fresh set, all of them
// (revalidation without an ID token). Userinfo of another subject is an
// error.
func (o *OIDC) completeClaims(ctx context.Context, tok *oauth2.Token, subject string, claims map[string]any, fresh bool) error {
	missing := fresh
	for _, n := range o.needed {
		if _, ok := claims[n]; !ok {
			missing = true
		}
	}
	if !missing || tok.AccessToken == "" || o.provider.UserInfoEndpoint() == "" {
		if fresh {
			return errors.New("the provider has no userinfo endpoint to ask")
		}
		return nil
	}
	ui, err := o.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return err
	}
	if ui.Subject != subject {
		return errors.New("userinfo is about another subject")
	}
	var more map[string]any
	if err := ui.Claims(&more); err != nil {
		return err
	}
	for _, n := range o.needed {
		if v, ok := more[n]; ok {
			claims[n] = v
		} else if fresh {
			delete(claims, n)
		}
	}
	return nil
}

// person is the signed-in human of an OIDC session. Its fields after mu
// change when the session is revalidated.
type person struct {
	Subject, Email string
	SID            string // the IdP's session ID (sid claim), for back-channel logout

	consumer bool // a portal session: consumer rules decide

	mu        sync.Mutex
	grant     grant
	token     *oauth2.Token
	claims    map[string]any
	validated time.Time
	ended     bool
}

func newPerson(subject string, claims map[string]any) (*person, error) {
	email, _ := claims["email"].(string)
	if subject == "" || len(subject) > maxClaim || len(email) > maxClaim || !printable(subject) || !printable(email) {
		return nil, errors.New("the ID token's subject or email is empty, too long or not printable")
	}
	return &person{Subject: subject, Email: email}, nil
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// actorName is the person as the audit log names them: "oidc:" then the
// email (when the IdP gave one) and the subject, which the IdP never
// reuses.
func (p *person) actorName() string {
	if p.Email == "" {
		return "oidc:(sub " + p.Subject + ")"
	}
	return "oidc:" + p.Email + " (sub " + p.Subject + ")"
}

// current checks the person with the IdP again when the last check is
// older than the revalidation interval, and returns what they may do now.
// ok is false when the IdP no longer vouches for them or their claims no
// longer map to a role; the session must end.
func (o *OIDC) current(ctx context.Context, p *person, now time.Time) (grant, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return grant{}, errors.New("ended")
	}
	if now.Sub(p.validated) < o.cfg.Revalidate {
		return p.grant, nil
	}
	g, err := o.revalidate(ctx, p)
	if err != nil {
		p.ended = true
		return grant{}, err
	}
	p.grant, p.validated = g, now
	return g, nil
}

// revalidate asks the IdP about p: a refresh grant (which an IdP refuses
// for a removed or disabled person), or the userinfo endpoint when there
// is no refresh token. p.mu is held.
func (o *OIDC) revalidate(ctx context.Context, p *person) (grant, error) {
	ctx, cancel := context.WithTimeout(o.ctx(ctx), oidcHTTPTimeout)
	defer cancel()
	claims := map[string]any{}
	for k, v := range p.claims {
		claims[k] = v
	}
	if p.token.RefreshToken != "" {
		old := *p.token
		old.Expiry = time.Unix(1, 0) // force the refresh grant
		tok, err := o.oauth.TokenSource(ctx, &old).Token()
		if err != nil {
			return grant{}, fmt.Errorf("refresh: %w", err)
		}
		if raw, ok := tok.Extra("id_token").(string); ok && raw != "" {
			id, err := o.verifier.Verify(ctx, raw)
			if err != nil {
				return grant{}, err
			}
			if id.Subject != p.Subject {
				return grant{}, errors.New("the refreshed ID token is about another subject")
			}
			claims = map[string]any{}
			if err := id.Claims(&claims); err != nil {
				return grant{}, err
			}
			if err := o.completeClaims(ctx, tok, p.Subject, claims, false); err != nil {
				return grant{}, err
			}
		} else if err := o.completeClaims(ctx, tok, p.Subject, claims, true); err != nil {
			return grant{}, err
		}
		if tok.RefreshToken == "" {
			tok.RefreshToken = p.token.RefreshToken
		}
		p.token = tok
	} else if err := o.completeClaims(ctx, p.token, p.Subject, claims, true); err != nil {
		return grant{}, err
	}
	g, ok := o.cfg.RoleMap.matchFor(claims, p.consumer)
	if !ok {
		return grant{}, errors.New("the person's claims no longer map to a role")
	}
	p.claims = claims
	return g, nil
}

// personLabel is the signed-in person's label in the header.
func personLabel(p *person) string {
	if p.Email != "" {
		return p.Email
	}
	return p.Subject
}

// backchannelLogoutEvent is the member of a logout token's events claim
// that makes it one (OpenID Connect Back-Channel Logout 1.0, 2.4).
const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// maxLogoutTokenAge bounds how old (by iat) a logout token may be.
const maxLogoutTokenAge = 5 * time.Minute

// verifyLogout checks a back-channel logout token: the provider's
// signature, issuer and audience (go-oidc; a logout token need not have an
// expiry, so its iat must be recent instead), the logout event, no nonce,
// and a sub or sid. It returns the subject and session ID to end.
func (o *OIDC) verifyLogout(ctx context.Context, raw string) (sub, sid string, err error) {
	v := o.provider.Verifier(&oidc.Config{ClientID: o.cfg.ClientID, Now: o.cfg.Now, SkipExpiryCheck: true})
	t, err := v.Verify(o.ctx(ctx), raw)
	if err != nil {
		return "", "", err
	}
	var c struct {
		Events map[string]any `json:"events"`
		Nonce  *string        `json:"nonce"`
		SID    string         `json:"sid"`
	}
	if err := t.Claims(&c); err != nil {
		return "", "", err
	}
	now := o.cfg.Now()
	switch {
	case c.Events == nil || c.Events[backchannelLogoutEvent] == nil:
		return "", "", errors.New("not a logout token: no back-channel logout event")
	case c.Nonce != nil:
		return "", "", errors.New("a logout token must not carry a nonce")
	case t.Subject == "" && c.SID == "":
		return "", "", errors.New("the logout token names neither sub nor sid")
	case t.IssuedAt.IsZero() || now.Sub(t.IssuedAt) > maxLogoutTokenAge || t.IssuedAt.Sub(now) > time.Minute:
		return "", "", errors.New("the logout token's iat is missing or not recent")
	}
	return t.Subject, c.SID, nil
}

// oidcBackchannelLogout ends every session of the person (sub) or of the
// IdP session (sid) a valid logout token names. The IdP calls it server to
// server, so there is no browser, cookie or CSRF token; the token's
// signature is the authentication.
func (c *Console) oidcBackchannelLogout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	w.Header().Set("Content-Type", "application/json")
	bad := func() {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_request"}`))
	}
	if err := r.ParseForm(); err != nil {
		bad()
		return
	}
	sub, sid, err := c.OIDC.verifyLogout(r.Context(), r.PostForm.Get("logout_token"))
	if err != nil {
		c.Log.Warn("console OIDC back-channel logout refused", "err", err, "client_ip", c.clientIP(r).String())
		bad()
		return
	}
	match := func(p *person) bool {
		return (sub != "" && p.Subject == sub) || (sid != "" && p.SID == sid)
	}
	n := c.sessions.endPersons(match)
	c.OIDC.endMu.Lock()
	for _, st := range c.OIDC.ended {
		n += st.endPersons(match)
	}
	c.OIDC.endMu.Unlock()
	c.Log.Info("console OIDC back-channel logout", "oidc_subject", sub, "sid", sid, "sessions_ended", n)
	w.WriteHeader(http.StatusOK)
}
