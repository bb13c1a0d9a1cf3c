package console

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
)

// laptop is the console's data at its most demanding for a laptop screen:
// application and principal names of 64 characters (one with hyphens, one
// without a place to break), long descriptions, every badge (Active,
// Inactive, Exposed), restricted and report-only keys, a key that expires
// soon and one that has expired, refusals with the longest codes, IPv6
// addresses, long user agents, and the audit events all of that made. Its
// main application is in the middle of a rotation: three instances moved
// from the old key to the new one over the last 40 minutes.
type laptop struct {
	mainApp, oddApp, mobileApp string
	oldKey, newKey             string // the rotation, at step 2
	exposedKey                 string
}

const (
	longAppName       = "shipments-tracking-web-frontend-eu-west-1-production-blue-green1"
	unbreakableApp    = "billing_reconciliation.nightly_batch_worker.us_east_2.canary_007"
	longPrincipalName = "deploy-automation-for-the-shipments-platform-team-eu-west-1-prod"
	longUA            = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36 shipments-web/2.3.117"
	longIPv6          = "2001:db8:85a3:1234:5678:8a2e:370:7334"
)

func seedLaptop(t *testing.T, r *rig, clk *clock) laptop {
	t.Helper()
	ctx := t.Context()
	sys := latchkey.System()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{longAppName, unbreakableApp, longPrincipalName} {
		if len(n) != 64 {
			t.Fatalf("%q has %d characters, want 64", n, len(n))
		}
	}
	d := laptop{mainApp: longAppName, oddApp: unbreakableApp, mobileApp: "courier-mobile"}

	// An admin with a long name makes some of the changes, from IPv6.
	p, err := r.svc.CreatePrincipal(ctx, sys, latchkey.DefaultAccount, longPrincipalName, latchkey.RoleAdmin)
	must(err)
	admin := latchkey.Actor{Principal: longPrincipalName, Account: latchkey.DefaultAccount, Role: latchkey.RoleAdmin,
		AccessKeyID: p.AccessKey.ID, SourceIP: longIPv6, UserAgent: "latchkey-cli/1.4"}

	_, err = r.svc.CreateApplication(ctx, sys, latchkey.DefaultAccount, d.mainApp,
		"The customer-facing shipment tracking site (web frontend), served from eu-west-1 by the blue and green production fleets behind the CDN; owned by the shipments team, on call via #shipments-oncall.",
		&latchkey.Restrictions{AllowedIPs: []string{"203.0.113.0/24", "2001:db8::/32"}})
	must(err)
	_, err = r.svc.CreateApplication(ctx, admin, latchkey.DefaultAccount, d.oddApp,
		"Nightly reconciliation batch; config at https://git.example.com/billing/reconciliation/blob/main/deploy/production/us_east_2/canary_0007/values.yaml",
		nil)
	must(err)
	_, err = r.svc.CreateApplication(ctx, admin, latchkey.DefaultAccount, d.mobileApp, "Android and iOS courier apps", nil)
	must(err)

	expires := clk.Now().Add(20 * 24 * time.Hour)
	old, err := r.svc.CreateAccessKey(ctx, sys, latchkey.DefaultAccount, d.mainApp, latchkey.NewAccessKey{
		Description: "production web servers (blue and green fleets), deployed by the shipments-web pipeline from the secrets manager path prod/shipments-web/latchkey",
		ExpiresAt:   &expires,
		Restrictions: &latchkey.Restrictions{
			AllowedIPs: []string{"203.0.113.11", "203.0.113.12", "203.0.113.13"},
			Scopes:     []string{"shipments:read", "shipments:track", "labels:read", "webhooks:write"},
			RateLimit:  &latchkey.RateLimit{PerSecond: 50, Burst: 200, PerMinute: 6000},
		},
		ReportOnly: &latchkey.Restrictions{
			AllowedIPs:       []string{"203.0.113.11", "203.0.113.12"},
			AllowedReferrers: []string{"https://track.example.com/*", "https://*.shipments.example.com/*"},
		},
	})
	must(err)
	nk, err := r.svc.CreateAccessKey(ctx, admin, latchkey.DefaultAccount, d.mainApp, latchkey.NewAccessKey{
		Description: "replaces " + old.ID,
		Restrictions: &latchkey.Restrictions{
			AllowedIPs: []string{"203.0.113.11", "203.0.113.12", "203.0.113.13"},
			Scopes:     []string{"shipments:read", "shipments:track", "labels:read", "webhooks:write"},
		},
	})
	must(err)
	d.oldKey, d.newKey = old.ID, nk.ID

	leaked, err := r.svc.CreateAccessKey(ctx, sys, latchkey.DefaultAccount, d.oddApp, latchkey.NewAccessKey{
		Description: "batch-worker-credentials-for-the-us_east_2-canary-fleet-rotated-by-the-billing-platform-team"})
	must(err)
	d.exposedKey = leaked.ID
	soon := clk.Now().Add(30 * time.Minute)
	expired, err := r.svc.CreateAccessKey(ctx, sys, latchkey.DefaultAccount, d.oddApp, latchkey.NewAccessKey{ExpiresAt: &soon})
	must(err)
	mobile, err := r.svc.CreateAccessKey(ctx, sys, latchkey.DefaultAccount, d.mobileApp, latchkey.NewAccessKey{
		Description: "Android and iOS apps, release builds",
		Restrictions: &latchkey.Restrictions{
			AndroidApps:  []latchkey.AndroidApp{{PackageName: "com.example.courier", SHA1Fingerprint: "DA:39:A3:EE:5E:6B:4B:0D:32:55:BF:EF:95:60:18:90:AF:D8:07:09"}},
			IOSBundleIDs: []string{"com.example.courier", "com.example.courier.beta"},
		},
		ReportOnly: &latchkey.Restrictions{Scopes: []string{"shipments:read"}},
	})
	must(err)
	open, err := r.svc.CreateAccessKey(ctx, admin, latchkey.DefaultAccount, d.mobileApp, latchkey.NewAccessKey{Description: "internal test devices",
		Restrictions: &latchkey.Restrictions{AllowedReferrers: []string{"https://*.example.com/*"}}})
	must(err)

	// Forty minutes of traffic: three web instances move from the old
	// key to the new one at minutes 25, 30 and 35; the refusals come
	// with the longest codes.
	call := func(secret, ip, ua string, mod func(*verify.Request)) {
		req := &verify.Request{Secret: secret, IP: netip.MustParseAddr(ip), UserAgent: ua}
		if mod != nil {
			mod(req)
		}
		r.ver.Verify(req)
	}
	web := []string{"203.0.113.11", "203.0.113.12", "203.0.113.13"}
	for m := range 40 {
		for i, ip := range web {
			secret := old.Secret
			if m >= 25+5*i {
				secret = nk.Secret
			}
			for range 6 {
				call(secret, ip, longUA, nil)
			}
		}
		if m%10 == 3 {
			call(old.Secret, "198.51.100.99", longUA, nil)
			call(mobile.Secret, "198.51.100.23", "okhttp/4.12.0", func(q *verify.Request) { q.AndroidPackage = "com.example.courier.debug" })
			call(open.Secret, longIPv6, longUA, func(q *verify.Request) { q.Referrer = "https://qa.example.com/app" })
			call(open.Secret, longIPv6, longUA, func(q *verify.Request) { q.Referrer = "https://evil.example.net/" })
		}
		clk.Advance(time.Minute)
	}
	call(mobile.Secret, "198.51.100.23", "okhttp/4.12.0", func(q *verify.Request) {
		q.AndroidPackage, q.AndroidCert = "com.example.courier", "DA:39:A3:EE:5E:6B:4B:0D:32:55:BF:EF:95:60:18:90:AF:D8:07:09"
		q.Scope = "labels:write"
	})
	_, err = r.svc.MarkExposed(ctx, sys, leaked.ID,
		"https://github.com/example/billing-reconciliation/blob/4f0c2a9e1b7d3c5a8e6f0b2d4c6a8e0f1b3d5c7a/deploy/production/us_east_2/values.yaml#L42", true)
	must(err)
	call(leaked.Secret, longIPv6, longUA, nil)
	_ = expired

	// More audit events: a change of an application's defaults, a key
	// made and deleted.
	_, err = r.svc.UpdateApplication(ctx, admin, latchkey.DefaultAccount, d.mobileApp, nil,
		&latchkey.Restrictions{Scopes: []string{"shipments:read", "shipments:track"}, RateLimit: &latchkey.RateLimit{PerMinute: 600}})
	must(err)
	tmp, err := r.svc.CreateApplication(ctx, admin, latchkey.DefaultAccount, "scratch", "", nil)
	must(err)
	must(r.svc.DeleteApplication(ctx, admin, latchkey.DefaultAccount, tmp.Name))
	return d
}

// fitReport is evaluated in the page: what sticks out of a laptop screen.
// It lists horizontal scrolling, buttons and links of the page's actions
// outside the window, table cells whose content is wider than the cell,
// text cut short (an ellipsis or a line clamp) without its whole value as
// a title, and codes broken anywhere but after an underscore.
const fitReport = `(() => {
  const out = [];
  const de = document.documentElement, w = de.clientWidth;
  if (de.scrollWidth > w) out.push("the page is " + de.scrollWidth + " px wide in a " + w + " px window");
  const shown = el => el.getClientRects().length > 0;
  for (const el of document.querySelectorAll("main button, main a.button, main td.actions a")) {
    if (!shown(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.left < 0 || r.right > w) out.push("button " + JSON.stringify(el.textContent.trim()) + " spans " + Math.round(r.left) + " to " + Math.round(r.right) + " px");
  }
  for (const el of document.querySelectorAll("main td, main th")) {
    if (shown(el) && el.scrollWidth > el.clientWidth + 1) out.push("a cell is " + el.scrollWidth + " px wide inside " + el.clientWidth + " px: " + JSON.stringify(el.textContent.trim().slice(0, 60)));
  }
  for (const el of document.querySelectorAll("main .trunc, main .clamp")) {
    if (!shown(el) || getComputedStyle(el).display === "inline") continue;
    const cut = el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1;
    const text = el.textContent.trim().replace(/…$/, "");
    if (cut && !el.title.includes(text)) out.push("cut short without the whole value as its title: " + JSON.stringify(el.textContent.trim()));
  }
  for (const el of document.querySelectorAll("main .code")) {
    const chars = [];
    const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      for (let i = 0; i < n.length; i++) {
        const rg = document.createRange();
        rg.setStart(n, i); rg.setEnd(n, i + 1);
        const rs = rg.getClientRects();
        if (rs.length) chars.push([n.data[i], rs[0].top]);
      }
    }
    for (let i = 1; i < chars.length; i++) {
      if (chars[i][1] > chars[i-1][1] + 2 && chars[i-1][0] !== "_") out.push("the code " + JSON.stringify(el.textContent) + " breaks after " + JSON.stringify(chars[i-1][0]));
    }
  }
  return out.join("\n");
})()`

// TestBrowserConsoleFits opens every kind of console page with laptop
// data at 1024, 1280 and 1440 px, and at phone width (390 px), and fails
// on anything fitReport finds, with the pages' details closed and open.
// Its screenshots at 1280 px (fit-PAGE-1280.png) go to the artifacts
// directory.
func TestBrowserConsoleFits(t *testing.T) {
	clk := newClock()
	// 8 pages at 4 widths, twice each: over two minutes on a loaded machine
	r := newRig(t, rigOptions{now: clk.Now, timeout: 6 * time.Minute})
	d := seedLaptop(t, r, clk)
	r.signIn()
	pages := []struct{ name, path string }{
		{"key-list", "/console/keys"},
		{"audit", "/console/audit"},
		{"applications", "/console/applications"},
		{"application", appURL(d.mainApp)},
		{"application-unbreakable", appURL(d.oddApp)},
		{"key", keyURL(d.oldKey)},
		{"key-exposed", keyURL(d.exposedKey)},
		{"wizard", rotateURL(d.oldKey, 2, d.newKey)},
	}
	for _, width := range []int64{390, 1024, 1280, 1440} {
		r.do(chromedp.EmulateViewport(width, 900))
		for _, p := range pages {
			r.nav(p.path)
			if got := r.eval(fitReport); got != "" {
				t.Errorf("%s at %d px:\n%s", p.name, width, got)
			}
			if width == 1280 {
				r.shot(fmt.Sprintf("fit-%s-1280.png", p.name))
			}
			// and with every "Before and after", restrictions editor
			// and table of numbers open
			r.eval(`document.querySelectorAll("main details").forEach(d => d.open = true); ""`)
			if got := r.eval(fitReport); got != "" {
				t.Errorf("%s at %d px, its details open:\n%s", p.name, width, got)
			}
		}
	}
	if strings.Contains(r.html(), "lksk_") {
		t.Error("a page shows a secret")
	}
	r.checkProblems(nil)
}
