package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
)

// TestOIDCPersonMatrix: a person signed in through OIDC can do what the
// role map's role allows in the account it names, and nothing else: the
// same rules as a principal with that role (operator, admin, viewer, and
// an admin of another account, for whom the default account's objects do
// not exist). Outcomes are read back from the store, not from the page.
func TestOIDCPersonMatrix(t *testing.T) {
	o := newTestOP(t)
	e := newEnvWith(t, func(c *Console, u string) {
		c.OIDC = o.oidcWith(u, 0, testRoleMap+"  - values: [other-admins]\n    account: other\n    role: admin\n")
	})
	oe := &oidcEnv{env: e, idp: o}
	ctx := context.Background()
	if _, err := e.svc.CreateAccount(ctx, e.op, "other", latchkey.AccountUpdate{}); err != nil {
		t.Fatal(err)
	}
	k := e.app("shop")
	people := []struct {
		name, group string
		// what the person may do to the default account's objects
		read, write bool
	}{
		{"operator", "lk-ops", true, true},
		{"admin", "lk-admins", true, true},
		{"viewer", "lk-viewers", true, false},
		{"other-admin", "other-admins", false, false},
	}
	for _, p := range people {
		t.Run(p.name, func(t *testing.T) {
			pw := o.addUser(p.name, p.name+"@example.com", p.group)
			b := e.browser()
			continueTo(t, oe.sso(b, "", p.name, pw))

			want := http.StatusNotFound
			if p.read {
				want = http.StatusOK
			}
			for _, path := range []string{"/console/applications/shop", "/console/keys/" + k.ID, "/console/keys/" + k.ID + "/rotate"} {
				if got := b.get(path); got.status != want {
					t.Errorf("GET %s: %d, want %d", path, got.status, want)
				}
			}
			audit := b.get("/console/audit")
			if seen := strings.Contains(audit.body, k.ID); seen != p.read {
				t.Errorf("audit log shows the default account's key: %v, want %v", seen, p.read)
			}

			// Deactivate the key, then put it back as it was.
			b.submit("/console/applications", "/console/keys/"+k.ID+"/status", url.Values{"status": {"Inactive"}})
			changed := e.get(k.ID).Status == latchkey.StatusInactive
			if changed != p.write {
				t.Errorf("deactivated the default account's key: %v, want %v", changed, p.write)
			}
			if changed {
				if _, err := e.svc.UpdateAccessKey(ctx, e.op, k.ID, latchkey.AccessKeyUpdate{Status: new(latchkey.StatusActive)}); err != nil {
					t.Fatal(err)
				}
			}

			// Register an application in the account the person looks at.
			name := "made-by-" + p.name
			b.submit("/console/applications", "/console/applications", url.Values{"name": {name}})
			account := latchkey.DefaultAccount
			if p.name == "other-admin" {
				account = "other"
			}
			_, err := e.svc.GetApplication(ctx, e.op, account, name)
			if made := err == nil; made != (p.name != "viewer") {
				t.Errorf("registered %s in %s: %v (%v)", name, account, made, err)
			}
		})
	}
}

// TestOIDCSessionIsNotAnAPICredential: the console's session cookie of a
// person (an operator, even) opens nothing in the management API, which
// takes access keys only.
func TestOIDCSessionIsNotAnAPICredential(t *testing.T) {
	o := newTestOP(t)
	e := newEnvWith(t, func(c *Console, u string) { c.OIDC = o.oidcFor(u, 0) })
	api := &httpapi.Server{Service: e.svc, Verifier: e.ver, Mount: e.con.Mount}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	oe := &oidcEnv{env: e, idp: o}
	b := e.browser()
	continueTo(t, oe.sso(b, "", "olga", o.addUser("olga", "olga@example.com", "lk-ops")))
	var cookie *http.Cookie
	for _, c := range b.c.Jar.Cookies(mustURL(t, e.srv.URL+"/console/")) {
		if c.Name == cookieSession {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatal("no session cookie after SSO")
	}
	for _, path := range []string{"/v1/applications", "/v1/accounts", "/v1/audit-events"} {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.AddCookie(cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s with a person's console session: %d, want 401", path, resp.StatusCode)
		}
	}
}
