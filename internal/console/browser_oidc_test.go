package console

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey"
)

// TestBrowserOIDC drives Chromium through single sign-on with the example
// OP of zitadel/oidc: the sign-in page offers the IdP; an admin (the group
// lk-admins maps to admin) signs in with the OP's own login page, lands on
// the page they asked for, registers an application and is audited by
// email and subject; a person whose groups map to nothing is refused with
// no session; a viewer removed at the IdP keeps the console until the
// revalidation bound and loses it at the bound. Screenshots of the SSO
// pages at laptop and phone width go to the artifacts directory.
func TestBrowserOIDC(t *testing.T) {
	const bound = 2 * time.Minute
	clk := newClock()
	idp := newTestOP(t)
	r := newRig(t, rigOptions{now: clk.Now, setup: func(c *Console, u string) { c.OIDC = idp.oidcFor(u, bound) }})
	adminPW := idp.addUser("ada", "ada@example.com", "lk-admins")
	nobodyPW := idp.addUser("nora", "nora@example.com", "sales")
	viewerPW := idp.addUser("vic", "vic@example.com", "lk-viewers")

	phone := func(name string) {
		r.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
		if w := r.eval(`String(document.documentElement.scrollWidth)`); w != "390" {
			t.Errorf("%s at phone width is %s px wide, want 390", name, w)
		}
		r.shot(name + "-phone.png")
		r.do(chromedp.EmulateViewport(1280, 900))
		r.shot(name + "-laptop.png")
	}
	// sso signs in at the OP's login page from the console's sign-in page.
	sso := func(next, user, pw string) {
		t.Helper()
		r.nav("/console/signin?next=" + next)
		r.submit("#sso")
		if loc := r.eval(`location.href`); !strings.HasPrefix(loc, idp.issuer) {
			t.Fatalf("the SSO button led to %s, not the OP", loc)
		}
		r.do(chromedp.SendKeys(chromedp.ID("username"), user), chromedp.SendKeys(chromedp.ID("password"), pw))
		r.submit(`button[type=submit]`)
		// The OP redirects to the callback, whose page moves on by itself:
		// wait through the navigations.
		js := `location.href.startsWith("` + r.base + `") && document.readyState === "complete" && !document.querySelector("[data-signed-in]")`
		deadline := time.Now().Add(15 * time.Second)
		for {
			ok, err := chromedp.Run(r.ctx, chromedp.Evaluate[bool](js))
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the browser never came back from the IdP: at %s", r.location())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// The sign-in page offers both ways in.
	r.nav("/console/")
	if loc := r.location(); !strings.HasPrefix(loc, "/console/signin") {
		t.Fatalf("/console/ without a session went to %s", loc)
	}
	if r.eval(`document.querySelector("#sso") && document.querySelector("#access_key_id") ? "both" : "not both"`) != "both" {
		t.Fatal("the sign-in page does not offer SSO and the access key form")
	}
	phone("sso-signin")

	// An admin signs in through the IdP and lands where they were going.
	sso("/console/keys", "ada", adminPW)
	if loc := r.location(); loc != "/console/keys" {
		t.Fatalf("after SSO at %s, want /console/keys\n%s", loc, r.text("main"))
	}
	if who := r.text(".principal"); !strings.Contains(who, "ada@example.com") || !strings.Contains(who, "admin") {
		t.Fatalf("header says %q, want ada@example.com as admin", who)
	}
	r.nav("/console/applications")
	r.do(chromedp.SendKeys(chromedp.ID("app-name"), "sso-web"), chromedp.SendKeys(chromedp.ID("app-desc"), "made by a person"))
	r.submit(`form[action="/console/applications"] button[type=submit]`)
	if h := r.text("h1"); h != "sso-web" {
		t.Fatalf("after registering, h1 = %q", h)
	}
	op := latchkey.Actor{Principal: "admin", Account: latchkey.DefaultAccount, Role: latchkey.RoleOperator, AccessKeyID: r.boot.ID}
	evs, _, err := r.svc.ListAuditEvents(context.Background(), op, latchkey.AuditFilter{Application: "sso-web"})
	if err != nil || len(evs) == 0 {
		t.Fatalf("audit: %v, %d events", err, len(evs))
	}
	if want := "oidc:ada@example.com (sub ada)"; evs[0].Actor != want {
		t.Errorf("audit actor %q, want %q", evs[0].Actor, want)
	}
	phone("sso-signed-in")
	r.submit(`form[action="/console/signout"] button[type=submit]`)

	// A person whose groups map to nothing is refused.
	sso("", "nora", nobodyPW)
	if loc := r.location(); loc != "/console/oidc/callback" && !strings.HasPrefix(loc, "/console/oidc/callback?") {
		t.Fatalf("a person without a role is at %s", loc)
	}
	if msg := r.text("#signin-error"); !strings.Contains(msg, "not given a role") {
		t.Fatalf("refusal says %q", msg)
	}
	phone("sso-refused")
	r.nav("/console/applications")
	if loc := r.location(); !strings.HasPrefix(loc, "/console/signin") {
		t.Fatalf("after a refused sign-in /console/applications is at %s", loc)
	}

	// A viewer removed at the IdP keeps access until the bound, not after.
	sso("", "vic", viewerPW)
	if who := r.text(".principal"); !strings.Contains(who, "vic@example.com") || !strings.Contains(who, "viewer") {
		t.Fatalf("header says %q, want vic@example.com as viewer", who)
	}
	idp.removeUser("vic")
	clk.Advance(bound - time.Second)
	r.nav("/console/applications")
	if loc := r.location(); loc != "/console/applications" {
		t.Fatalf("before the bound the removed viewer is at %s", loc)
	}
	clk.Advance(time.Second)
	r.nav("/console/applications")
	if loc := r.location(); !strings.HasPrefix(loc, "/console/signin") || !strings.Contains(loc, "m=idp") {
		t.Fatalf("at the bound the removed viewer is at %s, want the sign-in page", loc)
	}
	if msg := r.text(".flash"); !strings.Contains(msg, "identity provider no longer confirms") {
		t.Errorf("sign-in notice %q", msg)
	}
	phone("sso-session-ended")

	// The OP's own pages are not the console's: their console messages
	// (favicon, missing CSP) are not counted, and nor is the 403 of the
	// refused person's callback.
	r.checkProblems(regexp.MustCompile(regexp.QuoteMeta(idp.issuer) + `|403 \(Forbidden\) \(` + regexp.QuoteMeta(r.base+Prefix+"/oidc/callback?")))
}
