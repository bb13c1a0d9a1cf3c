package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

func TestAuthCredentialForms(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	appKey := e.mustKey(t, latchkey.DefaultAccount, "billing")
	unknown := newSecret(t)
	inactive := e.newPrincipal(t, latchkey.DefaultAccount, "ingrid", latchkey.RoleAdmin)
	e.mustDeactivate(t, inactive.id)
	expiring := e.newPrincipal(t, latchkey.DefaultAccount, "edgar", latchkey.RoleAdmin)
	exp := start.Add(time.Hour)
	if _, err := e.svc.UpdateAccessKey(t.Context(), e.sys(), expiring.id, latchkey.AccessKeyUpdate{ExpiresAt: &exp}); err != nil {
		t.Fatal(err)
	}
	deleted := e.newPrincipal(t, latchkey.DefaultAccount, "dora", latchkey.RoleAdmin)
	e.mustDeactivate(t, deleted.id)
	if err := e.svc.DeleteAccessKey(t.Context(), e.sys(), deleted.id, false); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour) // expiring is now past its expiry

	const path = "/v1/accounts"
	ok := func(name string, as auth) apiCase {
		return apiCase{name: name, method: "GET", path: path, as: as, status: http.StatusOK}
	}
	denied := func(name string, as auth) apiCase {
		return apiCase{name: name, method: "GET", path: path, as: as, status: http.StatusUnauthorized, code: latchkey.EUNAUTHORIZED,
			check: func(t *testing.T, r *resp) {
				t.Helper()
				for _, scheme := range []string{"Bearer", "Basic"} {
					if !strings.Contains(r.header.Get("WWW-Authenticate"), scheme) {
						t.Errorf("WWW-Authenticate %q does not offer %s", r.header.Get("WWW-Authenticate"), scheme)
					}
				}
			}}
	}
	e.run(t, []apiCase{
		ok("bearer", bearer(e.operator)),
		ok("bearer scheme in lower case", header("Authorization", "bearer "+e.operator.secret)),
		ok("basic with the key's ID", basic(e.operator)),
		ok("basic with an empty ID as curl -u :SECRET sends", basicNoID(e.operator)),
		ok("X-Api-Key", apiKey(e.operator)),
		denied("Authorization and X-Api-Key: more than one credential", both(bearer(e.operator), header("X-Api-Key", "garbage"))),
		denied("the operator key twice", both(bearer(e.operator), apiKey(e.operator))),
		ok("admin", bearer(e.admin)),
		ok("viewer", bearer(e.viewer)),
		denied("no credential", noAuth),
		denied("empty bearer", header("Authorization", "Bearer ")),
		denied("malformed secret", header("Authorization", "Bearer lksk_nope")),
		denied("checksum off by one character", bearer(cred{secret: flipLast(e.operator.secret)})),
		denied("unknown secret", bearer(cred{secret: unknown})),
		denied("unknown secret in X-Api-Key", apiKey(cred{secret: unknown})),
		denied("basic with another key's ID", basic(cred{id: e.admin.id, secret: e.operator.secret})),
		denied("basic with a malformed ID", basic(cred{id: "nope", secret: e.operator.secret})),
		denied("basic that is not base64", header("Authorization", "Basic !!!")),
		denied("basic without a colon", header("Authorization", "Basic "+strings.TrimPrefix(basicHeader("x", "y"), "Basic ")[:4])),
		denied("unknown scheme", header("Authorization", "Token "+e.operator.secret)),
		denied("application key", bearer(cred{appKey.ID, appKey.Secret})),
		denied("inactive principal key", bearer(inactive)),
		denied("expired principal key", bearer(expiring)),
		denied("deleted principal key", bearer(deleted)),
		{name: "verifier on a management endpoint", method: "GET", path: path, as: bearer(e.verifierP),
			status: http.StatusForbidden, code: latchkey.EFORBIDDEN},
	})
}

// TestAuthFailuresLookAlike: an application key, an unknown key, a
// malformed one and an inactive one get the same answer, so a caller
// learns nothing about which keys exist.
func TestAuthFailuresLookAlike(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	appKey := e.mustKey(t, latchkey.DefaultAccount, "billing")
	inactive := e.newPrincipal(t, latchkey.DefaultAccount, "ingrid", latchkey.RoleAdmin)
	e.mustDeactivate(t, inactive.id)
	var bodies []string
	for _, as := range []auth{
		bearer(cred{appKey.ID, appKey.Secret}),
		bearer(cred{secret: newSecret(t)}),
		bearer(cred{secret: "lksk_short"}),
		bearer(inactive),
		basic(cred{id: e.admin.id, secret: e.operator.secret}),
	} {
		r := e.do(t, "GET", "/v1/applications", as, "")
		if r.status != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", r.status)
		}
		bodies = append(bodies, string(r.body))
	}
	for i, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("answer %d differs from answer 0:\n%s\n%s", i+1, b, bodies[0])
		}
	}
}

// TestVerifierRefusedOnManagement: a verifier principal may call
// /v1/verify and nothing of the management API.
func TestVerifierRefusedOnManagement(t *testing.T) {
	e := newEnv(t)
	for _, rt := range e.api.Routes() {
		method, path, _ := strings.Cut(rt, " ")
		if !strings.HasPrefix(path, "/v1/") || path == "/v1/verify" || path == "/v1/authorize" || path == "/v1/leaks/github" || path == "/v1/openapi.json" {
			continue
		}
		path = strings.NewReplacer("{name}", "vera", "{id}", e.verifierP.id).Replace(path)
		body := ""
		if method == "POST" || method == "PATCH" {
			body = "{}"
		}
		t.Run(rt, func(t *testing.T) {
			r := e.do(t, method, path, bearer(e.verifierP), body)
			e.expect(t, apiCase{method: method, path: path, status: http.StatusForbidden, code: latchkey.EFORBIDDEN}, r)
		})
	}
}

// TestViewerCannotWrite: every write, on objects that exist in the viewer's
// own account, is 403.
func TestViewerCannotWrite(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	k := e.mustKey(t, latchkey.DefaultAccount, "billing")
	as := bearer(e.viewer)
	forbidden := func(method, path, body string) apiCase {
		return apiCase{name: method + " " + path, method: method, path: path, as: as, body: body,
			status: http.StatusForbidden, code: latchkey.EFORBIDDEN}
	}
	e.run(t, []apiCase{
		forbidden("POST", "/v1/accounts", `{"name":"acme"}`),
		forbidden("POST", "/v1/applications", `{"name":"orders"}`),
		forbidden("PATCH", "/v1/applications/billing", `{"description":"x"}`),
		forbidden("DELETE", "/v1/applications/billing", ""),
		forbidden("POST", "/v1/applications/billing/access-keys", `{}`),
		forbidden("PATCH", "/v1/access-keys/"+k.ID, `{"status":"Inactive"}`),
		forbidden("DELETE", "/v1/access-keys/"+k.ID+"?force=true", ""),
		forbidden("POST", "/v1/principals", `{"name":"mallory","role":"viewer"}`),
		forbidden("DELETE", "/v1/principals/alice", ""),
		forbidden("POST", "/v1/principals/victor/access-keys", `{}`),
		forbidden("PATCH", "/v1/access-keys/"+e.viewer.id, `{"status":"Inactive"}`),
	})
	if got := e.storedKey(t, k.ID).Status; got != latchkey.StatusActive {
		t.Errorf("key status after the viewer's attempts = %s, want Active", got)
	}
}

func TestCredentialsInURL(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	inQuery := e.mustKey(t, latchkey.DefaultAccount, "billing")
	inPath := e.mustKey(t, latchkey.DefaultAccount, "billing")
	unknown := newSecret(t)

	bad := func(name, path string, as auth) apiCase {
		return apiCase{name: name, method: "GET", path: path, as: as, status: http.StatusBadRequest, code: latchkey.ECREDSINURL}
	}
	e.run(t, []apiCase{
		bad("api_key parameter with any value", "/v1/accounts?api_key=whatever", bearer(e.operator)),
		bad("token parameter, no credential header", "/v1/accounts?token=abc", noAuth),
		bad("parameter name in upper case", "/v1/accounts?API_KEY=abc", noAuth),
		bad("secret in a parameter of any name", "/v1/applications?q="+inQuery.Secret, bearer(e.operator)),
		bad("secret in the path", "/v1/access-keys/"+inPath.Secret, bearer(e.operator)),
		bad("principal secret on an unknown path", "/nope?key="+e.admin.secret, noAuth),
		bad("unknown but well-formed secret", "/v1/accounts?x="+unknown, noAuth),
		{name: "a look-alike that fails its checksum passes", method: "GET", path: "/v1/accounts?x=" + flipLast(unknown),
			as: bearer(e.operator), status: http.StatusOK},
	})

	for _, tc := range []struct {
		name string
		key  cred
	}{{"query", cred{inQuery.ID, inQuery.Secret}}, {"path", cred{inPath.ID, inPath.Secret}}, {"principal", e.admin}} {
		t.Run("flagged "+tc.name, func(t *testing.T) {
			k := e.storedKey(t, tc.key.id)
			if k.Exposed == nil {
				t.Fatalf("key %s not flagged exposed", tc.key.id)
			}
			if tail := tc.key.secret[len(keyformat.SecretPrefix)+4:]; strings.Contains(k.Exposed.Where, tail) {
				t.Errorf("exposure note holds the secret: %q", strings.ReplaceAll(k.Exposed.Where, tail, "<secret>"))
			}
			if k.Status != latchkey.StatusActive {
				t.Errorf("status %s: the tripwire flags, it does not deactivate", k.Status)
			}
		})
	}
	var exposed []*latchkey.AuditEvent
	for _, ev := range e.auditEvents(t) {
		if ev.Action == latchkey.ActionAccessKeyExposed {
			exposed = append(exposed, ev)
			if ev.Actor != "tripwire" {
				t.Errorf("exposure event actor %q, want tripwire", ev.Actor)
			}
		}
	}
	if len(exposed) != 3 {
		t.Errorf("%d access_key.exposed events, want 3 (one per real key)", len(exposed))
	}
}

// TestCredentialsInURLFlagOnce: a secret that appears more than once in one
// URL is one exposure, with one audit event.
func TestCredentialsInURLFlagOnce(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	k := e.mustKey(t, latchkey.DefaultAccount, "billing")
	r := e.do(t, "GET", "/v1/access-keys/"+k.Secret+"?a="+k.Secret+"&b="+k.Secret, noAuth, "")
	e.expect(t, apiCase{method: "GET", path: "/v1/access-keys/x", status: http.StatusBadRequest, code: latchkey.ECREDSINURL}, r)
	n := 0
	for _, ev := range e.auditEvents(t) {
		if ev.Action == latchkey.ActionAccessKeyExposed {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d access_key.exposed events for one request, want 1", n)
	}
}

// Helpers shared by the handler tests.

func newSecret(t *testing.T) string {
	t.Helper()
	s, err := keyformat.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newID(t *testing.T) string {
	t.Helper()
	id, err := keyformat.NewID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// flipLast changes the last character, which breaks the checksum.
func flipLast(s string) string {
	last := s[len(s)-1]
	c := byte('0')
	if last == '0' {
		c = '1'
	}
	return s[:len(s)-1] + string(c)
}

// newPrincipal creates a principal through the service and returns its key.
func (e *env) newPrincipal(t *testing.T, account, name string, role latchkey.Role) cred {
	t.Helper()
	p, err := e.svc.CreatePrincipal(t.Context(), e.sys(), account, name, role)
	if err != nil {
		t.Fatalf("CreatePrincipal(%s, %s): %v", account, name, err)
	}
	return cred{p.AccessKey.ID, p.AccessKey.Secret}
}

// TestCredentialsInURLFlagsWhenClientLeaves: the exposure is recorded even
// if the client has gone by the time the server writes it.
func TestCredentialsInURLFlagsWhenClientLeaves(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	k := e.mustKey(t, latchkey.DefaultAccount, "billing")
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the client hung up
	req := httptest.NewRequestWithContext(ctx, "GET", "/v1/applications?q="+k.Secret, nil)
	rec := httptest.NewRecorder()
	e.api.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", rec.Code)
	}
	if e.storedKey(t, k.ID).Exposed == nil {
		t.Error("key sent in a URL was not flagged exposed because the request's context ended")
	}
}
