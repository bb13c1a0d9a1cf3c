package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

// TestOIDCBackchannelLogout: a logout token signed by the provider, for
// this client, recent, with the logout event and no nonce ends the named
// person's sessions (by sub) or the named IdP session (by sid) at once,
// and no other; anything else is a 400 that ends nothing.
func TestOIDCBackchannelLogout(t *testing.T) {
	f := newFakeIssuer(t)
	rm, err := ParseRoleMap([]byte(testRoleMap))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, func(c *Console, u string) {
		o, err := NewOIDC(t.Context(), OIDCConfig{Issuer: f.srv.URL, ClientID: "latchkey", RedirectURL: u + "/console/oidc/callback", RoleMap: rm})
		if err != nil {
			t.Fatal(err)
		}
		c.OIDC = o
	})
	now := time.Now()
	event := map[string]any{backchannelLogoutEvent: map[string]any{}}
	token := func() map[string]any {
		return map[string]any{"iss": f.srv.URL, "aud": "latchkey", "sub": "ada", "iat": now.Unix(), "jti": "j1", "events": event}
	}
	cases := []struct {
		name   string
		edit   func(c map[string]any)
		status int
		ended  []string // sessions ended, by label
	}{
		{"by subject", func(map[string]any) {}, http.StatusOK, []string{"ada-1", "ada-2"}},
		{"by sid", func(c map[string]any) { delete(c, "sub"); c["sid"] = "s2" }, http.StatusOK, []string{"ada-2"}},
		{"unknown subject", func(c map[string]any) { c["sub"] = "zed" }, http.StatusOK, nil},
		{"another audience", func(c map[string]any) { c["aud"] = "another-client" }, http.StatusBadRequest, nil},
		{"another issuer", func(c map[string]any) { c["iss"] = "https://evil.example" }, http.StatusBadRequest, nil},
		{"no logout event", func(c map[string]any) { c["events"] = map[string]any{"urn:other": map[string]any{}} }, http.StatusBadRequest, nil},
		{"with a nonce (an ID token)", func(c map[string]any) { c["nonce"] = "n" }, http.StatusBadRequest, nil},
		{"neither sub nor sid", func(c map[string]any) { delete(c, "sub") }, http.StatusBadRequest, nil},
		{"old", func(c map[string]any) { c["iat"] = now.Add(-time.Hour).Unix() }, http.StatusBadRequest, nil},
		{"no iat", func(c map[string]any) { delete(c, "iat") }, http.StatusBadRequest, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ids := map[string]string{}
			for _, s := range []struct{ label, sub, sid string }{{"ada-1", "ada", "s1"}, {"ada-2", "ada", "s2"}, {"bob", "bob", "s3"}} {
				p := &person{Subject: s.sub, Email: s.sub + "@example.com", SID: s.sid, grant: grant{Account: latchkey.DefaultAccount, Role: latchkey.RoleAdmin}}
				id, err := e.con.sessions.createPerson(latchkey.Actor{Principal: p.actorName(), Account: latchkey.DefaultAccount, Role: latchkey.RoleAdmin},
					p, e.clock.Now(), time.Hour, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				ids[s.label] = id
			}
			c := token()
			tc.edit(c)
			resp, err := http.PostForm(e.srv.URL+"/console/oidc/backchannel-logout", url.Values{"logout_token": {f.sign(t, f.key, c)}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			for label, id := range ids {
				_, live, _ := e.con.sessions.get(id, e.clock.Now(), time.Hour, time.Hour, false)
				wantEnded := strings.Contains(strings.Join(tc.ended, " "), label)
				if live == wantEnded {
					t.Errorf("session %s live=%v, want ended=%v", label, live, wantEnded)
				}
				e.con.sessions.delete(id)
			}
		})
	}
	t.Run("unsigned", func(t *testing.T) {
		resp, err := http.PostForm(e.srv.URL+"/console/oidc/backchannel-logout", url.Values{"logout_token": {"eyJhbGciOiJub25lIn0.e30."}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})
}
