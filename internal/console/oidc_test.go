package console

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey"
)

var continueRE = regexp.MustCompile(`<meta http-equiv="refresh" content="0; url=([^"]+)">`)

// signedIn reports whether the callback's page is the "Signed in" page
// and where it sends the browser.
func continueTo(t *testing.T, p page) string {
	t.Helper()
	if p.status != http.StatusOK || !strings.Contains(p.body, "data-signed-in") {
		t.Fatalf("callback: status %d, not the signed-in page:\n%s", p.status, p.body)
	}
	return strings.ReplaceAll(formValue(t, continueRE, p.body), "&amp;", "&")
}

func hasSessionCookie(p page) bool {
	for _, c := range p.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, cookieSession+"=") && !strings.HasPrefix(c, cookieSession+"=;") {
			return true
		}
	}
	return false
}

// TestOIDCSignIn signs people in through the example OP: each gets the
// role the role map gives their groups, or nothing; the session cookie
// keeps the console's rules; a change is audited with the person's email
// and subject.
func TestOIDCSignIn(t *testing.T) {
	e := newOIDCEnv(t, 0)
	if _, err := e.svc.CreateAccount(context.Background(), e.op, "acme", latchkey.AccountUpdate{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, user, email string
		groups            []string
		role              latchkey.Role // "" = refused
	}{
		{"operator group", "olga", "olga@example.com", []string{"staff", "lk-ops"}, latchkey.RoleOperator},
		{"admin group", "ada", "ada@example.com", []string{"lk-admins"}, latchkey.RoleAdmin},
		{"viewer group", "vic", "vic@example.com", []string{"lk-viewers"}, latchkey.RoleViewer},
		{"first rule wins", "both", "both@example.com", []string{"lk-viewers", "lk-admins"}, latchkey.RoleAdmin},
		{"no matching group", "nora", "nora@example.com", []string{"sales"}, ""},
		{"no groups", "ned", "ned@example.com", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pw := e.idp.addUser(tc.user, tc.email, tc.groups...)
			b := e.browser()
			p := e.sso(b, "/console/keys", tc.user, pw)
			if tc.role == "" {
				if p.status != http.StatusForbidden || !strings.Contains(p.body, "not given a role in latchkey") || hasSessionCookie(p) {
					t.Fatalf("status %d, session cookie %v:\n%s", p.status, hasSessionCookie(p), p.body)
				}
				if got := b.get("/console/applications"); got.status != http.StatusSeeOther || !strings.HasPrefix(got.location(), "/console/signin") {
					t.Fatalf("after a refused sign-in: status %d at %q", got.status, got.location())
				}
				return
			}
			if !hasSessionCookie(p) {
				t.Fatalf("no session cookie: %v", p.header.Values("Set-Cookie"))
			}
			for _, c := range p.header.Values("Set-Cookie") {
				if strings.HasPrefix(c, cookieSession+"=") && (!strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Strict")) {
					t.Errorf("session cookie %q: want HttpOnly and SameSite=Strict", c)
				}
			}
			if to := continueTo(t, p); to != "/console/keys" {
				t.Errorf("continues to %q, want /console/keys", to)
			}
			got := b.get("/console/applications")
			if got.status != http.StatusOK || !strings.Contains(got.body, tc.email) || !strings.Contains(got.body, string(tc.role)+" · ") {
				t.Fatalf("applications: status %d, want %s and role %s in the header:\n%s", got.status, tc.email, tc.role, got.body)
			}
			app := "app-" + tc.user
			res := b.submit("/console/applications", "/console/applications", url.Values{"name": {app}, "description": {"x"}})
			if tc.role == latchkey.RoleViewer {
				if _, err := e.svc.GetApplication(context.Background(), e.op, latchkey.DefaultAccount, app); latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
					t.Fatalf("a viewer created an application (status %d): %v", res.status, err)
				}
				return
			}
			if res.status != http.StatusSeeOther {
				t.Fatalf("create application: status %d\n%s", res.status, res.body)
			}
			evs, _, err := e.svc.ListAuditEvents(context.Background(), e.op, latchkey.AuditFilter{Application: app})
			if err != nil || len(evs) == 0 {
				t.Fatalf("audit: %v, %d events", err, len(evs))
			}
			ev := evs[0]
			want := "oidc:" + tc.email + " (sub " + tc.user + ")"
			if ev.Actor != want || ev.ActorKeyID != "" || ev.SourceIP == "" {
				t.Errorf("audit actor %q key %q ip %q, want %q, no key, an IP", ev.Actor, ev.ActorKeyID, ev.SourceIP, want)
			}
		})
	}
}

// TestOIDCOpenRedirect: the page after sign-in is a console page, whatever
// next the sign-in started with.
func TestOIDCOpenRedirect(t *testing.T) {
	e := newOIDCEnv(t, 0)
	pw := e.idp.addUser("ada", "ada@example.com", "lk-admins")
	for _, tc := range []struct{ next, want string }{
		{"/console/keys?status=Active", "/console/keys?status=Active"},
		{"https://evil.example/console/", "/console/applications"},
		{"//evil.example/console/", "/console/applications"},
		{"/console//evil.example", "/console/applications"},
		{"/\\evil.example", "/console/applications"},
		{"/console/../admin", "/console/applications"},
		{"/console/oidc/callback?code=x", "/console/applications"},
		{"javascript:alert(1)", "/console/applications"},
	} {
		t.Run(tc.next, func(t *testing.T) {
			if got := continueTo(t, e.sso(e.browser(), tc.next, "ada", pw)); got != tc.want {
				t.Errorf("next %q: continues to %q, want %q", tc.next, got, tc.want)
			}
		})
	}
}

// TestOIDCCallbackRefused: a callback without this browser's flow cookie,
// with another state, replayed, or carrying an IdP error starts no
// session.
func TestOIDCCallbackRefused(t *testing.T) {
	e := newOIDCEnv(t, 0)
	pw := e.idp.addUser("ada", "ada@example.com", "lk-admins")
	refused := func(t *testing.T, p page, status int, text string) {
		t.Helper()
		if p.status != status || !strings.Contains(p.body, text) || hasSessionCookie(p) {
			t.Fatalf("status %d (want %d), session cookie %v, want %q in:\n%s", p.status, status, hasSessionCookie(p), text, p.body)
		}
	}
	t.Run("state mismatch", func(t *testing.T) {
		b := e.browser()
		cb := e.ssoLogin(b, e.ssoStart(b, ""), "ada", pw)
		q := cb.Query()
		q.Set("state", q.Get("state")+"x")
		cb.RawQuery = q.Encode()
		refused(t, b.get(cb.RequestURI()), http.StatusForbidden, "did not start in this browser")
	})
	t.Run("code injected into another browser (login CSRF)", func(t *testing.T) {
		attacker := e.browser()
		cb := e.ssoLogin(attacker, e.ssoStart(attacker, ""), "ada", pw)
		victim := e.browser()
		refused(t, victim.get(cb.RequestURI()), http.StatusForbidden, "did not start in this browser")
		// the victim started a sign-in of their own: the attacker's code
		// and state still do not fit it
		e.ssoStart(victim, "")
		refused(t, victim.get(cb.RequestURI()), http.StatusForbidden, "did not start in this browser")
	})
	t.Run("replayed callback", func(t *testing.T) {
		b := e.browser()
		cb := e.ssoLogin(b, e.ssoStart(b, ""), "ada", pw)
		continueTo(t, b.get(cb.RequestURI()))
		refused(t, b.get(cb.RequestURI()), http.StatusForbidden, "did not start in this browser")
	})
	t.Run("tampered flow cookie", func(t *testing.T) {
		b := e.browser()
		cb := e.ssoLogin(b, e.ssoStart(b, ""), "ada", pw)
		u := mustURL(t, e.srv.URL+Prefix+"/oidc/")
		for _, c := range b.c.Jar.Cookies(u) {
			if c.Name == cookieOIDC {
				c.Value = c.Value[:len(c.Value)-2] + "AA"
				c.Path = Prefix + "/oidc"
				b.c.Jar.SetCookies(u, []*http.Cookie{c})
			}
		}
		refused(t, b.get(cb.RequestURI()), http.StatusForbidden, "did not start in this browser")
	})
	t.Run("IdP error", func(t *testing.T) {
		b := e.browser()
		cb := e.ssoLogin(b, e.ssoStart(b, ""), "ada", pw)
		q := url.Values{"state": {cb.Query().Get("state")}, "error": {"access_denied"}}
		refused(t, b.get(Prefix+"/oidc/callback?"+q.Encode()), http.StatusForbidden, "refused the sign-in (access_denied)")
	})
	t.Run("IdP error text is not echoed", func(t *testing.T) {
		b := e.browser()
		cb := e.ssoLogin(b, e.ssoStart(b, ""), "ada", pw)
		q := url.Values{"state": {cb.Query().Get("state")}, "error": {"<b>call 555</b>"}}
		p := b.get(Prefix + "/oidc/callback?" + q.Encode())
		refused(t, p, http.StatusForbidden, "(unknown error)")
		if strings.Contains(p.body, "555") {
			t.Error("the IdP's error text reached the page")
		}
	})
}

// TestOIDCPKCE: the code the OP returns is worth nothing without this
// sign-in's PKCE verifier, which only the flow cookie holds; a flow
// without a verifier does not open.
func TestOIDCPKCE(t *testing.T) {
	e := newOIDCEnv(t, 0)
	pw := e.idp.addUser("ada", "ada@example.com", "lk-admins")
	o := e.con.OIDC
	for _, tc := range []struct {
		name string
		opts []oauth2.AuthCodeOption
	}{
		{"no verifier", nil},
		{"another verifier", []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.GenerateVerifier())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			cb := e.ssoLogin(b, e.ssoStart(b, ""), "ada", pw)
			if _, err := o.oauth.Exchange(o.ctx(t.Context()), cb.Query().Get("code"), tc.opts...); err == nil {
				t.Fatal("the OP redeemed the code without the right PKCE verifier")
			}
		})
	}
	t.Run("flow without a verifier", func(t *testing.T) {
		sealed, err := o.seal(cookieOIDC, flowState{State: "s", Nonce: "n", Expires: time.Now().Add(time.Minute).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := o.open(cookieOIDC, sealed, time.Now()); err == nil {
			t.Fatal("a flow without a PKCE verifier opened")
		}
	})
	t.Run("expired flow", func(t *testing.T) {
		sealed, err := o.seal(cookieOIDC, flowState{State: "s", Nonce: "n", Verifier: "v", Expires: time.Now().Add(time.Minute).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := o.open(cookieOIDC, sealed, time.Now()); err != nil {
			t.Fatalf("a fresh flow did not open: %v", err)
		}
		if _, err := o.open(cookieOIDC, sealed, time.Now().Add(time.Minute)); err == nil {
			t.Fatal("an expired flow opened")
		}
		if _, err := o.open(cookieOIDCSecure, sealed, time.Now()); err == nil {
			t.Fatal("a flow sealed for one cookie opened as another")
		}
	})
}

// TestOIDCRevalidation: the IdP is asked again once the revalidation
// interval has passed, not before; a removed person, or one whose groups
// no longer map, loses the session at that bound; a changed group changes
// the role.
func TestOIDCRevalidation(t *testing.T) {
	const bound = 5 * time.Minute
	cases := []struct {
		name   string
		change func(o *testOP)
		role   latchkey.Role // after the bound; "" = session ended
	}{
		{"unchanged", func(*testOP) {}, latchkey.RoleAdmin},
		{"removed from the IdP", func(o *testOP) { o.removeUser("ada") }, ""},
		{"removed from the group", func(o *testOP) { o.setGroups("ada", "sales") }, ""},
		{"moved to the viewers", func(o *testOP) { o.setGroups("ada", "lk-viewers") }, latchkey.RoleViewer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newOIDCEnv(t, bound)
			pw := e.idp.addUser("ada", "ada@example.com", "lk-admins")
			b := e.browser()
			continueTo(t, e.sso(b, "", "ada", pw))
			tc.change(e.idp)
			e.clock.Advance(bound - time.Second)
			if p := b.get("/console/applications"); p.status != http.StatusOK || !strings.Contains(p.body, "admin · ") {
				t.Fatalf("before the bound: status %d, want the admin's page", p.status)
			}
			e.clock.Advance(time.Second)
			p := b.get("/console/applications")
			if tc.role == "" {
				if p.status != http.StatusSeeOther || !strings.Contains(p.location(), "m=idp") {
					t.Fatalf("at the bound: status %d at %q, want the sign-in page with m=idp", p.status, p.location())
				}
				if p := b.get("/console/signin?m=idp"); !strings.Contains(p.body, "identity provider no longer confirms") {
					t.Errorf("no notice on the sign-in page:\n%s", p.body)
				}
				return
			}
			if p.status != http.StatusOK || !strings.Contains(p.body, string(tc.role)+" · ") {
				t.Fatalf("at the bound: status %d, want role %s", p.status, tc.role)
			}
		})
	}
}

// TestOIDCKeySigninOff: with key sign-in turned off the form is gone and
// a posted key is refused, while SSO works.
func TestOIDCKeySigninOff(t *testing.T) {
	o := newTestOP(t)
	e := newEnvWith(t, func(c *Console, u string) { c.OIDC, c.DisableKeySignin = o.oidcFor(u, 0), true })
	oe := &oidcEnv{env: e, idp: o}
	b := e.browser()
	p := b.get("/console/signin")
	if strings.Contains(p.body, "secret_access_key") || !strings.Contains(p.body, `id="sso"`) {
		t.Fatalf("sign-in page with key sign-in off:\n%s", p.body)
	}
	got := b.post("/console/signin", url.Values{"access_key_id": {e.opID}, "secret_access_key": {e.opSecret}})
	if got.status != http.StatusForbidden || hasSessionCookie(got) {
		t.Fatalf("key sign-in when off: status %d", got.status)
	}
	pw := o.addUser("ada", "ada@example.com", "lk-admins")
	continueTo(t, oe.sso(b, "", "ada", pw))
}

// fakeIssuer serves discovery and a JWKS for a key the test holds, so
// that it can sign ID tokens with any claims.
type fakeIssuer struct {
	srv *httptest.Server
	key *rsa.PrivateKey
}

func newFakeIssuer(t *testing.T) *fakeIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeIssuer{key: key}
	mux := http.NewServeMux()
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": f.srv.URL, "authorization_endpoint": f.srv.URL + "/auth",
			"token_endpoint": f.srv.URL + "/token", "jwks_uri": f.srv.URL + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	return f
}

func (f *fakeIssuer) sign(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	obj, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestOIDCVerifyIDToken: an ID token is accepted only with the provider's
// signature, its issuer, this client as audience, a time before expiry
// and this sign-in's nonce.
func TestOIDCVerifyIDToken(t *testing.T) {
	f := newFakeIssuer(t)
	rm, err := ParseRoleMap([]byte(testRoleMap))
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOIDC(t.Context(), OIDCConfig{Issuer: f.srv.URL, ClientID: "latchkey", RedirectURL: "https://lk.example/console/oidc/callback", RoleMap: rm})
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := func() map[string]any {
		return map[string]any{"iss": f.srv.URL, "aud": "latchkey", "sub": "ada", "nonce": "n-1", "email": "ada@example.com",
			"email_verified": true, "groups": []string{"lk-admins"}, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	}
	cases := []struct {
		name   string
		edit   func(c map[string]any)
		key    *rsa.PrivateKey
		nonce  string
		wantOK bool
	}{
		{name: "valid", edit: func(map[string]any) {}, wantOK: true},
		{name: "nonce mismatch", edit: func(c map[string]any) { c["nonce"] = "n-2" }},
		{name: "no nonce", edit: func(c map[string]any) { delete(c, "nonce") }},
		{name: "wrong audience", edit: func(c map[string]any) { c["aud"] = "another-client" }},
		{name: "audience list without us", edit: func(c map[string]any) { c["aud"] = []string{"a", "b"} }},
		{name: "wrong issuer", edit: func(c map[string]any) { c["iss"] = "https://evil.example" }},
		{name: "expired", edit: func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() }},
		{name: "signed with another key", edit: func(map[string]any) {}, key: other},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.edit(c)
			key := tc.key
			if key == nil {
				key = f.key
			}
			tok := (&oauth2.Token{}).WithExtra(map[string]any{"id_token": f.sign(t, key, c)})
			id, claims, err := o.verify(t.Context(), tok, "n-1")
			if tc.wantOK {
				if err != nil || id.Subject != "ada" || claims["email"] != "ada@example.com" {
					t.Fatalf("valid token refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
		})
	}
	t.Run("unsigned (alg none)", func(t *testing.T) {
		b, _ := json.Marshal(good())
		raw := "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(b) + "."
		if _, _, err := o.verify(t.Context(), (&oauth2.Token{}).WithExtra(map[string]any{"id_token": raw}), "n-1"); err == nil {
			t.Fatal("accepted an unsigned token")
		}
	})
	t.Run("no ID token", func(t *testing.T) {
		if _, _, err := o.verify(t.Context(), &oauth2.Token{AccessToken: "x"}, "n-1"); err == nil {
			t.Fatal("accepted a token response without an ID token")
		}
	})
}
