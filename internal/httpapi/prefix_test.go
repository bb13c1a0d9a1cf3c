package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
)

// TestAccountKeyPrefix walks a key prefix through the API: refused when
// bad, set at creation and by update (audited), given to new application
// keys only, listed for scanners; prefixed and older lksk_ keys verify.
func TestAccountKeyPrefix(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	before := e.mustKey(t, latchkey.DefaultAccount, "billing")
	e.mustApp(t, latchkey.DefaultAccount, "roller")
	rollMe := e.mustKey(t, latchkey.DefaultAccount, "roller") // lksk_, rolled under the prefix below
	if !strings.HasPrefix(before.Secret, "lksk_") {
		t.Fatalf("a key made before any prefix starts %q", before.Secret[:5])
	}
	account := func(prefix string) func(*testing.T, *resp) {
		return func(t *testing.T, r *resp) {
			t.Helper()
			var a latchkey.Account
			r.decode(t, &a)
			if a.KeyPrefix != prefix {
				t.Errorf("key_prefix = %q, want %q", a.KeyPrefix, prefix)
			}
		}
	}
	cases := []apiCase{
		{name: "create with a prefix", method: "POST", path: "/v1/accounts", as: bearer(e.operator),
			body: `{"name":"acme","key_prefix":"acme_live_"}`, status: http.StatusCreated, check: account("acme_live_")},
		{name: "admin sets its account's prefix", method: "PATCH", path: "/v1/accounts/default", as: bearer(e.admin),
			body: `{"key_prefix":"dflt_live_"}`, status: http.StatusOK, check: account("dflt_live_")},
		{name: "viewer may not", method: "PATCH", path: "/v1/accounts/default", as: bearer(e.viewer),
			body: `{"key_prefix":"x_y_"}`, status: http.StatusForbidden, code: latchkey.EFORBIDDEN},
		{name: "another account's admin finds nothing", method: "PATCH", path: "/v1/accounts/default", as: bearer(e.otherAdmin),
			body: `{"key_prefix":"x_y_"}`, status: http.StatusNotFound, code: latchkey.ENOTFOUND},
		{name: "missing account", method: "PATCH", path: "/v1/accounts/nope", as: bearer(e.operator),
			body: `{"key_prefix":"x_y_"}`, status: http.StatusNotFound, code: latchkey.ENOTFOUND},
		{name: "unknown field", method: "PATCH", path: "/v1/accounts/default", as: bearer(e.operator),
			body: `{"prefix":"x_y_"}`, status: http.StatusBadRequest},
	}
	for _, bad := range []string{"a_", "Acme_", "acme", "1acme_", "acme-live_", "lksk_", "lkak_", "lkx_", "mylksk_", "whsec_", strings.Repeat("a", 21) + "_"} {
		body := fmt.Sprintf(`{"key_prefix":%q}`, bad)
		cases = append(cases,
			apiCase{name: "update refuses " + bad, method: "PATCH", path: "/v1/accounts/default", as: bearer(e.operator),
				body: body, status: http.StatusBadRequest, code: latchkey.EINVALID},
			apiCase{name: "create refuses " + bad, method: "POST", path: "/v1/accounts", as: bearer(e.operator),
				body: fmt.Sprintf(`{"name":"b%d","key_prefix":%q}`, len(cases), bad), status: http.StatusBadRequest, code: latchkey.EINVALID})
	}
	cases = append(cases,
		apiCase{name: "the prefix is kept after refusals", method: "GET", path: "/v1/accounts", as: bearer(e.admin),
			status: http.StatusOK, check: func(t *testing.T, r *resp) {
				var out struct{ Accounts []latchkey.Account }
				r.decode(t, &out)
				if len(out.Accounts) != 1 || out.Accounts[0].KeyPrefix != "dflt_live_" {
					t.Errorf("accounts = %+v", out.Accounts)
				}
			}},
		apiCase{name: "operator lists every prefix", method: "GET", path: "/v1/key-prefixes", as: bearer(e.operator),
			status: http.StatusOK, check: wantPrefixes("lksk_", "acme_live_", "dflt_live_")},
		apiCase{name: "a viewer lists its account's", method: "GET", path: "/v1/key-prefixes", as: bearer(e.viewer),
			status: http.StatusOK, check: wantPrefixes("lksk_", "dflt_live_")},
		apiCase{name: "another account lists lksk_ only", method: "GET", path: "/v1/key-prefixes", as: bearer(e.otherAdmin),
			status: http.StatusOK, check: wantPrefixes("lksk_")},
		apiCase{name: "no credential", method: "GET", path: "/v1/key-prefixes", status: http.StatusUnauthorized, code: latchkey.EUNAUTHORIZED},
	)
	e.run(t, cases)

	var updates int
	for _, ev := range e.auditEvents(t) {
		if ev.Action == latchkey.ActionAccountUpdate {
			updates++
			if ev.Actor != "alice" || !strings.Contains(string(ev.Before), `"name":"default"`) || strings.Contains(string(ev.Before), "dflt_live_") ||
				!strings.Contains(string(ev.After), `"key_prefix":"dflt_live_"`) {
				t.Errorf("account.update event: actor %s before %s after %s", ev.Actor, ev.Before, ev.After)
			}
		}
	}
	if updates != 1 {
		t.Errorf("%d account.update events, want 1 (refusals are not audited)", updates)
	}

	// New keys carry the prefix; the old lksk_ key is unchanged and both verify.
	after := e.mustKey(t, latchkey.DefaultAccount, "billing")
	if !strings.HasPrefix(after.Secret, "dflt_live_") || len(after.Secret) != len("dflt_live_")+46 {
		t.Fatalf("a key made after the prefix was set starts %q (%d characters)", after.Secret[:10], len(after.Secret))
	}
	for _, k := range []struct {
		name, secret, id string
	}{{"lksk_ key made before", before.Secret, before.ID}, {"prefixed key", after.Secret, after.ID}} {
		t.Run("verify "+k.name, func(t *testing.T) {
			r := e.do(t, "POST", "/v1/verify", bearer(e.verifierP), jsonBody(t, map[string]string{"key": k.secret}))
			var got httpapi.VerifyResponse
			r.decode(t, &got)
			if r.status != http.StatusOK || !got.Valid || got.AccessKeyID != k.id {
				t.Errorf("verify: %d %+v", r.status, got)
			}
		})
	}
	t.Run("a changed prefix is refused offline", func(t *testing.T) {
		forged := "acme_live_" + after.Secret[len("dflt_live_"):]
		r := e.do(t, "POST", "/v1/verify", bearer(e.verifierP), jsonBody(t, map[string]string{"key": forged}))
		var got httpapi.VerifyResponse
		r.decode(t, &got)
		if got.Valid || got.Code != latchkey.CodeMalformed {
			t.Errorf("verify of a re-prefixed secret: %+v, want %s", got, latchkey.CodeMalformed)
		}
	})

	// The URL tripwire: a prefixed secret in a query string is refused and
	// its key flagged exposed; the answer does not echo it.
	t.Run("tripwire", func(t *testing.T) {
		r := e.do(t, "GET", "/v1/accounts?q="+after.Secret, bearer(e.admin), "")
		if r.status != http.StatusBadRequest || strings.Contains(string(r.body), after.Secret[14:]) {
			t.Fatalf("status %d body %s", r.status, strings.ReplaceAll(string(r.body), after.Secret, "{S}"))
		}
		if k := e.keyStatus(t, after.ID); k.Exposed == nil {
			t.Error("the prefixed key in the URL was not flagged exposed")
		}
	})
	// A roll makes the successor under the prefix.
	t.Run("roll", func(t *testing.T) {
		r := e.do(t, "POST", "/v1/access-keys/"+rollMe.ID+"/roll", bearer(e.admin), `{}`)
		if r.status != http.StatusCreated {
			t.Fatalf("roll: %d %s", r.status, r.body)
		}
		var out struct {
			AccessKey struct {
				Secret string `json:"secret_access_key"`
			} `json:"access_key"`
		}
		r.decode(t, &out)
		if !strings.HasPrefix(out.AccessKey.Secret, "dflt_live_") {
			t.Errorf("the rolled key's secret starts %q, want dflt_live_", out.AccessKey.Secret[:10])
		}
	})
	// A leak report with a prefixed secret deactivates its key.
	t.Run("leak report", func(t *testing.T) {
		e.mustApp(t, latchkey.DefaultAccount, "orders")
		k := e.mustKey(t, latchkey.DefaultAccount, "orders")
		body := fmt.Sprintf(`{"findings":[{"secret":%q,"where":"a paste"}]}`, k.Secret)
		r := e.do(t, "POST", "/v1/leaks", bearer(e.admin), body)
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if got := e.keyStatus(t, k.ID); got.Status != latchkey.StatusInactive || got.Exposed == nil {
			t.Errorf("reported prefixed key: status %s, exposed %+v", got.Status, got.Exposed)
		}
	})
}

func wantPrefixes(want ...string) func(*testing.T, *resp) {
	return func(t *testing.T, r *resp) {
		t.Helper()
		var out struct {
			KeyPrefixes []string `json:"key_prefixes"`
		}
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatal(err)
		}
		if strings.Join(out.KeyPrefixes, " ") != strings.Join(want, " ") {
			t.Errorf("key_prefixes = %v, want %v", out.KeyPrefixes, want)
		}
	}
}
