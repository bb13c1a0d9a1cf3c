package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
)

// TestAuthorizationMatrixConsumers is the OIDC authorization matrix with
// the consumer column: each person signs in where the role map lets them
// (the console for operator, admin and viewer; the portal for consumers)
// and then tries every surface. A consumer never reaches the console or
// the management API, nor another organisation's (or nobody's)
// application, which answers as an unknown one; console people never reach
// the portal. Outcomes of the writes are read back from the store.
func TestAuthorizationMatrixConsumers(t *testing.T) {
	e := newPortalEnv(t, 0)
	api := &httpapi.Server{Service: e.svc, Verifier: e.ver, Mount: func(m *http.ServeMux) { e.con.Mount(m); e.portal.Mount(m) }}
	apiSrv := httptest.NewServer(api.Handler())
	t.Cleanup(apiSrv.Close)
	const (
		ok      = http.StatusOK
		none    = http.StatusNotFound
		signin  = http.StatusSeeOther // sent to that surface's sign-in page
		refused = http.StatusUnauthorized
	)
	gk, ik, hk := e.globex.ID, e.initech.ID, e.house.ID
	people := []struct {
		name, group string
		consumer    bool
		// console page, portal page, globex's/initech's/house key in the portal, the API
		console, portal, globex, initech, house, api int
		// may deactivate globex's key through the portal
		writeGlobex bool
	}{
		{"operator", "lk-ops", false, ok, signin, signin, signin, signin, refused, false},
		{"admin", "lk-admins", false, ok, signin, signin, signin, signin, refused, false},
		{"viewer", "lk-viewers", false, ok, signin, signin, signin, signin, refused, false},
		{"consumer-globex", "globex-devs", true, signin, ok, ok, none, none, refused, true},
		{"consumer-initech", "initech-devs", true, signin, ok, none, ok, none, refused, false},
	}
	for _, p := range people {
		t.Run(p.name, func(t *testing.T) {
			pw := e.idp.addUser(p.name, p.name+"@example.com", p.group)
			b := e.browser()
			if p.consumer {
				continueTo(t, e.portalSSO(b, "", p.name, pw))
			} else {
				continueTo(t, e.sso(b, "", p.name, pw))
			}
			for _, c := range []struct {
				path string
				want int
			}{
				{"/console/applications", p.console},
				{"/console/keys/" + gk, p.console},
				{"/portal/applications", p.portal},
				{"/portal/keys/" + gk, p.globex},
				{"/portal/keys/" + gk + "/rotate", p.globex},
				{"/portal/applications/globex-app", p.globex},
				{"/portal/keys/" + ik, p.initech},
				{"/portal/applications/initech-app", p.initech},
				{"/portal/keys/" + hk, p.house},
				{"/portal/applications/house", p.house},
			} {
				if got := b.get(c.path); got.status != c.want {
					t.Errorf("GET %s: %d, want %d", c.path, got.status, c.want)
				}
			}
			// every cookie the browser holds, sent to the management API
			for _, path := range []string{"/v1/applications", "/v1/access-keys/" + gk, "/v1/accounts"} {
				req, _ := http.NewRequest("GET", apiSrv.URL+path, nil)
				for _, u := range []string{"/console/", "/portal/"} {
					for _, ck := range b.c.Jar.Cookies(mustURL(t, e.srv.URL+u)) {
						req.AddCookie(ck)
					}
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != p.api {
					t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, p.api)
				}
			}
			// deactivate globex's key through the portal, then put it back
			tok := ""
			if p.portal == ok {
				tok = b.token("/portal/applications")
			}
			b.post("/portal/keys/"+gk+"/status", url.Values{"csrf": {tok}, "status": {"Inactive"}})
			changed := e.get(gk).Status == latchkey.StatusInactive
			if changed != p.writeGlobex {
				t.Errorf("deactivated globex's key through the portal: %v, want %v", changed, p.writeGlobex)
			}
			if changed {
				if _, err := e.svc.UpdateAccessKey(context.Background(), e.op, gk, latchkey.AccessKeyUpdate{Status: new(latchkey.StatusActive)}); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
