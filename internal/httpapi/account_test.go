package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
)

func accountNames(t *testing.T, r *resp) []string {
	t.Helper()
	var out struct{ Accounts []latchkey.Account }
	r.decode(t, &out)
	var names []string
	for _, a := range out.Accounts {
		names = append(names, a.Name)
	}
	return names
}

func wantAccounts(names ...string) func(*testing.T, *resp) {
	return func(t *testing.T, r *resp) {
		t.Helper()
		if diff := cmp.Diff(names, accountNames(t, r)); diff != "" {
			t.Errorf("accounts (-want +got):\n%s", diff)
		}
	}
}

func TestListAccounts(t *testing.T) {
	e := newEnv(t)
	e.run(t, []apiCase{
		{name: "operator sees every account", method: "GET", path: "/v1/accounts", as: bearer(e.operator),
			status: http.StatusOK, check: wantAccounts("default", "other")},
		{name: "admin sees its own", method: "GET", path: "/v1/accounts", as: bearer(e.admin),
			status: http.StatusOK, check: wantAccounts("default")},
		{name: "viewer sees its own", method: "GET", path: "/v1/accounts", as: bearer(e.viewer),
			status: http.StatusOK, check: wantAccounts("default")},
		{name: "admin of another account sees that one", method: "GET", path: "/v1/accounts", as: bearer(e.otherAdmin),
			status: http.StatusOK, check: wantAccounts("other")},
		{name: "no credential", method: "GET", path: "/v1/accounts", status: http.StatusUnauthorized, code: latchkey.EUNAUTHORIZED},
		{name: "verifier", method: "GET", path: "/v1/accounts", as: bearer(e.verifierP), status: http.StatusForbidden, code: latchkey.EFORBIDDEN},
	})
}

func TestCreateAccount(t *testing.T) {
	e := newEnv(t)
	e.run(t, []apiCase{
		{name: "operator creates", method: "POST", path: "/v1/accounts", as: bearer(e.operator), body: `{"name":"acme"}`,
			status: http.StatusCreated, check: func(t *testing.T, r *resp) {
				var a latchkey.Account
				r.decode(t, &a)
				if diff := cmp.Diff(latchkey.Account{Name: "acme", CreatedAt: start}, a); diff != "" {
					t.Errorf("account (-want +got):\n%s", diff)
				}
			}},
		{name: "the name is taken", method: "POST", path: "/v1/accounts", as: bearer(e.operator), body: `{"name":"acme"}`,
			status: http.StatusConflict, code: latchkey.EEXISTS},
		{name: "the default account exists", method: "POST", path: "/v1/accounts", as: bearer(e.operator), body: `{"name":"default"}`,
			status: http.StatusConflict, code: latchkey.EEXISTS},
		{name: "no name", method: "POST", path: "/v1/accounts", as: bearer(e.operator), body: `{}`,
			status: http.StatusBadRequest, code: latchkey.EINVALID},
		{name: "bad name", method: "POST", path: "/v1/accounts", as: bearer(e.operator), body: `{"name":"a b"}`,
			status: http.StatusBadRequest, code: latchkey.EINVALID},
		{name: "name too long", method: "POST", path: "/v1/accounts", as: bearer(e.operator), body: `{"name":"` + strings.Repeat("a", 65) + `"}`,
			status: http.StatusBadRequest, code: latchkey.EINVALID},
		{name: "admin may not", method: "POST", path: "/v1/accounts", as: bearer(e.admin), body: `{"name":"x1"}`,
			status: http.StatusForbidden, code: latchkey.EFORBIDDEN},
		{name: "viewer may not", method: "POST", path: "/v1/accounts", as: bearer(e.viewer), body: `{"name":"x2"}`,
			status: http.StatusForbidden, code: latchkey.EFORBIDDEN},
		{name: "no credential", method: "POST", path: "/v1/accounts", body: `{"name":"x3"}`,
			status: http.StatusUnauthorized, code: latchkey.EUNAUTHORIZED},
		{name: "the new account is listed", method: "GET", path: "/v1/accounts", as: bearer(e.operator),
			status: http.StatusOK, check: wantAccounts("acme", "default", "other")},
	})
}

func TestListAuditEvents(t *testing.T) {
	e := newEnv(t)
	// newEnv's setup wrote events at start; what follows is an hour later.
	e.clock.Advance(time.Hour)
	mid := e.clock.Now()
	e.run(t, []apiCase{
		{name: "create application", method: "POST", path: "/v1/applications", as: bearer(e.admin), body: `{"name":"billing"}`, status: http.StatusCreated},
		{name: "create key", method: "POST", path: "/v1/applications/billing/access-keys", as: bearer(e.admin), body: `{}`, status: http.StatusCreated},
		{name: "other account", method: "POST", path: "/v1/applications", as: bearer(e.otherAdmin), body: `{"name":"ledger"}`, status: http.StatusCreated},
	})
	keys := e.listKeys(t, "/v1/applications/billing/access-keys", e.admin)
	if len(keys) != 1 {
		t.Fatalf("%d keys", len(keys))
	}
	keyID := keys[0].ID

	type sel struct {
		actions []string
		targets []string
	}
	want := func(w sel) func(*testing.T, *resp) {
		return func(t *testing.T, r *resp) {
			t.Helper()
			var out struct {
				Events []latchkey.AuditEvent `json:"audit_events"`
			}
			r.decode(t, &out)
			var got sel
			for _, ev := range out.Events {
				got.actions = append(got.actions, ev.Action)
				got.targets = append(got.targets, ev.Target)
			}
			if diff := cmp.Diff(w, got, cmp.AllowUnexported(sel{})); diff != "" {
				t.Errorf("events, newest first (-want +got):\n%s", diff)
			}
		}
	}
	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return "/v1/audit-events?" + v.Encode()
	}
	get := func(name, path string, as cred, check func(*testing.T, *resp)) apiCase {
		return apiCase{name: name, method: "GET", path: path, as: bearer(as), status: http.StatusOK, check: check}
	}
	bad := func(name, path string, as cred, status int, code string) apiCase {
		a := noAuth
		if as.secret != "" {
			a = bearer(as)
		}
		return apiCase{name: name, method: "GET", path: path, as: a, status: status, code: code}
	}
	e.run(t, []apiCase{
		get("since, every account, operator", q("since", mid.Format(time.RFC3339)), e.operator,
			want(sel{[]string{"application.create", "access_key.create", "application.create"}, []string{"ledger", keyID, "billing"}})),
		get("until excludes the hour after", q("until", mid.Format(time.RFC3339), "action", "application.create"), e.operator,
			want(sel{})),
		get("admin sees its account only", q("since", mid.Format(time.RFC3339)), e.admin,
			want(sel{[]string{"access_key.create", "application.create"}, []string{keyID, "billing"}})),
		get("operator names an account", q("since", mid.Format(time.RFC3339), "account", "other"), e.operator,
			want(sel{[]string{"application.create"}, []string{"ledger"}})),
		get("by access key", q("access_key_id", keyID), e.viewer,
			want(sel{[]string{"access_key.create"}, []string{keyID}})),
		get("by application", q("application", "billing"), e.admin,
			want(sel{[]string{"access_key.create", "application.create"}, []string{keyID, "billing"}})),
		get("by actor", q("actor", "olga"), e.operator,
			want(sel{[]string{"application.create"}, []string{"ledger"}})),
		get("by action", q("action", "access_key.create", "since", mid.Format(time.RFC3339)), e.operator,
			want(sel{[]string{"access_key.create"}, []string{keyID}})),
		get("nothing matches", q("actor", "nobody"), e.operator, want(sel{})),
		bad("admin names another account", q("account", "other"), e.admin, http.StatusNotFound, latchkey.ENOTFOUND),
		bad("since is not RFC 3339", q("since", "yesterday"), e.operator, http.StatusBadRequest, latchkey.EINVALID),
		bad("until is not RFC 3339", q("until", "2026-13-01"), e.operator, http.StatusBadRequest, latchkey.EINVALID),
		bad("limit 0", q("limit", "0"), e.operator, http.StatusBadRequest, latchkey.EINVALID),
		bad("limit over 1000", q("limit", "1001"), e.operator, http.StatusBadRequest, latchkey.EINVALID),
		bad("limit not a number", q("limit", "ten"), e.operator, http.StatusBadRequest, latchkey.EINVALID),
		bad("page token not valid", q("page_token", "abc"), e.operator, http.StatusBadRequest, latchkey.EINVALID),
		bad("no credential", q(), cred{}, http.StatusUnauthorized, latchkey.EUNAUTHORIZED),
		bad("verifier", q(), e.verifierP, http.StatusForbidden, latchkey.EFORBIDDEN),
	})
}

func TestListAuditEventsPages(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"a1", "a2", "a3", "a4", "a5", "a6", "a7"} {
		e.mustApp(t, latchkey.DefaultAccount, name)
	}
	all := e.auditEvents(t)
	var wantIDs []int64
	for i := len(all) - 1; i >= 0; i-- {
		wantIDs = append(wantIDs, all[i].ID)
	}
	var gotIDs []int64
	pages := 0
	path := "/v1/audit-events?limit=3"
	for {
		r := e.do(t, "GET", path, bearer(e.operator), "")
		e.expect(t, apiCase{method: "GET", path: path, status: http.StatusOK}, r)
		var page struct {
			Events []latchkey.AuditEvent `json:"audit_events"`
			Next   string                `json:"next_page_token"`
		}
		r.decode(t, &page)
		pages++
		if len(page.Events) > 3 {
			t.Fatalf("page of %d events with limit=3", len(page.Events))
		}
		for _, ev := range page.Events {
			gotIDs = append(gotIDs, ev.ID)
		}
		if page.Next == "" {
			break
		}
		path = "/v1/audit-events?limit=3&page_token=" + url.QueryEscape(page.Next)
	}
	if diff := cmp.Diff(wantIDs, gotIDs); diff != "" {
		t.Errorf("event IDs across pages, newest first (-want +got):\n%s", diff)
	}
	if want := (len(wantIDs) + 2) / 3; pages != want {
		t.Errorf("%d pages, want %d", pages, want)
	}
}

// listKeys returns every key of a list endpoint, following pages.
func (e *env) listKeys(t *testing.T, path string, as cred) []latchkey.AccessKey {
	t.Helper()
	var all []latchkey.AccessKey
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	next := ""
	for {
		p := path
		if next != "" {
			p += sep + "page_token=" + url.QueryEscape(next)
		}
		r := e.do(t, "GET", p, bearer(as), "")
		e.expect(t, apiCase{method: "GET", path: p, status: http.StatusOK}, r)
		var page struct {
			Keys []latchkey.AccessKey `json:"access_keys"`
			Next string               `json:"next_page_token"`
		}
		r.decode(t, &page)
		all = append(all, page.Keys...)
		if page.Next == "" {
			return all
		}
		next = page.Next
	}
}
