package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/manage"
)

// portalRoleMap is testRoleMap with consumer rules: group globex-devs
// manages the applications owned by globex in the default account,
// initech-devs those owned by initech.
const portalRoleMap = testRoleMap + `
  - values: [globex-devs]
    account: default
    role: consumer
    owner: globex
  - values: [initech-devs]
    account: default
    role: consumer
    owner: initech
`

// portalEnv is a console and portal with SSO through a test OP, and three
// applications: globex-app (owner globex), initech-app (owner initech)
// and house (no owner), each with one key.
type portalEnv struct {
	*oidcEnv
	globex, initech, house *manage.CreatedKey
}

func newPortalEnv(t *testing.T, revalidate time.Duration) *portalEnv {
	t.Helper()
	o := newTestOP(t)
	e := newEnvWith(t, func(c *Console, u string) { c.OIDC = o.oidcWith(u, revalidate, portalRoleMap) })
	pe := &portalEnv{oidcEnv: &oidcEnv{env: e, idp: o}}
	pe.globex = pe.ownedApp("globex-app", "globex")
	pe.initech = pe.ownedApp("initech-app", "initech")
	pe.house = e.app("house")
	return pe
}

func (e *portalEnv) ownedApp(name, owner string) *manage.CreatedKey {
	e.t.Helper()
	if _, err := e.svc.CreateOwnedApplication(context.Background(), e.op, latchkey.DefaultAccount, name, "", owner, nil); err != nil {
		e.t.Fatal(err)
	}
	return e.key(name)
}

// portalSSO signs b in to the portal through the OP and returns the
// callback's page.
func (e *portalEnv) portalSSO(b *browser, next, user, password string) page {
	e.t.Helper()
	p := b.get(PortalPrefix + "/oidc/login?next=" + url.QueryEscape(next))
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), e.idp.issuer) {
		e.t.Fatalf("portal SSO start: status %d, location %q", p.status, p.location())
	}
	id := formValue(e.t, opLoginIDRE, e.opGet(b, p.location()))
	cb := e.ssoLogin(b, id, user, password)
	if cb.Path != PortalPrefix+"/oidc/callback" {
		e.t.Fatalf("the OP sent the browser back to %s", cb.Path)
	}
	return b.get(cb.RequestURI())
}

// consumer signs a new person of group in to the portal and returns their
// browser.
func (e *portalEnv) consumer(name, group string) *browser {
	e.t.Helper()
	b := e.browser()
	next := continueTo(e.t, e.portalSSO(b, "", name, e.idp.addUser(name, name+"@example.com", group)))
	if next != PortalPrefix+"/applications" {
		e.t.Fatalf("after portal sign-in: continue to %q", next)
	}
	return b
}

// TestPortalConsumerSeesOnlyTheirOrganisation: the applications page lists
// the organisation's applications and keys only, and every page, fragment
// and form of another organisation's (or nobody's) application or key
// answers exactly as an unknown one, changing nothing.
func TestPortalConsumerSeesOnlyTheirOrganisation(t *testing.T) {
	e := newPortalEnv(t, 0)
	b := e.consumer("gina", "globex-devs")

	apps := b.get("/portal/applications")
	if apps.status != http.StatusOK || !strings.Contains(apps.body, e.globex.ID) || !strings.Contains(apps.body, `data-application="globex-app"`) {
		t.Fatalf("applications page: %d, globex's key missing:\n%s", apps.status, apps.body)
	}
	for _, hidden := range []string{e.initech.ID, e.house.ID, "initech-app", "house"} {
		if strings.Contains(apps.body, hidden) {
			t.Errorf("the applications page shows %s", hidden)
		}
	}
	if !strings.Contains(apps.body, "gina@example.com") {
		t.Error("the page does not name the signed-in person")
	}

	unknownKey := "LKIA" + strings.Repeat("A", 16)
	unknown := b.get("/portal/keys/" + unknownKey)
	if unknown.status != http.StatusNotFound {
		t.Fatalf("unknown key: %d", unknown.status)
	}
	msg := regexp.MustCompile(`role="alert">([^<]*)<`)
	shape := func(body, id string) string {
		m := msg.FindStringSubmatch(body)
		if m == nil {
			return ""
		}
		return strings.ReplaceAll(m[1], id, "ID")
	}
	want := shape(unknown.body, unknownKey)
	if want == "" {
		t.Fatalf("no message on the unknown key's page:\n%s", unknown.body)
	}
	csrf := b.token("/portal/applications")
	for _, k := range []*manage.CreatedKey{e.initech, e.house} {
		for _, path := range []string{"/portal/keys/" + k.ID, "/portal/keys/" + k.ID + "/rotate", "/portal/keys/" + k.ID + "/chart"} {
			got := b.get(path)
			if got.status != http.StatusNotFound {
				t.Errorf("GET %s: %d, want 404", path, got.status)
			}
			if !strings.HasSuffix(path, "/chart") && shape(got.body, k.ID) != want {
				t.Errorf("GET %s answers %q, an unknown key %q", path, shape(got.body, k.ID), want)
			}
		}
		for _, form := range []struct {
			path string
			v    url.Values
		}{
			{"/portal/keys/" + k.ID + "/status", url.Values{"status": {"Inactive"}}},
			{"/portal/keys/" + k.ID + "/delete", url.Values{"confirm": {k.ID}}},
		} {
			form.v.Set("csrf", csrf)
			if got := b.post(form.path, form.v); got.status != http.StatusNotFound || shape(got.body, k.ID) != want {
				t.Errorf("POST %s: %d %q, want 404 %q", form.path, got.status, shape(got.body, k.ID), want)
			}
		}
		if st := e.get(k.ID).Status; st != latchkey.StatusActive {
			t.Errorf("%s is %s after another organisation's forms", k.ID, st)
		}
	}
	unknownApp := b.get("/portal/applications/no-such-app")
	for _, name := range []string{"initech-app", "house"} {
		got := b.get("/portal/applications/" + name)
		if got.status != http.StatusNotFound || shape(got.body, name) != shape(unknownApp.body, "no-such-app") {
			t.Errorf("GET application %s: %d %q, want as unknown %q", name, got.status, shape(got.body, name), shape(unknownApp.body, "no-such-app"))
		}
		got = b.post("/portal/applications/"+name+"/keys", url.Values{"csrf": {csrf}, "once": {"x"}, "description": {"mine now"}})
		if got.status != http.StatusNotFound {
			t.Errorf("POST a key to %s: %d, want 404", name, got.status)
		}
	}
	for _, name := range []string{"initech-app", "house"} {
		keys, _, err := e.svc.ListAccessKeys(context.Background(), e.op, latchkey.AccessKeyFilter{Account: latchkey.DefaultAccount, Application: name, Limit: 10})
		if err != nil || len(keys) != 1 {
			t.Errorf("%s has %d keys (%v), want its 1", name, len(keys), err)
		}
	}

	// the other organisation sees its own application, and nothing of globex's
	other := e.consumer("ivan", "initech-devs")
	page := other.get("/portal/applications")
	if !strings.Contains(page.body, e.initech.ID) || strings.Contains(page.body, e.globex.ID) || strings.Contains(page.body, "globex") {
		t.Errorf("initech's applications page:\n%s", page.body)
	}
	if got := other.get("/portal/keys/" + e.globex.ID); got.status != http.StatusNotFound {
		t.Errorf("initech opens globex's key: %d", got.status)
	}
}

// TestPortalKeyLifecycle: a consumer creates a key (secret shown once,
// not stored by the browser), deactivates, reactivates and deletes keys of
// their application; each change is audited with the person and the
// organisation. A created key carries the application's restrictions.
func TestPortalKeyLifecycle(t *testing.T) {
	e := newPortalEnv(t, 0)
	ctx := context.Background()
	rs := &latchkey.Restrictions{AllowedIPs: []string{"203.0.113.0/24"}}
	if _, err := e.svc.UpdateApplication(ctx, e.op, latchkey.DefaultAccount, "globex-app", nil, rs); err != nil {
		t.Fatal(err)
	}
	b := e.consumer("gina", "globex-devs")
	app := b.get("/portal/applications/globex-app")
	if app.status != http.StatusOK || !strings.Contains(app.body, "restricted by the API provider: 1 IP range") {
		t.Fatalf("application page: %d\n%s", app.status, app.body)
	}
	if strings.Contains(app.body, `name="canary"`) || strings.Contains(app.body, `name="public_key"`) || strings.Contains(app.body, "/restrictions") {
		t.Error("the portal offers canaries, signing keys or restriction editing")
	}
	once := formValue(t, onceRE, app.body)
	form := url.Values{"csrf": {formValue(t, csrfRE, app.body)}, "once": {once}, "description": {"from the portal"},
		"allowed_ips": {"0.0.0.0/0"}, "canary": {"on"}}
	created := b.post("/portal/applications/globex-app/keys", form)
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d\n%s", created.status, created.body)
	}
	if cc := created.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("created page Cache-Control %q", cc)
	}
	secret := regexp.MustCompile(`id="new-secret"[^>]*>([^<]+)<`).FindStringSubmatch(created.body)
	id := regexp.MustCompile(`id="new-key-id">([^<]+)<`).FindStringSubmatch(created.body)
	if secret == nil || id == nil {
		t.Fatalf("no secret or key ID on the created page:\n%s", created.body)
	}
	k := e.get(id[1])
	if k.Application != "globex-app" || k.Canary || k.Restrictions != nil || k.Description != "from the portal" {
		t.Errorf("created key: app %s canary %v own restrictions %v description %q", k.Application, k.Canary, k.Restrictions, k.Description)
	}
	if code := e.call(secret[1], "198.51.100.7", "test"); code == latchkey.CodeValid {
		t.Error("the new key works from outside the application's allowed IPs")
	}
	if code := e.call(secret[1], "203.0.113.9", "test"); code != latchkey.CodeValid {
		t.Errorf("the new key from an allowed IP: %s", code)
	}
	// the one-time form cannot make a second key, and the secret is not shown again
	if again := b.post("/portal/applications/globex-app/keys", form); again.status != http.StatusSeeOther {
		t.Errorf("replayed create form: %d", again.status)
	}
	if kp := b.get("/portal/keys/" + k.ID); kp.status != http.StatusOK || strings.Contains(kp.body, secret[1]) {
		t.Errorf("key page: %d, shows the secret: %v", kp.status, strings.Contains(kp.body, secret[1]))
	}
	if n := len(keysOf(t, e.env, "globex-app")); n != 2 {
		t.Errorf("globex-app has %d keys, want 2", n)
	}

	// deactivate, reactivate, deactivate, delete
	for _, st := range []string{"Inactive", "Active", "Inactive"} {
		p := b.submit("/portal/keys/"+k.ID, "/portal/keys/"+k.ID+"/status", url.Values{"status": {st}})
		if p.status != http.StatusSeeOther || p.location() != "/portal/keys/"+k.ID {
			t.Fatalf("status %s: %d %q", st, p.status, p.location())
		}
		if got := e.get(k.ID).Status; string(got) != st {
			t.Fatalf("after setting %s: %s", st, got)
		}
	}
	if p := b.submit("/portal/keys/"+k.ID, "/portal/keys/"+k.ID+"/delete", url.Values{"confirm": {"wrong"}}); p.status != http.StatusSeeOther {
		t.Errorf("delete unconfirmed: %d", p.status)
	}
	if _, err := e.svc.GetAccessKey(ctx, e.op, k.ID); err != nil {
		t.Fatal("deleted without the confirmation")
	}
	// an Active key is not deleted
	if p := b.submit("/portal/keys/"+e.globex.ID, "/portal/keys/"+e.globex.ID+"/delete", url.Values{"confirm": {e.globex.ID}}); p.status != http.StatusSeeOther {
		t.Errorf("delete an Active key: %d", p.status)
	}
	if _, err := e.svc.GetAccessKey(ctx, e.op, e.globex.ID); err != nil {
		t.Error("the portal deleted an Active key")
	}
	if p := b.submit("/portal/keys/"+k.ID, "/portal/keys/"+k.ID+"/delete", url.Values{"confirm": {k.ID}}); p.status != http.StatusSeeOther || p.location() != "/portal/applications/globex-app" {
		t.Fatalf("delete: %d %q", p.status, p.location())
	}
	if _, err := e.svc.GetAccessKey(ctx, e.op, k.ID); latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
		t.Errorf("after delete: %v", err)
	}

	// every change is audited with the person and the organisation
	evs, _, err := e.svc.ListAuditEvents(ctx, e.op, latchkey.AuditFilter{Account: latchkey.DefaultAccount, AccessKeyID: k.ID, Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for _, ev := range evs {
		actions[ev.Action]++
		if !strings.HasPrefix(ev.Actor, "oidc:gina@example.com (sub gina)") || !strings.HasSuffix(ev.Actor, "consumer of globex") {
			t.Errorf("%s audited as %q", ev.Action, ev.Actor)
		}
		if strings.Contains(string(ev.After), secret[1]) || strings.Contains(string(ev.Before), secret[1]) {
			t.Error("the audit log holds the secret")
		}
	}
	if actions[latchkey.ActionAccessKeyCreate] != 1 || actions[latchkey.ActionAccessKeyUpdate] != 3 || actions[latchkey.ActionAccessKeyDelete] != 1 {
		t.Errorf("audited actions %v", actions)
	}
}

func keysOf(t *testing.T, e *env, app string) []*latchkey.AccessKey {
	t.Helper()
	keys, _, err := e.svc.ListAccessKeys(context.Background(), e.op, latchkey.AccessKeyFilter{Account: latchkey.DefaultAccount, Application: app, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestPortalRotateWizard: the console's five-step wizard works in the
// portal, with portal links only, and leaves the application with the new
// key alone.
func TestPortalRotateWizard(t *testing.T) {
	e := newPortalEnv(t, 0)
	// the provider planted a canary in the application: the consumer never
	// sees it, and it is no rotation's new key
	canary, err := e.svc.CreateAccessKey(context.Background(), e.op, latchkey.DefaultAccount, "globex-app", latchkey.NewAccessKey{Canary: true})
	if err != nil {
		t.Fatal(err)
	}
	b := e.consumer("gina", "globex-devs")
	old := e.globex.ID
	step1 := b.get("/portal/keys/" + old + "/rotate")
	if step1.status != http.StatusOK || strings.Contains(step1.body, "/console/") || strings.Contains(step1.body, canary.ID) {
		t.Fatalf("step 1: %d, console links: %v, canary: %v\n%s", step1.status, strings.Contains(step1.body, "/console/"), strings.Contains(step1.body, canary.ID), step1.body)
	}
	if p := b.get("/portal/applications"); strings.Contains(p.body, canary.ID) {
		t.Error("the applications page shows the canary")
	}
	if p := b.get("/portal/keys/" + canary.ID); p.status != http.StatusNotFound {
		t.Errorf("the canary's page: %d", p.status)
	}
	created := b.post("/portal/applications/globex-app/keys", url.Values{"csrf": {formValue(t, csrfRE, step1.body)},
		"once": {formValue(t, onceRE, step1.body)}, "rotate": {old}, "description": {"replaces " + old}})
	if created.status != http.StatusCreated {
		t.Fatalf("create in the wizard: %d\n%s", created.status, created.body)
	}
	newID := regexp.MustCompile(`id="new-key-id">([^<]+)<`).FindStringSubmatch(created.body)[1]
	if !strings.Contains(created.body, "/portal/keys/"+old+"/rotate?new="+newID+"&amp;step=2") {
		t.Errorf("the created page does not continue to step 2 in the portal:\n%s", created.body)
	}
	step3 := b.get("/portal/keys/" + old + "/rotate?step=3&new=" + newID)
	if !strings.Contains(step3.body, `action="/portal/keys/`+old+`/status"`) || !strings.Contains(step3.body, `data-refresh-url="/portal/keys/`+old+`/chart`) {
		t.Fatalf("step 3 has no portal deactivate form or chart:\n%s", step3.body)
	}
	p := b.post("/portal/keys/"+old+"/status", url.Values{"csrf": {formValue(t, csrfRE, step3.body)}, "status": {"Inactive"}, "return": {"rotate"}, "new": {newID}})
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/portal/keys/"+old+"/rotate?") || !strings.Contains(p.location(), "step=4") {
		t.Fatalf("deactivate in the wizard: %d %q", p.status, p.location())
	}
	chart := b.get("/portal/keys/" + old + "/chart?with=" + newID)
	if chart.status != http.StatusOK || !strings.Contains(chart.body, newID) {
		t.Errorf("chart fragment: %d", chart.status)
	}
	step5 := b.get("/portal/keys/" + old + "/rotate?step=5&new=" + newID)
	p = b.post("/portal/keys/"+old+"/delete", url.Values{"csrf": {formValue(t, csrfRE, step5.body)}, "confirm": {old}, "return": {"rotate"}, "new": {newID}})
	if p.status != http.StatusSeeOther || p.location() != "/portal/applications/globex-app" {
		t.Fatalf("delete in the wizard: %d %q", p.status, p.location())
	}
	var left []string
	for _, k := range keysOf(t, e.env, "globex-app") {
		left = append(left, k.ID)
	}
	if strings.Join(left, " ") != newID+" "+canary.ID && strings.Join(left, " ") != canary.ID+" "+newID {
		t.Errorf("after the rotation globex-app has %v, want the new key and the canary", left)
	}
}

// TestPortalSessionsAreSeparate: a portal session opens nothing in the
// console, nor in the management API, and a console session (an operator's
// even) opens nothing in the portal; a person the role map makes a consumer
// cannot sign in to the console, nor a console person to the portal.
func TestPortalSessionsAreSeparate(t *testing.T) {
	e := newPortalEnv(t, 0)
	api := &httpapi.Server{Service: e.svc, Verifier: e.ver, Mount: func(m *http.ServeMux) { e.con.Mount(m); e.portal.Mount(m) }}
	apiSrv := httptest.NewServer(api.Handler())
	t.Cleanup(apiSrv.Close)

	consumer := e.consumer("gina", "globex-devs")
	var portalCookie string
	for _, c := range consumer.c.Jar.Cookies(mustURL(t, e.srv.URL+"/portal/")) {
		if c.Name == cookiePortal {
			portalCookie = c.Value
		}
	}
	if portalCookie == "" {
		t.Fatal("no portal cookie")
	}
	// the portal session under the console's cookie name, and as itself
	for _, cookie := range []string{cookieSession + "=" + portalCookie, cookiePortal + "=" + portalCookie} {
		for _, path := range []string{"/console/applications", "/console/keys/" + e.globex.ID, "/console/audit"} {
			req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
			req.Header.Set("Cookie", cookie)
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/signin") {
				t.Errorf("GET %s with %s: %d %q, want the console's sign-in", path, strings.SplitN(cookie, "=", 2)[0], resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		for _, path := range []string{"/v1/applications", "/v1/accounts", "/v1/audit-events", "/v1/access-keys/" + e.globex.ID} {
			req, _ := http.NewRequest("GET", apiSrv.URL+path, nil)
			req.Header.Set("Cookie", cookie)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET %s with a portal session: %d, want 401", path, resp.StatusCode)
			}
		}
	}

	// an operator's console session opens nothing in the portal
	admin := e.browser()
	admin.mustSignIn(e.opID, e.opSecret)
	var consoleCookie string
	for _, c := range admin.c.Jar.Cookies(mustURL(t, e.srv.URL+"/console/")) {
		if c.Name == cookieSession {
			consoleCookie = c.Value
		}
	}
	for _, path := range []string{"/portal/applications", "/portal/keys/" + e.globex.ID} {
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		req.Header.Set("Cookie", cookiePortal+"="+consoleCookie+"; "+cookieSession+"="+consoleCookie)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/portal/signin") {
			t.Errorf("GET %s with a console session: %d %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	// a consumer cannot sign in to the console; an admin person not to the portal
	b := e.browser()
	pw := e.idp.addUser("carl", "carl@example.com", "globex-devs")
	if p := e.sso(b, "", "carl", pw); p.status != http.StatusForbidden || hasSessionCookie(p) {
		t.Errorf("consumer's console SSO: %d", p.status)
	}
	b = e.browser()
	pw = e.idp.addUser("ada", "ada@example.com", "lk-admins")
	if p := e.portalSSO(b, "", "ada", pw); p.status != http.StatusForbidden || !strings.Contains(p.body, msgPortalNoRole) {
		t.Errorf("admin's portal SSO: %d\n%s", p.status, p.body)
	}
}

// TestPortalLoginCSRF: the portal's callback refuses a state that is not
// the browser's flow, a flow begun in the console, and a code without its
// flow; the page after sign-in is always on /portal.
func TestPortalLoginCSRF(t *testing.T) {
	e := newPortalEnv(t, 0)
	pw := e.idp.addUser("gina", "gina@example.com", "globex-devs")

	// the attacker's own code and state, planted in the victim's browser
	attacker := e.browser()
	id := formValue(t, opLoginIDRE, e.opGet(attacker, attacker.get("/portal/oidc/login").location()))
	cb := e.ssoLogin(attacker, id, "gina", pw)
	victim := e.browser()
	if p := victim.get(cb.RequestURI()); p.status != http.StatusForbidden || strings.Contains(strings.Join(p.header.Values("Set-Cookie"), ";"), cookiePortal+"=") &&
		!strings.Contains(strings.Join(p.header.Values("Set-Cookie"), ";"), cookiePortal+"=;") {
		t.Errorf("planted callback: %d, cookies %v", p.status, p.header.Values("Set-Cookie"))
	}
	// a flow begun in the console does not finish in the portal
	b := e.browser()
	start := b.get("/console/oidc/login")
	id = formValue(t, opLoginIDRE, e.opGet(b, start.location()))
	cb = e.ssoLogin(b, id, "gina", pw)
	q := cb.Query()
	if p := b.get("/portal/oidc/callback?" + q.Encode()); p.status != http.StatusForbidden {
		t.Errorf("console flow at the portal callback: %d", p.status)
	}
	// a wrong state with the browser's own flow
	b = e.browser()
	start = b.get("/portal/oidc/login")
	id = formValue(t, opLoginIDRE, e.opGet(b, start.location()))
	cb = e.ssoLogin(b, id, "gina", pw)
	q = cb.Query()
	q.Set("state", "forged")
	if p := b.get("/portal/oidc/callback?" + q.Encode()); p.status != http.StatusForbidden {
		t.Errorf("forged state: %d", p.status)
	}

	for _, tt := range []struct{ next, want string }{
		{"", "/portal/applications"},
		{"https://evil.example/", "/portal/applications"},
		{"//evil.example/portal/", "/portal/applications"},
		{"/console/applications", "/portal/applications"},
		{"/portal/../console/", "/portal/applications"},
		{"/portal/%2e%2e/console/applications", "/portal/applications"},
		{"/portal/%2E%2E%2Fconsole/", "/portal/applications"},
		{"/portal/..%5cconsole/", "/portal/applications"},
		{"/portal/signin?next=/portal/", "/portal/applications"},
		{"/portal/applications/globex-app", "/portal/applications/globex-app"},
	} {
		b := e.browser()
		got := continueTo(t, e.portalSSO(b, tt.next, "gina", pw))
		if got != tt.want {
			t.Errorf("next %q: continue to %q, want %q", tt.next, got, tt.want)
		}
	}
}

// TestPortalFormsRefuseCSRF: a form without the session's token, or from
// another site, is refused and changes nothing.
func TestPortalFormsRefuseCSRF(t *testing.T) {
	e := newPortalEnv(t, 0)
	b := e.consumer("gina", "globex-devs")
	path := "/portal/keys/" + e.globex.ID + "/status"
	if p := b.post(path, url.Values{"status": {"Inactive"}}); p.status != http.StatusForbidden {
		t.Errorf("no token: %d", p.status)
	}
	if p := b.post(path, url.Values{"status": {"Inactive"}, "csrf": {"forged"}}); p.status != http.StatusForbidden {
		t.Errorf("forged token: %d", p.status)
	}
	tok := b.token("/portal/applications")
	b.header.Set("Sec-Fetch-Site", "cross-site")
	if p := b.post(path, url.Values{"status": {"Inactive"}, "csrf": {tok}}); p.status != http.StatusForbidden {
		t.Errorf("cross-site: %d", p.status)
	}
	b.header.Del("Sec-Fetch-Site")
	if st := e.get(e.globex.ID).Status; st != latchkey.StatusActive {
		t.Errorf("key is %s after refused forms", st)
	}
	// the console's CSRF token of an operator does not work in the portal either
	admin := e.browser()
	admin.mustSignIn(e.opID, e.opSecret)
	if p := b.post(path, url.Values{"status": {"Inactive"}, "csrf": {admin.token("/console/applications")}}); p.status != http.StatusForbidden {
		t.Errorf("console token: %d", p.status)
	}
	// headers as strict as the console's
	p := b.get("/portal/applications")
	for h, want := range map[string]string{"Content-Security-Policy": ContentSecurityPolicy, "X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
		if got := p.header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
}

// TestPortalRemovedPersonLosesAccess: a consumer removed at the IdP loses
// the portal at the first request after the revalidation interval; one
// moved to another organisation sees the new one's applications.
func TestPortalRemovedPersonLosesAccess(t *testing.T) {
	e := newPortalEnv(t, time.Minute)
	b := e.consumer("gina", "globex-devs")
	moved := e.consumer("mo", "globex-devs")
	if p := b.get("/portal/keys/" + e.globex.ID); p.status != http.StatusOK {
		t.Fatalf("before: %d", p.status)
	}
	e.idp.removeUser("gina")
	e.idp.setGroups("mo", "initech-devs")
	if p := b.get("/portal/keys/" + e.globex.ID); p.status != http.StatusOK {
		t.Errorf("within the interval: %d (the IdP is asked at most once a minute)", p.status)
	}
	e.clock.Advance(time.Minute)
	p := b.get("/portal/keys/" + e.globex.ID)
	if p.status != http.StatusSeeOther || !strings.Contains(p.location(), "m=idp") {
		t.Errorf("after the interval: %d %q, want the sign-in page", p.status, p.location())
	}
	if p := b.get("/portal/applications"); p.status != http.StatusSeeOther {
		t.Errorf("the session lives on: %d", p.status)
	}
	if p := moved.get("/portal/keys/" + e.globex.ID); p.status != http.StatusNotFound {
		t.Errorf("moved person opens the old organisation's key: %d", p.status)
	}
	if p := moved.get("/portal/applications"); !strings.Contains(p.body, e.initech.ID) || strings.Contains(p.body, e.globex.ID) {
		t.Errorf("moved person's applications:\n%s", p.body)
	}
}

// TestPortalBranding: the account's name, logo and colours appear in the
// portal; the logo's origin is the only one added to img-src, and the
// colours come from a stylesheet, not inline style.
func TestPortalBranding(t *testing.T) {
	e := newPortalEnv(t, 0)
	ctx := context.Background()
	br := &latchkey.Branding{Name: "Acme APIs", LogoURL: "https://cdn.acme.example/logo.svg", PrimaryColor: "#ffcc00", AccentColor: "#0a5fff"}
	if _, err := e.svc.UpdateAccount(ctx, e.op, latchkey.DefaultAccount, latchkey.AccountUpdate{Branding: br}); err != nil {
		t.Fatal(err)
	}
	b := e.consumer("gina", "globex-devs")
	p := b.get("/portal/applications")
	if !strings.Contains(p.body, "Acme APIs") || !strings.Contains(p.body, `src="https://cdn.acme.example/logo.svg"`) {
		t.Errorf("no branding on the page:\n%s", p.body)
	}
	csp := p.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "img-src 'self' https://cdn.acme.example;") || !strings.Contains(csp, "style-src 'self';") || !strings.Contains(csp, "script-src 'self';") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(p.body, "style=") || strings.Contains(p.body, "<style") {
		t.Error("inline style on a portal page")
	}
	css := regexp.MustCompile(`href="(/portal/brand\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(p.body)
	if css == nil {
		t.Fatal("no brand stylesheet")
	}
	sheet := b.get(strings.ReplaceAll(css[1], "&amp;", "&"))
	if !strings.HasPrefix(sheet.header.Get("Content-Type"), "text/css") || !strings.Contains(sheet.body, "background: #ffcc00; color: #000;") ||
		!strings.Contains(sheet.body, "--accent: #0a5fff; --accent-fg: #fff;") {
		t.Errorf("brand stylesheet:\n%s", sheet.body)
	}
	// without a session the stylesheet is empty
	if anon := e.browser().get("/portal/brand.css"); anon.body != "" {
		t.Errorf("anonymous brand.css: %q", anon.body)
	}
	// branding is validated
	for _, bad := range []latchkey.Branding{
		{LogoURL: "http://cdn.acme.example/logo.svg"},
		{LogoURL: "javascript:alert(1)"},
		{LogoURL: "https://user:pw@cdn.acme.example/logo.svg"},
		{LogoURL: "https://cdn.acme.example/a\"onerror=x.svg"},
		{PrimaryColor: "red"},
		{PrimaryColor: "#ff00001"},
		{AccentColor: "#ff0;}body{x:y"},
		{Name: "a\x00b"},
	} {
		_, err := e.svc.UpdateAccount(ctx, e.op, latchkey.DefaultAccount, latchkey.AccountUpdate{Branding: &bad})
		if latchkey.ErrorCode(err) != latchkey.EINVALID {
			t.Errorf("branding %+v: %v, want EINVALID", bad, err)
		}
	}
	// audited as account.update
	evs, _, err := e.svc.ListAuditEvents(ctx, e.op, latchkey.AuditFilter{Account: latchkey.DefaultAccount, Action: latchkey.ActionAccountUpdate, Limit: 5})
	if err != nil || len(evs) != 1 || !strings.Contains(string(evs[0].After), "cdn.acme.example") {
		t.Errorf("account.update events: %d (%v)", len(evs), err)
	}
}

// TestPortalSigninPage: the sign-in page works without a session, without
// JavaScript (a plain link), and names no account.
func TestPortalSigninPage(t *testing.T) {
	e := newPortalEnv(t, 0)
	b := e.browser()
	if p := b.get("/portal/applications"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/portal/signin?next=") {
		t.Fatalf("anonymous: %d %q", p.status, p.location())
	}
	p := b.get("/portal/signin?next=%2Fportal%2Fapplications%2Fglobex-app")
	if p.status != http.StatusOK || !strings.Contains(p.body, `href="/portal/oidc/login?next=%2fportal%2fapplications%2fglobex-app"`) {
		t.Errorf("sign-in page: %d\n%s", p.status, p.body)
	}
	if p := b.get("/portal/nowhere"); p.status != http.StatusNotFound || p.header.Get("Content-Security-Policy") != ContentSecurityPolicy {
		t.Errorf("unknown page: %d", p.status)
	}
}

func TestTextOn(t *testing.T) {
	for _, tt := range []struct{ c, want string }{{"#000", "#fff"}, {"#ffffff", "#000"}, {"#ffcc00", "#000"}, {"#1e3a8a", "#fff"}, {"#0a5fff", "#fff"}} {
		if got := textOn(tt.c); got != tt.want {
			t.Errorf("textOn(%s) = %s, want %s", tt.c, got, tt.want)
		}
	}
}

// TestPortalBackchannelLogout: the provider's back-channel logout (sent to
// the console's endpoint, the one registered for the client) ends the
// person's portal sessions too.
func TestPortalBackchannelLogout(t *testing.T) {
	f := newFakeIssuer(t)
	rm, err := ParseRoleMap([]byte(portalRoleMap))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, func(c *Console, u string) {
		o, err := NewOIDC(t.Context(), OIDCConfig{Issuer: f.srv.URL, ClientID: "latchkey", RedirectURL: u + "/console/oidc/callback", RoleMap: rm})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := o.PortalRedirectURL(), u+"/portal/oidc/callback"; got != want {
			t.Errorf("portal redirect URL %q, want %q", got, want)
		}
		c.OIDC = o
	})
	ids := map[string]string{}
	for _, sub := range []string{"gina", "ivan"} {
		p := &person{Subject: sub, Email: sub + "@example.com", consumer: true, grant: grant{Account: latchkey.DefaultAccount, Consumer: true, Owner: "globex"}}
		id, err := e.portal.sessions.createPerson(consumerActor(p, p.grant), p, e.clock.Now(), time.Hour, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		ids[sub] = id
	}
	claims := map[string]any{"iss": f.srv.URL, "aud": "latchkey", "sub": "gina", "iat": time.Now().Unix(), "jti": "j1",
		"events": map[string]any{backchannelLogoutEvent: map[string]any{}}}
	resp, err := http.PostForm(e.srv.URL+"/console/oidc/backchannel-logout", url.Values{"logout_token": {f.sign(t, f.key, claims)}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if _, live, _ := e.portal.sessions.get(ids["gina"], e.clock.Now(), time.Hour, time.Hour, false); live {
		t.Error("gina's portal session outlived her back-channel logout")
	}
	if _, live, _ := e.portal.sessions.get(ids["ivan"], e.clock.Now(), time.Hour, time.Hour, false); !live {
		t.Error("ivan's portal session ended with gina's logout")
	}
}

// TestPortalShowsQuota: a key's quota is shown, read only.
func TestPortalShowsQuota(t *testing.T) {
	e := newPortalEnv(t, 0)
	if _, err := e.svc.UpdateAccessKey(context.Background(), e.op, e.globex.ID, latchkey.AccessKeyUpdate{Quota: &latchkey.Quota{Remaining: 4321}}); err != nil {
		t.Fatal(err)
	}
	b := e.consumer("gina", "globex-devs")
	for _, path := range []string{"/portal/applications", "/portal/applications/globex-app", "/portal/keys/" + e.globex.ID} {
		p := b.get(path)
		if !regexp.MustCompile(`data-quota>4,?321`).MatchString(p.body) {
			t.Errorf("%s does not show the quota left", path)
		}
		if strings.Contains(p.body, "/quota") {
			t.Errorf("%s offers to change the quota", path)
		}
	}
}

func TestPortalNext(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/portal/applications/x?hours=3", "/portal/applications/x?hours=3"},
		{"/portal/keys/LKIAAAAAAAAAAAAAAAAA/rotate?step=2&new=LKIABBBBBBBBBBBBBBBB", "/portal/keys/LKIAAAAAAAAAAAAAAAAA/rotate?step=2&new=LKIABBBBBBBBBBBBBBBB"},
		{"/portal", "/portal/applications"},
		{"/portalx/", "/portal/applications"},
		{"/portal/oidc/callback?code=x", "/portal/applications"},
		{"/portal/%2e%2e/console/", "/portal/applications"},
		{"/portal/a%2Fb", "/portal/applications"},
		{"/portal/\\evil", "/portal/applications"},
		{"/portal//evil.example", "/portal/applications"},
		{"https://evil.example/portal/", "/portal/applications"},
		{"/console/applications", "/portal/applications"},
	} {
		if got := portalNext(tt.in); got != tt.want {
			t.Errorf("portalNext(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
