package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
)

// auditCount returns how many audit events the store holds.
func (e *env) auditCount() int {
	e.t.Helper()
	evs, _, err := e.svc.ListAuditEvents(context.Background(), e.op, latchkey.AuditFilter{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(evs)
}

func TestCSRFRefusesForgedPosts(t *testing.T) {
	e := newEnv(t)
	k := e.app("web")
	b := e.browser()
	b.mustSignIn(e.opID, e.opSecret)
	valid := b.token("/console/keys/" + k.ID)

	other := e.browser()
	other.mustSignIn(e.opID, e.opSecret)
	otherToken := other.token("/console/applications")

	before := e.auditCount()
	tests := []struct {
		name   string
		token  string
		header map[string]string
		want   string
	}{
		{"no token", "", nil, "security token"},
		{"wrong token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", nil, "security token"},
		{"another session's token", otherToken, nil, "security token"},
		{"valid token from another site", valid, map[string]string{"Sec-Fetch-Site": "cross-site"}, "another site"},
		{"valid token, foreign Origin", valid, map[string]string{"Origin": "https://evil.example"}, "another site"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"status": {"Inactive"}}
			if tt.token != "" {
				form.Set("csrf", tt.token)
			}
			for h, v := range tt.header {
				b.header.Set(h, v)
			}
			defer func() { b.header = http.Header{} }()
			for _, path := range []string{"/console/keys/" + k.ID + "/status", "/console/applications", "/console/signout"} {
				p := b.post(path, form)
				if p.status != http.StatusForbidden {
					t.Errorf("POST %s: status %d, want 403", path, p.status)
				}
				if !strings.Contains(p.body, tt.want) {
					t.Errorf("POST %s: page does not explain (%q)", path, tt.want)
				}
				if p.header.Get("Content-Security-Policy") != ContentSecurityPolicy {
					t.Errorf("POST %s: refusal page without CSP", path)
				}
			}
		})
	}
	if got := e.get(k.ID).Status; got != latchkey.StatusActive {
		t.Fatalf("a forged POST changed the key to %s", got)
	}
	if got := e.auditCount(); got != before {
		t.Fatalf("forged POSTs wrote %d audit events", got-before)
	}
	// the session survived (the sign-out POST was refused) and the real
	// token still works
	p := b.post("/console/keys/"+k.ID+"/status", url.Values{"status": {"Inactive"}, "csrf": {valid}})
	if p.status != http.StatusSeeOther || e.get(k.ID).Status != latchkey.StatusInactive {
		t.Fatalf("the real form: %d, key %s", p.status, e.get(k.ID).Status)
	}
}

// TestSecurityHeadersOnEveryPage fetches every kind of console response,
// signed in and out, and checks the headers each must carry.
func TestSecurityHeadersOnEveryPage(t *testing.T) {
	e := newEnv(t)
	k := e.app("web")
	k2 := e.key("web")
	b := e.browser()
	b.mustSignIn(e.opID, e.opSecret)
	anon := e.browser()
	paths := []struct {
		b      *browser
		path   string
		status int
	}{
		{anon, "/console", http.StatusSeeOther},
		{anon, "/console/", http.StatusSeeOther},
		{anon, "/console/signin", http.StatusOK},
		{anon, "/console/keys", http.StatusSeeOther},
		{anon, "/console/nope", http.StatusNotFound},
		{anon, "/console/keys/" + k.ID + "/chart", http.StatusUnauthorized},
		{b, "/console/applications", http.StatusOK},
		{b, "/console/applications/web", http.StatusOK},
		{b, "/console/applications/missing", http.StatusNotFound},
		{b, "/console/keys", http.StatusOK},
		{b, "/console/keys/" + k.ID, http.StatusOK},
		{b, "/console/keys/" + k.ID + "/rotate", http.StatusOK},
		{b, "/console/keys/" + k.ID + "/rotate?step=5", http.StatusOK},
		{b, "/console/keys/" + k.ID + "/chart?with=" + k2.ID, http.StatusOK},
		{b, "/console/keys/LKIAAAAAAAAAAAAAAAAA", http.StatusNotFound},
		{b, "/console/audit", http.StatusOK},
		{b, "/console/audit?since=yesterday", http.StatusBadRequest},
		{b, "/console/static/console.css", http.StatusOK},
		{b, "/console/static/console.js", http.StatusOK},
		{b, "/console/static/missing.js", http.StatusNotFound},
	}
	for _, tt := range paths {
		t.Run(tt.path, func(t *testing.T) {
			p := tt.b.get(tt.path)
			if p.status != tt.status {
				t.Errorf("status %d, want %d", p.status, tt.status)
			}
			want := map[string]string{
				"Content-Security-Policy": ContentSecurityPolicy,
				"X-Content-Type-Options":  "nosniff",
				"X-Frame-Options":         "DENY",
				"Referrer-Policy":         "same-origin",
			}
			for h, v := range want {
				if got := p.header.Get(h); got != v {
					t.Errorf("%s = %q, want %q", h, got, v)
				}
			}
			if !strings.HasPrefix(tt.path, "/console/static/") && p.header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", p.header.Get("Cache-Control"))
			}
			if strings.Contains(p.body, "<script>") || strings.Contains(p.body, " style=") || regexp.MustCompile(` on[a-z]+=`).MatchString(p.body) {
				t.Error("inline script or style: the CSP would block it")
			}
		})
	}
	// and on a POST's answer, and a method the path does not have
	for _, p := range []page{
		b.submit("/console/applications", "/console/applications", url.Values{"name": {"shop"}}),
		b.do("DELETE", "/console/keys/"+k.ID, nil),
	} {
		if p.header.Get("Content-Security-Policy") != ContentSecurityPolicy {
			t.Errorf("status %d without CSP", p.status)
		}
	}
	if p := b.do("DELETE", "/console/keys/"+k.ID, nil); p.status != http.StatusMethodNotAllowed || !strings.Contains(p.body, "<html") {
		t.Errorf("DELETE on a page: %d, want an HTML 405", p.status)
	}
}

func TestStaticFilesAreCacheBusted(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	page := b.get("/console/signin")
	m := regexp.MustCompile(`/console/static/console\.css\?v=([0-9a-f]+)`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatal("no versioned stylesheet link")
	}
	p := b.get("/console/static/console.css?v=" + m[1])
	if !strings.Contains(p.header.Get("Cache-Control"), "immutable") || p.header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("versioned CSS: Cache-Control %q, Content-Type %q", p.header.Get("Cache-Control"), p.header.Get("Content-Type"))
	}
	if p := b.get("/console/static/console.css?v=old"); p.header.Get("Cache-Control") != "no-cache" {
		t.Errorf("stale version: Cache-Control %q", p.header.Get("Cache-Control"))
	}
}

// TestSecretShownOnlyInCreateResponse creates a key through the console
// and then looks for its secret in every page the console serves.
func TestSecretShownOnlyInCreateResponse(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.CreateApplication(context.Background(), e.op, "default", "web", "", nil); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustSignIn(e.opID, e.opSecret)
	appPage := b.get("/console/applications/web")
	once := formValue(t, onceRE, appPage.body)
	form := url.Values{"csrf": {formValue(t, csrfRE, appPage.body)}, "once": {once}, "description": {"production"}}
	p := b.post("/console/applications/web/keys", form)
	if p.status != http.StatusCreated {
		t.Fatalf("create: %d\n%s", p.status, p.body)
	}
	if cc := p.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("the secret page's Cache-Control is %q", cc)
	}
	if p.header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("the secret page's Referrer-Policy is %q", p.header.Get("Referrer-Policy"))
	}
	secret := regexp.MustCompile(`lksk_[0-9A-Za-z]{46}`).FindString(p.body)
	id := regexp.MustCompile(`id="new-key-id">(LKIA[A-Z2-7]{16})<`).FindStringSubmatch(p.body)
	if secret == "" || id == nil {
		t.Fatalf("the create response lacks the ID or the secret:\n%s", p.body)
	}
	for _, want := range []string{"only time", "latchkey_secret_access_key = " + secret, "LATCHKEY_SECRET_ACCESS_KEY=" + secret, "[web]"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the create response lacks %q", want)
		}
	}
	if strings.Count(p.body, secret) != 3 {
		t.Errorf("the secret appears %d times; want 3 (value, credentials file, .env)", strings.Count(p.body, secret))
	}
	// The same form again (a reload, a double click): nothing is created,
	// nothing is shown.
	again := b.post("/console/applications/web/keys", form)
	if again.status != http.StatusSeeOther || strings.Contains(again.body, secret) {
		t.Fatalf("resubmitting: %d", again.status)
	}
	keys, _, _ := e.svc.ListAccessKeys(context.Background(), e.op, latchkey.AccessKeyFilter{Account: "default", Application: "web"})
	if len(keys) != 1 {
		t.Fatalf("%d keys after resubmitting, want 1", len(keys))
	}
	if got := b.get(again.location()); !strings.Contains(got.body, "already been used") || strings.Contains(got.body, secret) {
		t.Error("resubmitting does not explain that nothing was created, or shows the secret")
	}
	// The page after the creation page (the "saved it" link) shows it no
	// more.
	if got := b.get("/console/applications/web"); strings.Contains(got.body, secret) {
		t.Error("the application page after creation shows the secret")
	}
	// Use the key, so that every page has something to show.
	e.call(secret, "203.0.113.5", "shop/1.0")
	for _, path := range []string{
		"/console/applications", "/console/applications/web", "/console/keys", "/console/keys/" + id[1],
		"/console/keys/" + id[1] + "/rotate", "/console/keys/" + id[1] + "/chart", "/console/audit",
		"/console/audit?access_key_id=" + id[1],
	} {
		if p := b.get(path); p.status != http.StatusOK || strings.Contains(p.body, secret) {
			t.Errorf("%s: status %d, contains the secret: %v", path, p.status, strings.Contains(p.body, secret))
		}
	}
	// nor in the store's audit events
	evs, _, _ := e.svc.ListAuditEvents(context.Background(), e.op, latchkey.AuditFilter{Limit: 100})
	raw, _ := json.Marshal(evs)
	if strings.Contains(string(raw), secret) {
		t.Error("the audit log holds the secret")
	}
}

func TestOtherAccountsKeysAreNotFound(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	k := e.app("web")
	if _, err := e.svc.CreateAccount(ctx, e.op, "acme", latchkey.AccountUpdate{}); err != nil {
		t.Fatal(err)
	}
	acme, err := e.svc.CreatePrincipal(ctx, e.op, "acme", "acme-admin", latchkey.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustSignIn(acme.AccessKey.ID, acme.AccessKey.Secret)
	for _, path := range []string{
		"/console/keys/" + k.ID, "/console/keys/" + k.ID + "/rotate", "/console/keys/" + k.ID + "/chart",
		"/console/applications/web",
	} {
		if p := b.get(path); p.status != http.StatusNotFound {
			t.Errorf("GET %s as another account's admin: %d, want 404", path, p.status)
		}
	}
	tok := b.token("/console/applications")
	for _, tt := range []struct {
		path string
		form url.Values
	}{
		{"/console/keys/" + k.ID + "/status", url.Values{"status": {"Inactive"}}},
		{"/console/keys/" + k.ID + "/delete", url.Values{"confirm": {k.ID}}},
		{"/console/keys/" + k.ID + "/restrictions", url.Values{"allowed_ips": {"10.0.0.1"}}},
		{"/console/applications/web/restrictions", url.Values{"scopes": {"x"}}},
	} {
		tt.form.Set("csrf", tok)
		p := b.post(tt.path, tt.form)
		if p.status == http.StatusSeeOther {
			// application forms redirect back with the error shown there
			if got := b.get(p.location()); got.status != http.StatusNotFound && !strings.Contains(got.body, "not found") {
				t.Errorf("POST %s: redirected to %s without a not-found message", tt.path, p.location())
			}
		} else if p.status != http.StatusNotFound {
			t.Errorf("POST %s as another account's admin: %d, want 404", tt.path, p.status)
		}
	}
	if p := b.get("/console/keys"); strings.Contains(p.body, k.ID) {
		t.Error("another account's key is listed")
	}
	if got := e.get(k.ID); got.Status != latchkey.StatusActive || got.Restrictions != nil {
		t.Fatalf("another account's admin changed the key: %+v", got)
	}
}

func TestKeyActionsAreAuditedAsTheSignedInPrincipal(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	k := e.app("web")
	ops, err := e.svc.CreatePrincipal(ctx, e.op, "default", "alice", latchkey.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustSignIn(ops.AccessKey.ID, ops.AccessKey.Secret)
	keyPage := "/console/keys/" + k.ID

	// Delete is refused while Active, even with the confirmation typed.
	p := b.submit(keyPage, keyPage+"/delete", url.Values{"confirm": {k.ID}})
	if p.status != http.StatusSeeOther || !strings.Contains(b.get(p.location()).body, "is Active") {
		t.Fatalf("deleting an Active key: %d", p.status)
	}
	if strings.Contains(b.get(keyPage).body, `action="/console/keys/`+k.ID+`/delete"`) {
		t.Error("the key page offers delete for an Active key")
	}
	// Deactivate, then a wrong confirmation, then the right one.
	if p := b.submit(keyPage, keyPage+"/status", url.Values{"status": {"Inactive"}}); p.status != http.StatusSeeOther {
		t.Fatalf("deactivate: %d", p.status)
	}
	if got := b.get("/console/keys"); !regexp.MustCompile(`data-key-id="` + k.ID + `"[\s\S]*?data-status="Inactive"`).MatchString(got.body) {
		t.Error("the key list does not show the key Inactive")
	}
	p = b.submit(keyPage, keyPage+"/delete", url.Values{"confirm": {strings.ToLower(k.ID)}})
	if got := b.get(p.location()); !strings.Contains(got.body, "Type the access key ID exactly") {
		t.Fatal("a wrong confirmation was not explained")
	}
	if _, err := e.svc.GetAccessKey(ctx, e.op, k.ID); err != nil {
		t.Fatal("a wrong confirmation deleted the key")
	}
	p = b.submit(keyPage, keyPage+"/delete", url.Values{"confirm": {k.ID}})
	if p.status != http.StatusSeeOther || p.location() != "/console/applications/web" {
		t.Fatalf("delete: %d %q", p.status, p.location())
	}
	if _, err := e.svc.GetAccessKey(ctx, e.op, k.ID); latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
		t.Fatalf("after delete: %v", err)
	}
	evs, _, err := e.svc.ListAuditEvents(ctx, e.op, latchkey.AuditFilter{AccessKeyID: k.ID})
	if err != nil {
		t.Fatal(err)
	}
	var got [][3]string
	for _, ev := range evs {
		if ev.Action == latchkey.ActionAccessKeyCreate {
			continue
		}
		got = append(got, [3]string{ev.Action, ev.Actor, ev.ActorKeyID})
		if ev.SourceIP != "127.0.0.1" {
			t.Errorf("%s: source IP %q, want the browser's", ev.Action, ev.SourceIP)
		}
		if ev.UserAgent == "" {
			t.Errorf("%s: no user agent", ev.Action)
		}
	}
	want := [][3]string{
		{latchkey.ActionAccessKeyDelete, "alice", ops.AccessKey.ID},
		{latchkey.ActionAccessKeyUpdate, "alice", ops.AccessKey.ID},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit events (-want +got):\n%s", diff)
	}
}

func TestViewerSeesButCannotChange(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	k := e.app("web")
	v, err := e.svc.CreatePrincipal(ctx, e.op, "default", "auditor", latchkey.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustSignIn(v.AccessKey.ID, v.AccessKey.Secret)
	for _, path := range []string{"/console/applications", "/console/applications/web", "/console/keys", "/console/keys/" + k.ID, "/console/keys/" + k.ID + "/rotate"} {
		p := b.get(path)
		if p.status != http.StatusOK {
			t.Errorf("viewer GET %s: %d", path, p.status)
		}
		// the only form a viewer gets is the sign-out button
		if n := strings.Count(p.body, `method="post"`); n != 1 {
			t.Errorf("viewer sees %d forms on %s, want only sign-out", n, path)
		}
	}
	p := b.submit("/console/keys", "/console/keys/"+k.ID+"/status", url.Values{"status": {"Inactive"}})
	if got := b.get(p.location()); !strings.Contains(got.body, "may not change anything") {
		t.Errorf("viewer's change: %d, not explained", p.status)
	}
	if e.get(k.ID).Status != latchkey.StatusActive {
		t.Fatal("a viewer deactivated a key")
	}
}

func TestRestrictionsEditor(t *testing.T) {
	e := newEnv(t)
	k := e.app("web")
	b := e.browser()
	b.mustSignIn(e.opID, e.opSecret)
	keyPage := "/console/keys/" + k.ID
	form := url.Values{
		"mode":              {"enforce"},
		"allowed_ips":       {"203.0.113.0/24\r\n2001:db8::1\r\n"},
		"allowed_referrers": {"https://*.example.com/*"},
		"scopes":            {"shipments:read, shipments:write"},
		"android_apps":      {"com.example.app AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"},
		"per_minute":        {"600"},
	}
	if p := b.submit(keyPage, keyPage+"/restrictions", form); p.status != http.StatusSeeOther {
		t.Fatalf("save: %d", p.status)
	}
	got := e.get(k.ID)
	want := &latchkey.Restrictions{
		AllowedIPs: []string{"203.0.113.0/24", "2001:db8::1/128"}, AllowedReferrers: []string{"https://*.example.com/*"},
		Scopes:      []string{"shipments:read", "shipments:write"},
		AndroidApps: []latchkey.AndroidApp{{PackageName: "com.example.app", SHA1Fingerprint: "abcdef0123456789abcdef0123456789abcdef01"}},
		RateLimit:   &latchkey.RateLimit{PerMinute: 600},
	}
	if diff := cmp.Diff(want, got.Restrictions); diff != "" {
		t.Errorf("restrictions (-want +got):\n%s", diff)
	}
	// enforced immediately
	if code := e.call(k.Secret, "198.51.100.1", "x"); code != latchkey.CodeIPNotAllowed {
		t.Errorf("a call from outside the allowed IPs: %s", code)
	}
	// the editor shows what is set
	page := b.get(keyPage)
	if !strings.Contains(page.body, "203.0.113.0/24\n2001:db8::1/128</textarea>") {
		t.Error("the editor does not show the allowed IPs")
	}
	// report-only, then enforce it
	ro := url.Values{"mode": {"report_only"}, "allowed_ips": {"198.51.100.0/24"}}
	b.submit(keyPage, keyPage+"/restrictions", ro)
	if got := e.get(k.ID); got.ReportOnly == nil || got.ReportOnly.AllowedIPs[0] != "198.51.100.0/24" || got.Restrictions == nil {
		t.Fatalf("report-only: %+v", got.ReportOnly)
	}
	b.submit(keyPage, keyPage+"/restrictions", url.Values{"mode": {"enforce_report_only"}})
	if got := e.get(k.ID); got.ReportOnly != nil || got.Restrictions.AllowedIPs[0] != "198.51.100.0/24" {
		t.Fatalf("after enforcing: enforced %+v, report-only %+v", got.Restrictions, got.ReportOnly)
	}
	// errors name the field and change nothing
	tests := []struct {
		name string
		form url.Values
		msg  string
	}{
		{"bad IP", url.Values{"allowed_ips": {"10.0.0.300"}}, "allowed_ips"},
		{"bad rate", url.Values{"per_minute": {"lots"}}, "requests per minute"},
		{"bad referrer", url.Values{"allowed_referrers": {"example.com"}}, "allowed_referrers"},
		{"bad android line", url.Values{"android_apps": {"com.example.app"}}, "android_apps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := b.submit(keyPage, keyPage+"/restrictions", tt.form)
			got := b.get(p.location())
			if !strings.Contains(got.body, tt.msg) || !strings.Contains(got.body, "flash-error") {
				t.Errorf("no error naming %q", tt.msg)
			}
		})
	}
	if got := e.get(k.ID); got.Restrictions.AllowedIPs[0] != "198.51.100.0/24" {
		t.Fatal("an invalid form changed the restrictions")
	}
	// clearing: an empty form removes them
	b.submit(keyPage, keyPage+"/restrictions", url.Values{"mode": {"enforce"}})
	if got := e.get(k.ID); got.Restrictions != nil {
		t.Fatalf("an empty form left %+v", got.Restrictions)
	}
	// application defaults
	b.submit("/console/applications/web", "/console/applications/web/restrictions", url.Values{"scopes": {"shipments:*"}})
	app, err := e.svc.GetApplication(context.Background(), e.op, "default", "web")
	if err != nil || app.Restrictions == nil || app.Restrictions.Scopes[0] != "shipments:*" {
		t.Fatalf("application restrictions: %+v, %v", app, err)
	}
}

func TestApplicationsAndKeysPages(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.mustSignIn(e.opID, e.opSecret)
	p := b.submit("/console/applications", "/console/applications", url.Values{"name": {"shipments-web"}, "description": {"the shop"}})
	if p.location() != "/console/applications/shipments-web" {
		t.Fatalf("register: %d %q", p.status, p.location())
	}
	if p := b.submit("/console/applications", "/console/applications", url.Values{"name": {"bad name!"}}); !strings.Contains(b.get(p.location()).body, "may hold only letters") {
		t.Error("a bad name is not explained")
	}
	k1 := e.key("shipments-web")
	e.call(k1.Secret, "203.0.113.5", "shop/1.0")
	st := latchkey.StatusInactive
	k2 := e.key("shipments-web")
	if _, err := e.svc.UpdateAccessKey(context.Background(), e.op, k2.ID, latchkey.AccessKeyUpdate{Status: &st}); err != nil {
		t.Fatal(err)
	}
	e.call(k2.Secret, "198.51.100.9", "cron/0.9")
	app := b.get("/console/applications/shipments-web")
	for _, want := range []string{
		k1.ID, k2.ID, `data-status="Active"`, `data-status="Inactive"`, "203.0.113.5", "shop/1.0",
		"INACTIVE", "198.51.100.9", "cron/0.9", "the most it may have",
	} {
		if !strings.Contains(app.body, want) {
			t.Errorf("the application page lacks %q", want)
		}
	}
	if strings.Contains(app.body, `name="once"`) {
		t.Error("the application page offers to create a third key")
	}
	list := b.get("/console/applications")
	if !strings.Contains(list.body, k1.ID) || !strings.Contains(list.body, `data-status="Inactive"`) {
		t.Error("the applications list does not show each key's status")
	}
	// delete an application: only without keys, with its name typed
	b.submit("/console/applications", "/console/applications", url.Values{"name": {"tmp"}})
	if p := b.submit("/console/applications/tmp", "/console/applications/tmp/delete", url.Values{"confirm": {"tmp"}}); p.location() != "/console/applications" {
		t.Fatalf("delete application: %d %q", p.status, p.location())
	}
}

func TestUnknownPathsAreHTML(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for _, path := range []string{"/console/nope", "/console/keys/x/y/z"} {
		p := b.get(path)
		if p.status != http.StatusNotFound || !strings.Contains(p.body, "<html") {
			t.Errorf("%s: %d, want an HTML 404", path, p.status)
		}
	}
}

func TestUserTextIsEscaped(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const evil = `<img src=x onerror=alert(1)>"'`
	if _, err := e.svc.CreateApplication(ctx, e.op, "default", "web", evil, nil); err != nil {
		t.Fatal(err)
	}
	k, err := e.svc.CreateAccessKey(ctx, e.op, "default", "web", latchkey.NewAccessKey{Description: evil})
	if err != nil {
		t.Fatal(err)
	}
	e.ver.Now = e.clock.Now
	e.call(k.Secret, "203.0.113.1", evil)
	b := e.browser()
	b.mustSignIn(e.opID, e.opSecret)
	for _, path := range []string{"/console/applications", "/console/applications/web", "/console/keys", "/console/keys/" + k.ID,
		"/console/keys/" + k.ID + "/rotate", "/console/keys/" + k.ID + "/chart", "/console/audit"} {
		p := b.get(path)
		if strings.Contains(p.body, "<img src=x") {
			t.Errorf("%s: user text is not escaped", path)
		}
		if !strings.Contains(p.body, "&lt;img src=x") {
			t.Errorf("%s: the text is not shown at all", path)
		}
	}
}
