package httpapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
)

func TestVerifyEndpoint(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	e.mustApp(t, latchkey.DefaultAccount, "orders")
	valid := e.mustKey(t, latchkey.DefaultAccount, "billing")
	inactive := e.mustKey(t, latchkey.DefaultAccount, "billing")
	e.mustDeactivate(t, inactive.ID)
	exp := start.Add(time.Hour)
	expiring, err := e.svc.CreateAccessKey(t.Context(), e.sys(), latchkey.DefaultAccount, "orders", latchkey.NewAccessKey{ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	e.mustApp(t, "other", "ledger")
	otherKey := e.mustKey(t, "other", "ledger")

	decision := func(want httpapi.VerifyResponse) func(*testing.T, *resp) {
		return func(t *testing.T, r *resp) {
			t.Helper()
			var got httpapi.VerifyResponse
			r.decode(t, &got)
			if want.Message == "" {
				want.Message = httpapi.Message(want.Code)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		}
	}
	v := func(name string, as cred, body string, want httpapi.VerifyResponse) apiCase {
		return apiCase{name: name, method: "POST", path: "/v1/verify", as: bearer(as), body: body, status: http.StatusOK, check: decision(want)}
	}
	key := func(secret string, kv ...string) string {
		m := map[string]string{"key": secret}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return jsonBody(t, m)
	}
	ok := httpapi.VerifyResponse{Valid: true, Code: latchkey.CodeValid, AccessKeyID: valid.ID, Application: "billing", Account: "default"}
	notFound := httpapi.VerifyResponse{Code: latchkey.CodeNotFound}
	bad := func(name string, as auth, body string, status int, code string) apiCase {
		return apiCase{name: name, method: "POST", path: "/v1/verify", as: as, body: body, status: status, code: code}
	}
	e.run(t, []apiCase{
		v("valid, verifier", e.verifierP, key(valid.Secret), ok),
		v("valid, with its ID and the client's details", e.verifierP, key(valid.Secret, "access_key_id", valid.ID, "ip", "2001:db8::1", "user_agent", "curl", "referrer", "https://example.com/"), ok),
		v("valid, viewer", e.viewer, key(valid.Secret), ok),
		v("valid, admin", e.admin, key(valid.Secret), ok),
		v("valid, operator", e.operator, key(valid.Secret), ok),
		v("wrong access key ID", e.verifierP, key(valid.Secret, "access_key_id", inactive.ID), notFound),
		v("unknown key", e.verifierP, key(newSecret(t)), notFound),
		v("malformed key", e.verifierP, key("lksk_abc"), httpapi.VerifyResponse{Code: latchkey.CodeMalformed}),
		v("checksum wrong", e.verifierP, key(flipLast(valid.Secret)), httpapi.VerifyResponse{Code: latchkey.CodeMalformed}),
		v("no key", e.verifierP, `{}`, httpapi.VerifyResponse{Code: latchkey.CodeMissing}),
		v("inactive", e.verifierP, key(inactive.Secret),
			httpapi.VerifyResponse{Code: latchkey.CodeInactive, AccessKeyID: inactive.ID, Application: "billing", Account: "default"}),
		v("before expiry", e.verifierP, key(expiring.Secret),
			httpapi.VerifyResponse{Valid: true, Code: latchkey.CodeValid, AccessKeyID: expiring.ID, Application: "orders", Account: "default"}),
		v("another account's key is not found, without identity", e.verifierP, key(otherKey.Secret), notFound),
		v("another account's key, its admin", e.otherAdmin, key(otherKey.Secret),
			httpapi.VerifyResponse{Valid: true, Code: latchkey.CodeValid, AccessKeyID: otherKey.ID, Application: "ledger", Account: "other"}),
		v("another account's key, operator", e.operator, key(otherKey.Secret),
			httpapi.VerifyResponse{Valid: true, Code: latchkey.CodeValid, AccessKeyID: otherKey.ID, Application: "ledger", Account: "other"}),
		v("a principal key is not an application key", e.verifierP, key(e.admin.secret), notFound),
		bad("ip not an address", bearer(e.verifierP), key(valid.Secret, "ip", "localhost"), http.StatusBadRequest, latchkey.EINVALID),
		bad("no credential", noAuth, key(valid.Secret), http.StatusUnauthorized, latchkey.EUNAUTHORIZED),
		bad("an application key as the credential", bearer(cred{valid.ID, valid.Secret}), key(valid.Secret), http.StatusUnauthorized, latchkey.EUNAUTHORIZED),
		bad("body over 16 KiB", bearer(e.verifierP), key(strings.Repeat("a", httpapi.MaxVerifyBodyBytes)), http.StatusRequestEntityTooLarge, latchkey.ETOOLARGE),
	})
	e.clock.Advance(time.Hour)
	e.run(t, []apiCase{
		v("at the expiry", e.verifierP, key(expiring.Secret),
			httpapi.VerifyResponse{Code: latchkey.CodeExpired, AccessKeyID: expiring.ID, Application: "orders", Account: "default"}),
	})

	t.Run("usage recorded", func(t *testing.T) {
		if err := e.rec.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		k := e.storedKey(t, valid.ID)
		// Valid five times; the wrong-ID call is no use. The last call
		// gave no ip or user_agent, and the verifier's own are not the
		// client's.
		if diff := cmp.Diff(&latchkey.Use{At: start}, k.LastUsed); k.UseCount != 5 || diff != "" {
			t.Errorf("use count %d, last used (-want +got):\n%s", k.UseCount, diff)
		}
		if k := e.storedKey(t, inactive.ID); k.RejectCount != 1 || k.LastRejected == nil || k.LastRejected.Reason != latchkey.CodeInactive {
			t.Errorf("inactive key: reject count %d, last rejected %+v", k.RejectCount, k.LastRejected)
		}
		if k := e.storedKey(t, expiring.ID); k.UseCount != 1 || k.RejectCount != 1 || k.LastRejected.Reason != latchkey.CodeExpired {
			t.Errorf("expiring key: %d uses, %d rejections, last rejected %+v", k.UseCount, k.RejectCount, k.LastRejected)
		}
	})
}

func TestHealth(t *testing.T) {
	e := newEnv(t)
	status := func(want string) func(*testing.T, *resp) {
		return func(t *testing.T, r *resp) {
			var got struct{ Status string }
			r.decode(t, &got)
			if got.Status != want {
				t.Errorf("status %q, want %q", got.Status, want)
			}
		}
	}
	e.run(t, []apiCase{
		{name: "healthz", method: "GET", path: "/healthz", status: http.StatusOK, check: status("ok")},
		{name: "readyz without a check", method: "GET", path: "/readyz", status: http.StatusOK, check: status("ready")},
		{name: "openapi.json", method: "GET", path: "/v1/openapi.json", status: http.StatusOK, check: func(t *testing.T, r *resp) {
			if string(r.body) != string(httpapi.OpenAPI()) {
				t.Error("served document differs from the embedded one")
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		}},
		{name: "healthz ignores credentials", method: "GET", path: "/healthz", as: bearer(cred{secret: "garbage"}), status: http.StatusOK},
	})

	t.Run("readyz when the store is down", func(t *testing.T) {
		api := &httpapi.Server{Service: e.svc, Verifier: e.verifier,
			Ready: func(ctx context.Context) error { return latchkey.Unavailable(errors.New("dial tcp: refused")) }}
		ts := httptest.NewServer(api.Handler())
		t.Cleanup(ts.Close)
		res, err := ts.Client().Get(ts.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", res.StatusCode)
		}
		var body httpapi.ErrorBody
		r := &resp{status: res.StatusCode, header: res.Header}
		if r.body, err = io.ReadAll(res.Body); err != nil {
			t.Fatal(err)
		}
		r.decode(t, &body)
		if body.Error.Code != latchkey.EUNAVAILABLE || strings.Contains(body.Error.Message, "refused") {
			t.Errorf("error %+v: want ServiceUnavailable without the cause", body.Error)
		}
		checkSchema(t, "GET", "/readyz", r)
	})
}

// TestVerifyMethodAndPath: /v1/verify given a method and path judges the
// call with the server's scope rules, in canonical form, as the gateway
// surfaces do.
func TestVerifyMethodAndPath(t *testing.T) {
	e := newEnv(t)
	var rules []httpapi.ScopeRule
	for _, s := range []string{"* /admin/* admin:all", "GET /shipments/* shipments:read"} {
		r, err := httpapi.ParseScopeRule(s)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, r)
	}
	e.api.ScopeRules = rules
	e.mustApp(t, latchkey.DefaultAccount, "shipping")
	k, err := e.svc.CreateAccessKey(t.Context(), e.sys(), latchkey.DefaultAccount, "shipping",
		latchkey.NewAccessKey{Restrictions: &latchkey.Restrictions{Scopes: []string{"shipments:read"}}})
	if err != nil {
		t.Fatal(err)
	}
	leaked := e.mustKey(t, latchkey.DefaultAccount, "shipping")
	call := func(method, path string) string {
		return jsonBody(t, map[string]string{"key": k.Secret, "method": method, "path": path, "ip": "203.0.113.7"})
	}
	code := func(c latchkey.Code) func(*testing.T, *resp) {
		return func(t *testing.T, r *resp) {
			t.Helper()
			var got httpapi.VerifyResponse
			r.decode(t, &got)
			if got.Code != c || got.Valid != (c == latchkey.CodeValid) {
				t.Errorf("decision %+v, want %s", got, c)
			}
		}
	}
	v := func(name, body string, want latchkey.Code) apiCase {
		return apiCase{name: name, method: "POST", path: "/v1/verify", as: bearer(e.verifierP), body: body, status: http.StatusOK, check: code(want)}
	}
	bad := func(name, body string) apiCase {
		return apiCase{name: name, method: "POST", path: "/v1/verify", as: bearer(e.verifierP), body: body, status: http.StatusBadRequest, code: latchkey.EINVALID}
	}
	e.run(t, []apiCase{
		v("allowed", call("GET", "/shipments/1?page=2"), latchkey.CodeValid),
		v("HEAD as GET", call("HEAD", "/shipments/1"), latchkey.CodeValid),
		v("forbidden path", call("GET", "/admin/users"), latchkey.CodeScopeDenied),
		v("encoded letter", call("GET", "/%61dmin/users"), latchkey.CodeScopeDenied),
		v("upper case", call("GET", "/ADMIN/users"), latchkey.CodeScopeDenied),
		v("method no rule names", call("DELETE", "/shipments/1"), latchkey.CodeScopeDenied),
		v("dot segments across rules", call("GET", "/shipments/../admin/users"), latchkey.CodeAmbiguousPath),
		v("encoded slash", call("GET", "/shipments%2F..%2Fadmin"), latchkey.CodeAmbiguousPath),
		v("lower-case method", call("get", "/shipments/1"), latchkey.CodeAmbiguousPath),
		v("_method parameter", call("POST", "/shipments/1?_method=GET"), latchkey.CodeAmbiguousPath),
		v("key in the path's query", call("GET", "/shipments/1?api_key="+leaked.Secret), latchkey.CodeCredentialsInURL),
		bad("scope and path", jsonBody(t, map[string]string{"key": k.Secret, "scope": "x", "method": "GET", "path": "/x"})),
		bad("path without method", jsonBody(t, map[string]string{"key": k.Secret, "path": "/x"})),
		bad("method without path", jsonBody(t, map[string]string{"key": k.Secret, "method": "GET"})),
	})
	if got := e.storedKey(t, leaked.ID); got.Exposed == nil || got.Exposed.Where != "URL of a GET request to /shipments/1" {
		t.Errorf("a key in the described call's URL: exposed %+v", got.Exposed)
	}
}
