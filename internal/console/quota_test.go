package console

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

// flashOf follows a form's redirect and returns the page's text, with
// entities decoded.
func flashOf(t *testing.T, b *browser, p page) string {
	t.Helper()
	if p.status != http.StatusSeeOther {
		t.Fatalf("form answered %d, want a redirect:\n%s", p.status, p.body)
	}
	return html.UnescapeString(b.get(p.location()).body)
}

// quotaEvents returns the quota_update audit events of key id, oldest
// first, as (actor, remaining before, remaining after).
func quotaEvents(t *testing.T, e *env, id string) [][3]string {
	t.Helper()
	evs, _, err := e.svc.ListAuditEvents(context.Background(), e.op, latchkey.AuditFilter{AccessKeyID: id, Action: latchkey.ActionQuotaUpdate, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	rem := func(raw json.RawMessage) string {
		var q *latchkey.Quota
		if len(raw) == 0 || json.Unmarshal(raw, &q) != nil || q == nil {
			return "-"
		}
		return strings.TrimSpace(number(q.Remaining))
	}
	var out [][3]string
	for i := len(evs) - 1; i >= 0; i-- {
		out = append(out, [3]string{evs[i].Actor, rem(evs[i].Before), rem(evs[i].After)})
	}
	return out
}

// TestQuotaCard drives the quota card of a key's page as an admin: bad
// input is refused with a message naming the field and changes nothing;
// set, calls, top-up, reset and remove each go through the service, are
// audited as the admin, and show on the page (remaining exact on this
// single replica, with what the verifier holds leased counted as left),
// with the history newest first.
func TestQuotaCard(t *testing.T) {
	e := newEnv(t)
	e.ver.Quotas, e.ver.QuotaLease = e.svc, 1000
	ctx := context.Background()
	k := e.app("web")
	alice, err := e.svc.CreatePrincipal(ctx, e.op, "default", "alice", latchkey.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustSignIn(alice.AccessKey.ID, alice.AccessKey.Secret)
	keyPage := "/console/keys/" + k.ID

	// No quota yet: the card offers to set one.
	p := b.get(keyPage)
	if !strings.Contains(p.body, `id="quota"`) || !strings.Contains(p.body, "No quota: calls with this key are not metered.") || !strings.Contains(p.body, `id="quota-set"`) {
		t.Fatal("a key without a quota: no quota card with a set form")
	}

	bad := []struct {
		name string
		path string
		form url.Values
		want string
	}{
		{"remaining not a number", "/quota", url.Values{"mode": {"set"}, "remaining": {"lots"}}, `Remaining "lots" must be a whole number from 0 to`},
		{"remaining negative", "/quota", url.Values{"mode": {"set"}, "remaining": {"-5"}}, `Remaining "-5" must be a whole number`},
		{"remaining too large", "/quota", url.Values{"mode": {"set"}, "remaining": {"99999999999999999999"}}, "must be a whole number"},
		{"refill amount without interval", "/quota", url.Values{"mode": {"set"}, "remaining": {"10"}, "refill_amount": {"10"}}, "Give both a refill amount and a refill interval"},
		{"bad interval", "/quota", url.Values{"mode": {"set"}, "remaining": {"10"}, "refill_amount": {"10"}, "refill_interval": {"fortnightly"}}, `Refill interval "fortnightly" is not an interval`},
		{"interval too short", "/quota", url.Values{"mode": {"set"}, "remaining": {"10"}, "refill_amount": {"10"}, "refill_interval": {"30s"}}, `Refill interval "30s" is not an interval`},
		{"refill amount zero", "/quota", url.Values{"mode": {"set"}, "remaining": {"10"}, "refill_amount": {"0"}, "refill_interval": {"24h"}}, `Refill amount "0" must be a whole number from 1`},
		{"bad low threshold", "/quota", url.Values{"mode": {"set"}, "remaining": {"10"}, "low_threshold": {"1.5"}}, `Low threshold "1.5" must be a whole number`},
		{"no mode", "/quota", url.Values{"remaining": {"10"}}, "did not say what to do with the quota"},
		{"reset without a quota", "/quota", url.Values{"mode": {"reset"}, "remaining": {"10"}}, "has no quota to reset"},
		{"remove without a quota", "/quota", url.Values{"mode": {"remove"}}, "has no quota: nothing was removed"},
		{"top-up without a quota", "/quota/top-up", url.Values{"amount": {"10"}}, "has no quota"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			got := flashOf(t, b, b.submit(keyPage, keyPage+tt.path, tt.form))
			if !strings.Contains(got, tt.want) {
				t.Errorf("page does not say %q", tt.want)
			}
			if strings.Contains(got, "Internal error") {
				t.Error("an internal error page")
			}
			if e.get(k.ID).Quota != nil {
				t.Fatal("a refused form set a quota")
			}
		})
	}
	if n := len(quotaEvents(t, e, k.ID)); n != 0 {
		t.Fatalf("refused forms wrote %d audit events", n)
	}

	// Set 100 refilled to 100 every 24h, threshold 10.
	got := flashOf(t, b, b.submit(keyPage, keyPage+"/quota", url.Values{"mode": {"set"}, "remaining": {"100"},
		"refill_amount": {"100"}, "refill_interval": {"24h"}, "low_threshold": {"10"}}))
	if !strings.Contains(got, "The quota of "+k.ID+" is set: 100 calls left now, refilled to 100 every day.") {
		t.Fatalf("set: no confirmation\n%s", got)
	}
	// Three calls: the verifier leases from the ledger, and the page
	// still says exactly what is left.
	for range 3 {
		if c := e.call(k.Secret, "203.0.113.7", "client/1"); c != latchkey.CodeValid {
			t.Fatalf("call: %s", c)
		}
	}
	page := b.get(keyPage).body
	if !strings.Contains(page, `data-quota-remaining="97"`) {
		t.Errorf("after 3 calls of 100 the card does not say 97 left: %s", regexp.MustCompile(`data-quota-remaining="\d+"`).FindString(page))
	}
	if !strings.Contains(page, "held leased by replicas") {
		t.Error("the card does not say what the verifier holds leased")
	}
	for _, want := range []string{"back to 100 every day", "Next refill", "2026-03-05", "Low threshold", ">10 <"} {
		if !strings.Contains(page, want) {
			t.Errorf("the card lacks %q", want)
		}
	}
	if !strings.Contains(page, `<meter class="quota-bar" min="0" max="100" value="97"`) {
		t.Error("no bar of 97 out of 100")
	}

	// Top up by 50: 147, the calls' lease is not lost.
	if got := flashOf(t, b, b.submit(keyPage, keyPage+"/quota/top-up", url.Values{"amount": {"50"}})); !strings.Contains(got, "topped up by 50: 147 calls left now") {
		t.Fatalf("top-up: no confirmation\n%s", got)
	}
	for range 2 {
		if c := e.call(k.Secret, "203.0.113.7", "client/1"); c != latchkey.CodeValid {
			t.Fatalf("call after top-up: %s", c)
		}
	}
	if page := b.get(keyPage).body; !strings.Contains(page, `data-quota-remaining="145"`) {
		t.Errorf("after a top-up and 2 calls: %s, want 145", regexp.MustCompile(`data-quota-remaining="\d+"`).FindString(page))
	}
	// A top-up of nothing, or of text, is refused.
	for _, amount := range []string{"0", "ten", ""} {
		if got := flashOf(t, b, b.submit(keyPage, keyPage+"/quota/top-up", url.Values{"amount": {amount}})); !strings.Contains(got, "Top-up amount") || !strings.Contains(got, "must be a whole number from 1") {
			t.Errorf("top-up %q: not explained", amount)
		}
	}
	// Reset to 5 keeps the schedule and threshold.
	if got := flashOf(t, b, b.submit(keyPage, keyPage+"/quota", url.Values{"mode": {"reset"}, "remaining": {"5"}})); !strings.Contains(got, "is reset: 5 calls left now") {
		t.Fatalf("reset: no confirmation\n%s", got)
	}
	if q := quotaNow(t, e, k.ID); q == nil || q.Remaining != 5 || q.Refill == nil || q.Refill.Amount != 100 || q.LowThreshold != 10 {
		t.Fatalf("after reset: %+v", q)
	}
	page = b.get(keyPage).body
	var kinds []string
	for _, m := range regexp.MustCompile(`<tr data-kind="([a-z_]+)">`).FindAllStringSubmatch(page, -1) {
		kinds = append(kinds, m[1])
	}
	if strings.Join(kinds, " ") != "set top_up set" {
		t.Errorf("history rows %q, want newest first: set top_up set", kinds)
	}
	if n := strings.Count(page, `title="alice">alice</span>`); n < 3 {
		t.Errorf("history names alice %d times, want 3", n)
	}

	// Remove.
	if got := flashOf(t, b, b.submit(keyPage, keyPage+"/quota", url.Values{"mode": {"remove"}})); !strings.Contains(got, "quota of "+k.ID+" is removed") {
		t.Fatal("remove: no confirmation")
	}
	if e.get(k.ID).Quota != nil {
		t.Fatal("the quota is still there")
	}
	want := [][3]string{{"alice", "-", "100"}, {"alice", "97", "147"}, {"alice", "145", "5"}, {"alice", "5", "-"}}
	if got := quotaEvents(t, e, k.ID); !equalRows(got, want) {
		t.Errorf("audit (actor, before, after) = %v, want %v", got, want)
	}
}

// quotaNow is the key's quota as GET .../quota reads it at the test's
// clock (a key's own read presents it at the store's, the wall clock).
func quotaNow(t *testing.T, e *env, id string) *latchkey.Quota {
	t.Helper()
	v, err := e.svc.GetQuota(context.Background(), e.op, id)
	if latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return v.Quota
}

func equalRows(a, b [][3]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestQuotaCardRoles: a viewer sees the budget and its history and no
// form, and a change they post is refused and changes nothing; the quota
// forms refuse a missing or foreign CSRF token and a cross-site request;
// a canary key's page has no quota card, and a quota posted for it is
// refused with the reason.
func TestQuotaCardRoles(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	k := e.app("web")
	if _, err := e.svc.UpdateAccessKey(ctx, e.op, k.ID, latchkey.AccessKeyUpdate{Quota: &latchkey.Quota{Remaining: 40, Refill: &latchkey.Refill{Amount: 40, Interval: "monthly:1"}}}); err != nil {
		t.Fatal(err)
	}
	canary, err := e.svc.CreateAccessKey(ctx, e.op, latchkey.DefaultAccount, "web", latchkey.NewAccessKey{Description: "canary", Canary: true})
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := e.svc.CreatePrincipal(ctx, e.op, "default", "vera", latchkey.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	keyPage := "/console/keys/" + k.ID

	v := e.browser()
	v.mustSignIn(viewer.AccessKey.ID, viewer.AccessKey.Secret)
	page := v.get(keyPage).body
	for _, want := range []string{`data-quota-remaining="40"`, "back to 40 on day 1 of each month", `<tr data-kind="set">`, "2026-04-01"} {
		if !strings.Contains(page, want) {
			t.Errorf("viewer's card lacks %q", want)
		}
	}
	if n := strings.Count(page, `method="post"`); n != 1 {
		t.Errorf("viewer sees %d forms, want only sign-out", n)
	}
	for _, f := range []struct {
		path string
		form url.Values
	}{
		{"/quota/top-up", url.Values{"amount": {"10"}}},
		{"/quota", url.Values{"mode": {"reset"}, "remaining": {"1000"}}},
		{"/quota", url.Values{"mode": {"set"}, "remaining": {"1000"}}},
		{"/quota", url.Values{"mode": {"remove"}}},
	} {
		if got := flashOf(t, v, v.submit(keyPage, keyPage+f.path, f.form)); !strings.Contains(got, "may not change anything") {
			t.Errorf("viewer's %s %v: not refused with a reason", f.path, f.form)
		}
	}

	a := e.browser()
	a.mustSignIn(e.opID, e.opSecret)
	valid := a.token(keyPage)
	other := e.browser()
	other.mustSignIn(e.opID, e.opSecret)
	otherToken := other.token("/console/applications")
	for _, tt := range []struct {
		name   string
		token  string
		header map[string]string
	}{
		{"no token", "", nil},
		{"another session's token", otherToken, nil},
		{"cross-site", valid, map[string]string{"Sec-Fetch-Site": "cross-site"}},
	} {
		for h, val := range tt.header {
			a.header.Set(h, val)
		}
		for _, path := range []string{keyPage + "/quota", keyPage + "/quota/top-up"} {
			form := url.Values{"mode": {"reset"}, "remaining": {"1000"}, "amount": {"1000"}}
			if tt.token != "" {
				form.Set("csrf", tt.token)
			}
			if p := a.post(path, form); p.status != http.StatusForbidden {
				t.Errorf("%s: POST %s answered %d, want 403", tt.name, path, p.status)
			}
		}
		a.header = http.Header{}
	}
	if q := quotaNow(t, e, k.ID); q == nil || q.Remaining != 40 {
		t.Fatalf("refused posts changed the quota: %+v", q)
	}
	if got := quotaEvents(t, e, k.ID); len(got) != 1 {
		t.Fatalf("refused posts were audited: %v", got)
	}

	// A canary: no card, and a quota is refused.
	canaryPage := "/console/keys/" + canary.ID
	if page := a.get(canaryPage).body; strings.Contains(page, `id="quota"`) || strings.Contains(page, "/quota") {
		t.Error("a canary's page shows the quota card")
	}
	if got := flashOf(t, a, a.submit(canaryPage, canaryPage+"/quota", url.Values{"mode": {"set"}, "remaining": {"10"}})); !strings.Contains(got, "a canary key never authorizes anything") {
		t.Error("a quota for a canary: not refused with the reason")
	}
	if e.get(canary.ID).Quota != nil {
		t.Fatal("a canary got a quota")
	}
}

// TestQuotaCardRefill: after the refill boundary the card shows the new
// period's budget and the next boundary.
func TestQuotaCardRefill(t *testing.T) {
	e := newEnv(t)
	e.ver.Quotas = e.svc
	ctx := context.Background()
	k := e.app("web")
	if _, err := e.svc.UpdateAccessKey(ctx, e.op, k.ID, latchkey.AccessKeyUpdate{Quota: &latchkey.Quota{Remaining: 3, Refill: &latchkey.Refill{Amount: 20, Interval: "1h"}}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		e.call(k.Secret, "203.0.113.7", "c")
	}
	if c := e.call(k.Secret, "203.0.113.7", "c"); c != latchkey.CodeQuotaExceeded {
		t.Fatalf("4th call of 3: %s", c)
	}
	b := e.browser()
	b.mustSignIn(e.opID, e.opSecret)
	if page := b.get("/console/keys/" + k.ID).body; !strings.Contains(page, `data-quota-remaining="0"`) || !strings.Contains(page, `<tr data-kind="exhausted">`) {
		t.Error("a spent quota: the card does not say 0 left and exhausted")
	}
	e.clock.Advance(time.Hour)
	if c := e.call(k.Secret, "203.0.113.7", "c"); c != latchkey.CodeValid {
		t.Fatalf("after the refill: %s", c)
	}
	b = e.browser() // the first session idled out
	b.mustSignIn(e.opID, e.opSecret)
	page := b.get("/console/keys/" + k.ID).body
	if !strings.Contains(page, `data-quota-remaining="19"`) || !strings.Contains(page, `<tr data-kind="refill">`) || !strings.Contains(page, "2026-03-04 12:00") {
		t.Errorf("after the refill: %s; refill row %v", regexp.MustCompile(`data-quota-remaining="\d+"`).FindString(page), strings.Contains(page, `data-kind="refill"`))
	}
}
