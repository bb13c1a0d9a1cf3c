package console

import (
	"context"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
)

// skewClock is the real clock plus an offset that tests move forward, so
// that traffic lands in real minutes and a revalidation bound can still
// pass in an instant.
type skewClock struct{ off atomic.Int64 }

func (c *skewClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *skewClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// portalTraffic is a client of the protected API that calls /v1/verify's
// verifier every few milliseconds with the key it is told to use, and
// counts what it gets.
type portalTraffic struct {
	ver    *verify.Verifier
	secret atomic.Pointer[string]
	mu     sync.Mutex
	valid  map[string]int // by the secret's key ID
	failed []string
	stop   chan struct{}
	done   chan struct{}
}

func startTraffic(ver *verify.Verifier, id, secret string) *portalTraffic {
	tr := &portalTraffic{ver: ver, valid: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	tr.use(id, secret)
	go func() {
		defer close(tr.done)
		for {
			select {
			case <-tr.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			cur := *tr.secret.Load()
			id, secret, _ := strings.Cut(cur, " ")
			res := tr.ver.Verify(&verify.Request{Secret: secret, IP: netip.MustParseAddr("203.0.113.50"), UserAgent: "globex-billing/2.1"})
			tr.mu.Lock()
			if res.Code == latchkey.CodeValid {
				tr.valid[id]++
			} else {
				tr.failed = append(tr.failed, id+": "+string(res.Code))
			}
			tr.mu.Unlock()
		}
	}()
	return tr
}

func (tr *portalTraffic) use(id, secret string) {
	s := id + " " + secret
	tr.secret.Store(&s)
}

func (tr *portalTraffic) end() (map[string]int, []string) {
	close(tr.stop)
	<-tr.done
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.valid, tr.failed
}

// TestBrowserPortal drives Chromium through the consumer portal with the
// example OP of zitadel/oidc: a consumer of globex signs in through the
// OP, sees their organisation's application under the account's branding,
// and rotates its key with the five-step wizard while a background client
// keeps calling with the old key and then the new one (the traffic moves,
// and no call fails); the rotation is audited with the person and the
// organisation. A consumer of initech sees nothing of globex's, even by
// key ID; removed at the IdP, they keep the portal until the revalidation
// bound and lose it at the bound. Screenshots of the portal and its SSO
// sign-in at phone and laptop width go to the artifacts directory.
func TestBrowserPortal(t *testing.T) {
	const bound = 2 * time.Minute
	clk := &skewClock{}
	idp := newTestOP(t)
	r := newRig(t, rigOptions{now: clk.Now, refreshSeconds: 2, timeout: 3 * time.Minute,
		setup: func(c *Console, u string) { c.OIDC = idp.oidcWith(u, bound, portalRoleMap) }})
	ctx := context.Background()
	op := latchkey.Actor{Principal: "admin", Account: latchkey.DefaultAccount, Role: latchkey.RoleOperator, AccessKeyID: r.boot.ID}
	if _, err := r.svc.UpdateAccount(ctx, op, latchkey.DefaultAccount, latchkey.AccountUpdate{
		Branding: &latchkey.Branding{Name: "Acme Payments API", PrimaryColor: "#0f5132", AccentColor: "#b02a37"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.CreateOwnedApplication(ctx, op, latchkey.DefaultAccount, "globex-billing", "Globex's invoice sync", "globex", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.CreateOwnedApplication(ctx, op, latchkey.DefaultAccount, "initech-reports", "", "initech", nil); err != nil {
		t.Fatal(err)
	}
	old, err := r.svc.CreateAccessKey(ctx, op, latchkey.DefaultAccount, "globex-billing", latchkey.NewAccessKey{Description: "production"})
	if err != nil {
		t.Fatal(err)
	}
	ginaPW := idp.addUser("gina", "gina@globex.example", "globex-devs")
	ivanPW := idp.addUser("ivan", "ivan@initech.example", "initech-devs")
	traffic := startTraffic(r.ver, old.ID, old.Secret)

	both := func(name string) {
		t.Helper()
		r.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
		if w := r.eval(`String(document.documentElement.scrollWidth)`); w != "390" {
			t.Errorf("%s at phone width is %s px wide, want 390", name, w)
		}
		r.shot(name + "-phone.png")
		r.do(chromedp.EmulateViewport(1280, 900))
		r.shot(name + "-laptop.png")
	}
	sso := func(user, pw string) {
		t.Helper()
		r.nav("/portal/")
		if loc := r.location(); !strings.HasPrefix(loc, "/portal/signin") {
			t.Fatalf("/portal/ without a session went to %s", loc)
		}
		r.submit("#sso")
		if loc := r.eval(`location.href`); !strings.HasPrefix(loc, idp.issuer) {
			t.Fatalf("the SSO button led to %s, not the OP", loc)
		}
		r.do(chromedp.SendKeys(chromedp.ID("username"), user), chromedp.SendKeys(chromedp.ID("password"), pw))
		r.submit(`button[type=submit]`)
		// through the OP's redirect and the callback's page, which moves on by itself
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

	r.nav("/portal/signin")
	both("portal-sso-signin")
	sso("gina", ginaPW)
	if loc := r.location(); loc != "/portal/applications" {
		t.Fatalf("after SSO at %s\n%s", loc, r.text("main"))
	}
	if who := r.text(".principal"); !strings.Contains(who, "gina@globex.example") {
		t.Errorf("header says %q", who)
	}
	if name := r.text("[data-brand-name]"); name != "Acme Payments API" {
		t.Errorf("brand name %q", name)
	}
	if bg := r.eval(`getComputedStyle(document.querySelector(".top")).backgroundColor`); bg != "rgb(15, 81, 50)" {
		t.Errorf("header colour %s, want the brand's #0f5132", bg)
	}
	page := r.html()
	if !strings.Contains(page, old.ID) || strings.Contains(page, "initech") {
		t.Fatalf("gina's applications page: has the globex key %v, mentions initech %v", strings.Contains(page, old.ID), strings.Contains(page, "initech"))
	}
	both("portal-applications")

	// Rotate: step 1 creates the new key, whose secret is shown once.
	r.nav("/portal/keys/" + old.ID + "/rotate")
	r.submit(`form[action="/portal/applications/globex-billing/keys"] button[type=submit]`)
	newID, secret := r.text("#new-key-id"), r.text("#new-secret")
	if !regexp.MustCompile(`^LKIA[A-Z2-7]{16}$`).MatchString(newID) || secret == "" {
		t.Fatalf("created page: ID %q", newID)
	}
	// The clients move to the new key; the chart and the new key's last use show it.
	traffic.use(newID, secret)
	r.submit(`a[href*="step=2"]`)
	if loc := r.location(); !strings.HasPrefix(loc, "/portal/keys/"+old.ID+"/rotate") || !strings.Contains(loc, "step=2") {
		t.Fatalf("after saving the secret at %s", loc)
	}
	if strings.Contains(r.html(), secret) {
		t.Fatal("the secret is on the wizard's page")
	}
	// the chart refreshes itself (every 2 s here) until it counts the new key's calls
	r.waitJS("the new key's traffic on the chart", `(() => { const m = (document.querySelector('#usage-chart') || {innerText: ""}).innerText.match(/new\s+`+newID+`[^:]*:\s*([\d,]+) valid/); return !!m && parseInt(m[1].replace(/,/g, "")) >= 25; })()`, 20*time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for {
		k, err := r.svc.GetAccessKey(ctx, op, newID)
		if err == nil && k.LastUsed != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new key was never used")
		}
		time.Sleep(200 * time.Millisecond)
	}
	both("portal-rotate-step2")
	// Step 3: deactivate the old key (nothing uses it any more).
	r.nav("/portal/keys/" + old.ID + "/rotate?step=3&new=" + newID)
	r.submit(`form[action="/portal/keys/` + old.ID + `/status"] button[type=submit]`)
	if loc := r.location(); !strings.Contains(loc, "step=4") {
		t.Fatalf("after deactivating at %s", loc)
	}
	// Step 5: delete it.
	r.nav("/portal/keys/" + old.ID + "/rotate?step=5&new=" + newID)
	r.do(chromedp.SendKeys(chromedp.ID("confirm-delete"), old.ID))
	r.submit(`form[action="/portal/keys/` + old.ID + `/delete"] button[type=submit]`)
	if loc := r.location(); loc != "/portal/applications/globex-billing" {
		t.Fatalf("after the rotation at %s", loc)
	}
	if got := r.text(".flash"); !strings.Contains(got, "Rotation finished") {
		t.Errorf("flash %q", got)
	}
	valid, failed := traffic.end()
	if len(failed) > 0 {
		t.Errorf("%d calls failed during the rotation, first %s", len(failed), failed[0])
	}
	if valid[old.ID] == 0 || valid[newID] == 0 {
		t.Errorf("valid calls %v: the traffic did not move from the old key to the new one", valid)
	}
	evs, _, err := r.svc.ListAuditEvents(ctx, op, latchkey.AuditFilter{Application: "globex-billing", Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	byAction := map[string]bool{}
	for _, ev := range evs {
		if ev.Actor == "oidc:gina@globex.example (sub gina) consumer of globex" {
			byAction[ev.Action] = true
		}
	}
	if !byAction[latchkey.ActionAccessKeyCreate] || !byAction[latchkey.ActionAccessKeyUpdate] || !byAction[latchkey.ActionAccessKeyDelete] {
		t.Errorf("rotation audited as gina of globex: %v", byAction)
	}
	r.submit(`form[action="/portal/signout"] button[type=submit]`)

	// Another organisation's consumer sees nothing of globex's.
	sso("ivan", ivanPW)
	page = r.html()
	if strings.Contains(page, "globex") || strings.Contains(page, newID) || !strings.Contains(page, "initech-reports") {
		t.Errorf("ivan's applications page mentions globex %v, shows initech-reports %v", strings.Contains(page, "globex"), strings.Contains(page, "initech-reports"))
	}
	r.nav("/portal/keys/" + newID)
	if s := r.eval(`document.querySelector("[data-status]").dataset.status`); s != "404" {
		t.Errorf("ivan opens globex's key: status %s", s)
	}
	both("portal-other-organisation")

	// Removed at the IdP: the portal until the bound, not after.
	// (the clock also runs in real time: 30 s of slack for a slow machine)
	idp.removeUser("ivan")
	clk.Advance(bound - 30*time.Second)
	r.nav("/portal/applications")
	if loc := r.location(); loc != "/portal/applications" {
		t.Fatalf("before the bound the removed consumer is at %s", loc)
	}
	clk.Advance(30 * time.Second)
	r.nav("/portal/applications")
	if loc := r.location(); !strings.HasPrefix(loc, "/portal/signin") || !strings.Contains(loc, "m=idp") {
		t.Fatalf("at the bound the removed consumer is at %s", loc)
	}
	both("portal-session-ended")

	r.checkProblems(regexp.MustCompile(regexp.QuoteMeta(idp.issuer) + `|404 \(Not Found\)`))
}
