package console

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
)

func TestSignInFailures(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.app("web") // an application key must not sign in
	inactive, err := e.svc.CreatePrincipalKey(ctx, e.op, "default", "admin", "old laptop")
	if err != nil {
		t.Fatal(err)
	}
	st := latchkey.StatusInactive
	if _, err := e.svc.UpdateAccessKey(ctx, e.op, inactive.ID, latchkey.AccessKeyUpdate{Status: &st}); err != nil {
		t.Fatal(err)
	}
	ver, err := e.svc.CreatePrincipal(ctx, e.op, "default", "gateway", latchkey.RoleVerifier)
	if err != nil {
		t.Fatal(err)
	}
	other, err := e.svc.CreatePrincipal(ctx, e.op, "default", "auditor", latchkey.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	// a real secret with one character changed: the checksum catches it
	typo := e.opSecret[:10] + string(e.opSecret[10]^1) + e.opSecret[11:]

	tests := []struct {
		name       string
		id, secret string
		status     int
		msg        string
	}{
		{"empty", "", "", http.StatusBadRequest, msgSigninEmpty},
		{"no secret", e.opID, "", http.StatusBadRequest, msgSigninEmpty},
		{"bad ID", "AKIA1234", e.opSecret, http.StatusBadRequest, msgSigninBadID},
		{"typo in secret", e.opID, typo, http.StatusBadRequest, msgSigninMalformed},
		{"another key's ID", other.AccessKey.ID, e.opSecret, http.StatusUnauthorized, msgSigninNoMatch},
		{"unknown secret", e.opID, mustSecret(t), http.StatusUnauthorized, msgSigninNoMatch},
		{"application key", app.ID, app.Secret, http.StatusUnauthorized, msgSigninNoMatch},
		{"inactive admin key", inactive.ID, inactive.Secret, http.StatusUnauthorized, msgSigninInactive},
		{"verifier", ver.AccessKey.ID, ver.AccessKey.Secret, http.StatusForbidden, msgSigninVerifier},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := e.browser()
			p := b.signIn(tt.id, tt.secret)
			if p.status != tt.status {
				t.Errorf("status %d, want %d", p.status, tt.status)
			}
			if !strings.Contains(p.body, htmlEscape(tt.msg)) {
				t.Errorf("page does not say %q:\n%s", tt.msg, p.body)
			}
			if tt.secret != "" && strings.Contains(p.body, tt.secret) {
				t.Error("the sign-in page echoes the secret")
			}
			if tt.id != "" && !strings.Contains(p.body, `value="`+tt.id+`"`) {
				t.Error("the sign-in page forgot the access key ID")
			}
			for _, c := range p.header.Values("Set-Cookie") {
				if strings.HasPrefix(c, cookieSession+"=") {
					t.Errorf("a failed sign-in set a session cookie: %s", c)
				}
			}
			if e.con.sessions.len() != 0 {
				t.Errorf("a failed sign-in made a session")
			}
		})
	}
}

func mustSecret(t *testing.T) string {
	t.Helper()
	s, err := newSecretForTest()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func htmlEscape(s string) string { return strings.ReplaceAll(s, "'", "&#39;") }

func TestSignInThrottled(t *testing.T) {
	e := newEnv(t)
	e.ver.Guard = verify.NewGuard(3, 1)
	b := e.browser()
	wrong := mustSecret(t)
	for range 3 {
		if p := b.signIn(e.opID, wrong); p.status != http.StatusUnauthorized {
			t.Fatalf("wrong secret: status %d", p.status)
		}
	}
	p := b.signIn(e.opID, e.opSecret)
	if p.status != http.StatusTooManyRequests || !strings.Contains(p.body, "Too many failed sign-ins") {
		t.Fatalf("after 3 failures the right secret got %d:\n%s", p.status, p.body)
	}
}

func TestSignInSetsSessionCookie(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.signIn(e.opID, e.opSecret)
	if p.status != http.StatusSeeOther || p.location() != "/console/applications" {
		t.Fatalf("status %d location %q", p.status, p.location())
	}
	ck := findCookie(t, p, cookieSession)
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console" || ck.Secure {
		t.Errorf("session cookie over plain HTTP: %+v; want HttpOnly, SameSite=Strict, Path=/console, not Secure", ck)
	}
	if len(ck.Value) < 43 {
		t.Errorf("session ID %q is shorter than 32 random bytes", ck.Value)
	}
	if strings.Contains(ck.Value, e.opSecret) || strings.Contains(ck.Value, e.opID) {
		t.Error("the session cookie holds the credential")
	}
	if got := b.get("/console/applications"); got.status != http.StatusOK {
		t.Fatalf("signed in, /console/applications: %d", got.status)
	}
	// The session store keeps the principal, never the secret.
	e.con.sessions.mu.Lock()
	for _, s := range e.con.sessions.m {
		if s.actor.Principal != "admin" || s.actor.AccessKeyID != e.opID {
			t.Errorf("session actor %+v", s.actor)
		}
	}
	e.con.sessions.mu.Unlock()
}

func TestSignInOverTLSUsesHostPrefixedSecureCookie(t *testing.T) {
	e := newEnv(t)
	mux := http.NewServeMux()
	e.con.Mount(mux)
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	b := e.browser()
	b.base = srv.URL
	b.c.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	p := b.signIn(e.opID, e.opSecret)
	if p.status != http.StatusSeeOther {
		t.Fatalf("status %d\n%s", p.status, p.body)
	}
	ck := findCookie(t, p, cookieSessionSecure)
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Domain != "" {
		t.Errorf("session cookie over TLS: %+v; want __Host- prefix rules: Secure, Path=/, no Domain; HttpOnly, SameSite=Strict", ck)
	}
	if got := p.header.Get("Strict-Transport-Security"); got == "" {
		t.Error("no Strict-Transport-Security over TLS")
	}
	if got := b.get("/console/keys"); got.status != http.StatusOK {
		t.Fatalf("signed in over TLS, /console/keys: %d", got.status)
	}
}

func TestSecureBehindTrustedProxy(t *testing.T) {
	c := &Console{}
	c.TrustedProxies = mustPrefixes(t, "10.0.0.0/8")
	tests := []struct {
		name, peer, proto string
		want              bool
	}{
		{"trusted proxy says https", "10.1.2.3:5000", "https", true},
		{"trusted proxy says http", "10.1.2.3:5000", "http", false},
		{"untrusted peer says https", "203.0.113.9:5000", "https", false},
		{"chain: nearest proxy decides", "10.1.2.3:5000", "http, https", true},
		{"no header", "10.1.2.3:5000", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/console/", nil)
			r.RemoteAddr = tt.peer
			if tt.proto != "" {
				r.Header.Set("X-Forwarded-Proto", tt.proto)
			}
			if got := c.secure(r); got != tt.want {
				t.Errorf("secure = %v, want %v", got, tt.want)
			}
		})
	}
}

func findCookie(t *testing.T, p page, name string) *http.Cookie {
	t.Helper()
	for _, line := range p.header.Values("Set-Cookie") {
		ck, err := http.ParseSetCookie(line)
		if err == nil && ck.Name == name {
			return ck
		}
	}
	t.Fatalf("no %s cookie in %v", name, p.header.Values("Set-Cookie"))
	return nil
}

func TestSignInRedirectsToNext(t *testing.T) {
	e := newEnv(t)
	k := e.app("web")
	b := e.browser()
	p := b.get("/console/keys/" + k.ID)
	if p.status != http.StatusSeeOther {
		t.Fatalf("signed out, a page answered %d", p.status)
	}
	loc, _ := url.Parse(p.location())
	next := loc.Query().Get("next")
	if loc.Path != "/console/signin" || next != "/console/keys/"+k.ID {
		t.Fatalf("redirected to %s", p.location())
	}
	form := url.Values{"csrf": {b.token(p.location())}, "access_key_id": {e.opID}, "secret_access_key": {e.opSecret}, "next": {next}}
	if got := b.post("/console/signin", form); got.location() != next {
		t.Fatalf("after sign-in went to %q, want %q", got.location(), next)
	}
}

func TestSafeNext(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/console/keys/LKIAAAAAAAAAAAAAAAAA", "/console/keys/LKIAAAAAAAAAAAAAAAAA"},
		{"/console/audit?application=web", "/console/audit?application=web"},
		{"", "/console/applications"},
		{"https://evil.example/", "/console/applications"},
		{"//evil.example/console/", "/console/applications"},
		{"/console//evil.example", "/console/applications"},
		{"/console/\\evil.example", "/console/applications"},
		{"/console/../v1/accounts", "/console/applications"},
		{"/v1/accounts", "/console/applications"},
		{"/console/signin?next=x", "/console/applications"},
		{"/console/x\r\nSet-Cookie: a=b", "/console/applications"},
		// a browser reads %2e%2e as .., and may read %2f or %5c as a separator
		{"/console/%2e%2e/v1/accounts", "/console/applications"},
		{"/console/%2E%2e/portal/applications", "/console/applications"},
		{"/console/.%2e/v1", "/console/applications"},
		{"/console/keys%2f..%2f..%2fv1", "/console/applications"},
		{"/console/keys%5c..", "/console/applications"},
		{"/console/..", "/console/applications"},
		{"/console/oidc/callback?code=x", "/console/applications"},
	}
	for _, tt := range tests {
		if got := safeNext(tt.in); got != tt.want {
			t.Errorf("safeNext(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSignOut(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.mustSignIn(e.opID, e.opSecret)
	old := b.c.Jar.Cookies(mustURL(t, e.srv.URL+"/console/"))
	p := b.submit("/console/applications", "/console/signout", nil)
	if p.status != http.StatusSeeOther || p.location() != "/console/signin?m=signedout" {
		t.Fatalf("sign-out: %d %q", p.status, p.location())
	}
	if ck := findCookie(t, p, cookieSession); ck.MaxAge >= 0 {
		t.Errorf("sign-out did not clear the cookie: %+v", ck)
	}
	// the old cookie, replayed, is worthless
	b2 := e.browser()
	b2.c.Jar.SetCookies(mustURL(t, e.srv.URL+"/console/"), old)
	if got := b2.get("/console/applications"); got.status != http.StatusSeeOther {
		t.Fatalf("a signed-out session still works: %d", got.status)
	}
	if got := b.get("/console/signin?m=signedout"); !strings.Contains(got.body, "You have signed out") {
		t.Error("the sign-in page does not confirm the sign-out")
	}
}

func TestSessionExpiry(t *testing.T) {
	tests := []struct {
		name  string
		steps []time.Duration // time between requests
		alive bool
	}{
		{"fresh", nil, true},
		{"idle just under the timeout", []time.Duration{DefaultIdleTimeout - time.Second}, true},
		{"idle past the timeout", []time.Duration{DefaultIdleTimeout}, false},
		{"activity keeps it alive", []time.Duration{20 * time.Minute, 20 * time.Minute, 20 * time.Minute}, true},
		{"absolute limit", repeat(20*time.Minute, int(DefaultMaxSessionAge/(20*time.Minute))), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			b := e.browser()
			b.mustSignIn(e.opID, e.opSecret)
			var p page
			for i, d := range tt.steps {
				e.clock.Advance(d)
				p = b.get("/console/applications")
				if i < len(tt.steps)-1 && p.status != http.StatusOK {
					t.Fatalf("request %d: session ended early (%d)", i, p.status)
				}
			}
			if tt.steps == nil {
				p = b.get("/console/applications")
			}
			if tt.alive {
				if p.status != http.StatusOK {
					t.Fatalf("status %d, want the page", p.status)
				}
				return
			}
			if p.status != http.StatusSeeOther || !strings.Contains(p.location(), "m=expired") {
				t.Fatalf("status %d location %q, want a redirect to sign in with m=expired", p.status, p.location())
			}
			if got := b.get(p.location()); !strings.Contains(got.body, "Your session has ended") {
				t.Error("the sign-in page does not say the session ended")
			}
			// a form posted with the expired session changes nothing
			if got := b.post("/console/applications", url.Values{"name": {"late"}, "csrf": {"x"}}); got.status != http.StatusForbidden {
				t.Errorf("POST with an expired session: %d, want 403", got.status)
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

// TestAutomaticRequestsDoNotKeepASessionAlive: a tab left open on a live
// chart (the script's updates, or a page reloading itself without scripts)
// still idles out.
func TestAutomaticRequestsDoNotKeepASessionAlive(t *testing.T) {
	e := newEnv(t)
	k := e.app("web")
	b := e.browser()
	b.mustSignIn(e.opID, e.opSecret)
	for range 2 {
		e.clock.Advance(10 * time.Minute)
		if p := b.get("/console/keys/" + k.ID + "/chart"); p.status != http.StatusOK {
			t.Fatalf("chart update: %d", p.status)
		}
		if p := b.get("/console/keys/" + k.ID + "?auto=1"); p.status != http.StatusOK {
			t.Fatalf("automatic reload: %d", p.status)
		}
	}
	e.clock.Advance(10 * time.Minute)
	if p := b.get("/console/keys/" + k.ID + "/chart"); p.status != http.StatusUnauthorized {
		t.Fatalf("chart update after 30 idle minutes: %d, want 401", p.status)
	}
	if p := b.get("/console/keys/" + k.ID); p.status != http.StatusSeeOther {
		t.Fatalf("page after 30 idle minutes: %d, want a redirect to sign in", p.status)
	}
}

func TestSessionEndsWhenAdminKeyIsDeactivated(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	second, err := e.svc.CreatePrincipalKey(ctx, e.op, "default", "admin", "laptop")
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustSignIn(second.ID, second.Secret)
	st := latchkey.StatusInactive
	if _, err := e.svc.UpdateAccessKey(ctx, e.op, second.ID, latchkey.AccessKeyUpdate{Status: &st}); err != nil {
		t.Fatal(err)
	}
	p := b.get("/console/applications")
	if p.status != http.StatusSeeOther || !strings.Contains(p.location(), "m=revoked") {
		t.Fatalf("after the admin key was deactivated: %d %q", p.status, p.location())
	}
	if e.con.sessions.len() != 0 {
		t.Error("the session was not removed")
	}
}

func TestSessionStoreBounded(t *testing.T) {
	st := newSessionStore()
	now := time.Now()
	for i := range MaxSessions + 5 {
		if _, err := st.create(latchkey.Actor{Principal: "p"}, now.Add(time.Duration(i)*time.Millisecond), time.Hour, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.len(); n != MaxSessions {
		t.Fatalf("%d sessions, want at most %d", n, MaxSessions)
	}
}

func TestSignInFormNeedsItsToken(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	form := url.Values{"access_key_id": {e.opID}, "secret_access_key": {e.opSecret}}
	if p := b.post("/console/signin", form); p.status != http.StatusForbidden || !strings.Contains(p.body, "came from another site") {
		t.Fatalf("sign-in without the form's token: %d", p.status)
	}
	form.Set("csrf", b.token("/console/signin"))
	b.header.Set("Sec-Fetch-Site", "cross-site")
	if p := b.post("/console/signin", form); p.status != http.StatusForbidden {
		t.Fatalf("cross-site sign-in: %d, want 403", p.status)
	}
	if e.con.sessions.len() != 0 {
		t.Fatal("a refused sign-in made a session")
	}
}
