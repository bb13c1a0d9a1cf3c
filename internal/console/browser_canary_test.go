package console

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
)

// TestBrowserCanaryBanner drives headless Chromium: a canary key is used
// on forward auth (over HTTP, as a gateway asks), the alert goes through
// the real alert queue into the store, and the admin's key list shows the
// banner, visible at the top of the page, naming the key, the surface,
// the path and the client, with the key marked canary in the table. A
// viewer who signs in next sees neither the banner nor the key. Any console
// error (a CSP violation included) fails it. Screenshot:
// artifacts/console/canary-banner.png.
func TestBrowserCanaryBanner(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := t.Context()
	b, svc := r.bt, r.svc
	alerts := manage.NewCanaryAlerts(svc)
	r.ver.Canary = alerts
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { alerts.Run(runCtx) })
	t.Cleanup(func() { stop(); wg.Wait() })

	op := latchkey.Actor{Principal: manage.BootstrapPrincipal, Account: latchkey.DefaultAccount, Role: latchkey.RoleOperator}
	if _, err := svc.CreateApplication(ctx, op, latchkey.DefaultAccount, "billing", "", nil); err != nil {
		t.Fatal(err)
	}
	real, err := svc.CreateAccessKey(ctx, op, latchkey.DefaultAccount, "billing", latchkey.NewAccessKey{Description: "production"})
	if err != nil {
		t.Fatal(err)
	}
	ck, err := svc.CreateAccessKey(ctx, op, latchkey.DefaultAccount, "billing", latchkey.NewAccessKey{Description: "canary: CI variables", Canary: true})
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := svc.CreatePrincipal(ctx, op, latchkey.DefaultAccount, "vera", latchkey.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}

	// The canary, used as a thief would, on forward auth (asked directly:
	// the rig trusts no gateway).
	req, _ := http.NewRequestWithContext(ctx, "GET", r.srv.URL+"/v1/authorize", nil)
	req.Header.Set("Authorization", "Bearer "+ck.Secret)
	req.Header.Set("User-Agent", "thief/0.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Latchkey-Code") != string(latchkey.CodeNotFound) {
		t.Fatalf("canary on forward auth: %d %s", resp.StatusCode, resp.Header.Get("X-Latchkey-Code"))
	}

	r.signIn()
	b.nav("/console/keys")
	b.reloadUntil("the canary banner", "#canary-alerts", 20*time.Second)
	banner := b.text("#canary-alerts")
	for _, want := range []string{"Canary key used", ck.ID, "(billing)", "on authorize /v1/authorize", "from 127.0.0.1"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner %q lacks %q", banner, want)
		}
	}
	// Shown where it is seen: inside the first screen, above the table,
	// announced to screen readers.
	if got := b.eval(`(() => { const r = document.querySelector('#canary-alerts').getBoundingClientRect();
		const t = document.querySelector('table').getBoundingClientRect();
		return (r.height > 0 && r.top >= 0 && r.bottom <= innerHeight && r.bottom <= t.top) ? "ok" : JSON.stringify([r.top, r.bottom, t.top, innerHeight]) })()`); got != "ok" {
		t.Errorf("banner not at the top of the first screen: %s", got)
	}
	if role := b.eval(`document.querySelector('#canary-alerts').getAttribute('role')`); role != "alert" {
		t.Errorf("banner role %q", role)
	}
	if got := b.eval(`document.querySelector('tr[data-key-id="` + ck.ID + `"]') ? document.querySelector('tr[data-key-id="` + ck.ID + `"]').innerText : "missing"`); !strings.Contains(got, "canary") {
		t.Errorf("the canary's row %q does not say canary", got)
	}
	if b.status(real.ID) == "missing" {
		t.Error("the real key is not listed")
	}
	b.shot("canary-banner.png")

	// A viewer: no banner, no canary.
	b.submit(`form[action="/console/signout"] button`)
	b.nav("/console/signin")
	b.do(chromedp.SendKeys(chromedp.ID("access_key_id"), viewer.AccessKey.ID), chromedp.SendKeys(chromedp.ID("secret_access_key"), viewer.AccessKey.Secret))
	b.submit(`form[action="/console/signin"] button[type=submit]`)
	b.nav("/console/keys")
	if b.status(real.ID) == "missing" {
		t.Fatal("the viewer's key list does not show the real key; the checks below would prove nothing")
	}
	page := b.html()
	if strings.Contains(page, "canary-alerts") || strings.Contains(page, ck.ID) || strings.Contains(page, "Canary key used") {
		t.Error("the viewer's key list shows the canary or its alert")
	}
	r.checkProblems(nil)
}
