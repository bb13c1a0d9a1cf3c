package console

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/verify"
)

// TestBrowserQuota drives headless Chromium through a key's quota card:
// set a quota of 1,000 refilled daily with the keyboard, let a client
// spend 10 (through the verifier, leasing from the ledger as serve
// does), read exactly 990 left, top it up by 250 and read 1,240, and see
// the history (set, then top-up, by the signed-in principal) newest
// first. At phone width the card fits 390 px without sideways
// scrolling. Any console error (a CSP violation included) fails it.
// Screenshots: artifacts/console/quota-laptop.png, quota-phone.png.
func TestBrowserQuota(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := t.Context()
	r.ver.Quotas, r.ver.QuotaLease = r.svc, 1000
	op := latchkey.Actor{Principal: manage.BootstrapPrincipal, Account: latchkey.DefaultAccount, Role: latchkey.RoleOperator}
	if _, err := r.svc.CreateApplication(ctx, op, latchkey.DefaultAccount, "billing", "", nil); err != nil {
		t.Fatal(err)
	}
	k, err := r.svc.CreateAccessKey(ctx, op, latchkey.DefaultAccount, "billing", latchkey.NewAccessKey{Description: "metered customer"})
	if err != nil {
		t.Fatal(err)
	}
	keyPage := "/console/keys/" + k.ID
	remaining := func() string {
		return r.eval(`(document.querySelector('[data-quota-remaining]') || {dataset: {quotaRemaining: "missing"}}).dataset.quotaRemaining`)
	}

	r.signIn()
	r.nav(keyPage)
	if got := r.text("#quota"); !strings.Contains(got, "No quota") {
		t.Fatalf("the quota card of a key without one says %q", got)
	}
	r.do(chromedp.SendKeys(chromedp.CSS(`#quota-remaining`), "1000"),
		chromedp.SendKeys(chromedp.CSS(`#quota-refill-amount`), "1000"),
		chromedp.SendKeys(chromedp.CSS(`#quota-refill-interval`), "daily"),
		chromedp.SendKeys(chromedp.CSS(`#quota-low`), "100"))
	r.submit(`#quota-set button[type=submit]`)
	if got := r.text(".flash"); !strings.Contains(got, "is set: 1000 calls left now, refilled to 1000 every day") {
		t.Fatalf("after setting: %q", got)
	}
	if got := remaining(); got != "1000" {
		t.Fatalf("after setting 1,000 the card says %s", got)
	}

	for range 10 {
		if res := r.ver.Verify(&verify.Request{Secret: k.Secret}); res.Code != latchkey.CodeValid {
			t.Fatalf("a call: %s", res.Code)
		}
	}
	r.nav(keyPage)
	if got := remaining(); got != "990" {
		t.Errorf("after 10 calls the card says %s left, want exactly 990", got)
	}

	r.do(chromedp.SendKeys(chromedp.CSS(`#quota-amount`), "250"))
	r.submit(`#quota-top-up button[type=submit]`)
	if got := r.text(".flash"); !strings.Contains(got, "topped up by 250: 1240 calls left now") {
		t.Fatalf("after the top-up: %q", got)
	}
	if got := remaining(); got != "1240" {
		t.Errorf("after the top-up the card says %s, want 1240", got)
	}
	hist := r.eval(`Array.from(document.querySelectorAll('table.quota-history tbody tr')).map(tr => tr.dataset.kind + ":" + tr.querySelector('[data-label="Amount"]').innerText.trim() + ":" + tr.querySelector('[data-label="Left after"]').innerText.trim() + ":" + tr.querySelector('[data-label="By"]').innerText.trim()).join(" | ")`)
	if want := "top_up:250:1240:admin | set:1000:1000:admin"; hist != want {
		t.Errorf("history %q, want %q", hist, want)
	}
	if got := r.eval(`String(document.querySelector('meter.quota-bar').value) + "/" + String(document.querySelector('meter.quota-bar').max)`); got != "1240/1240" {
		t.Errorf("bar %s, want 1240/1240", got)
	}
	r.shot("quota-laptop.png")

	r.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	r.nav(keyPage)
	if w := r.eval(`String(document.documentElement.scrollWidth)`); w != "390" {
		t.Errorf("at phone width the key page is %s px wide, want 390 (no sideways scrolling)", w)
	}
	if got := r.eval(`getComputedStyle(document.querySelector('table.quota-history thead')).display`); got != "none" {
		t.Errorf("at phone width the history keeps its header row (display %s), want stacked rows", got)
	}
	r.shot("quota-phone.png")
	r.do(chromedp.EmulateReset())
	r.checkProblems(nil)
}
