package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
)

// The columns of the authorization matrix: who calls.
var matrixRoles = []string{
	"operator",      // operator of the default account
	"admin",         // admin of the default account, which owns every object the rows touch
	"other-admin",   // admin of account "other"
	"viewer",        // viewer of the default account
	"verifier",      // verifier of the default account
	"app-key",       // an Active application key of the default account
	"no-credential", // nothing in Authorization or X-Api-Key
	"bad-credential",
	"inactive-admin", // an admin of the default account whose key is Inactive
}

// matrixRow is one route with the answer each role must get, in the order
// of matrixRoles, each a status or status:code (the code defaults to the
// one that goes with the status). The expectations are written down here, from the design
// (roles, fail closed, another account's objects are missing ones), not
// computed from the code under test.
//
// Path placeholders name fixtures made afresh for each cell in the default
// account: {app} an application with one Inactive key {key}, {empty} an
// application without keys, {principal} an admin principal with one key.
// Body placeholders: {secret} is {key}'s secret, {digest} its SHA-256 in
// hex, {n} a name unique to the cell.
type matrixRow struct {
	route  string // as httpapi.Server.Routes lists it
	path   string
	body   string
	expect string
}

var matrix = []matrixRow{
	// Columns: operator, admin, other-admin, viewer, verifier, app-key,
	// no-credential, bad-credential, inactive-admin.
	{"GET /healthz", "/healthz", "", "200 200 200 200 200 200 200 200 200"},
	{"GET /readyz", "/readyz", "", "200 200 200 200 200 200 200 200 200"},
	{"GET /v1/openapi.json", "/v1/openapi.json", "", "200 200 200 200 200 200 200 200 200"},

	// Verification: any principal may verify (a key of another account is
	// a NOT_FOUND decision, still 200); application keys may not call it.
	{"POST /v1/verify", "/v1/verify", `{"key":"{secret}"}`, "200 200 200 200 200 401 401 401 401"},
	// Forward auth takes the application key of the call it decides on:
	// every credential here but an Active application key is refused, with
	// the decision code (a principal's key is NOT_FOUND there).
	{"GET /v1/authorize", "/v1/authorize", "", "401:NOT_FOUND 401:NOT_FOUND 401:NOT_FOUND 401:NOT_FOUND 401:NOT_FOUND 200 401:MISSING 401:NOT_FOUND 401:NOT_FOUND"},
	{"POST /v1/authorize", "/v1/authorize", "", "401:NOT_FOUND 401:NOT_FOUND 401:NOT_FOUND 401:NOT_FOUND 401:NOT_FOUND 200 401:MISSING 401:NOT_FOUND 401:NOT_FOUND"},
	{"PUT /v1/authorize", "/v1/authorize", "", "401:NOT_FOUND 401:NOT_FOUND 401:NOT_FOUND 401:NOT_FOUND 401:NOT_FOUND 200 401:MISSING 401:NOT_FOUND 401:NOT_FOUND"},
	{"PATCH /v1/authorize", "/v1/authorize", "", "401:NOT_FOUND 401:NOT_FOUND 401:NOT_FOUND 401:NOT_FOUND 401:NOT_FOUND 200 401:MISSING 401:NOT_FOUND 401:NOT_FOUND"},
	{"DELETE /v1/authorize", "/v1/authorize", "", "401:NOT_FOUND 401:NOT_FOUND 401:NOT_FOUND 401:NOT_FOUND 401:NOT_FOUND 200 401:MISSING 401:NOT_FOUND 401:NOT_FOUND"},
	{"OPTIONS /v1/authorize", "/v1/authorize", "", "401:NOT_FOUND 401:NOT_FOUND 401:NOT_FOUND 401:NOT_FOUND 401:NOT_FOUND 200 401:MISSING 401:NOT_FOUND 401:NOT_FOUND"},

	// Accounts: everyone reads its own; only operators create.
	{"GET /v1/accounts", "/v1/accounts", "", "200 200 200 200 403 401 401 401 401"},
	{"POST /v1/accounts", "/v1/accounts", `{"name":"acc-{n}"}`, "201 403 403 403 403 401 401 401 401"},
	// The account's admins change its key prefix; viewers may not.
	{"PATCH /v1/accounts/{name}", "/v1/accounts/default", `{"key_prefix":"m{n}_"}`, "200 200 404 403 403 401 401 401 401"},
	{"GET /v1/key-prefixes", "/v1/key-prefixes", "", "200 200 200 200 403 401 401 401 401"},

	// Applications. other-admin lists and creates in its own account, and
	// finds no default-account object.
	{"GET /v1/applications", "/v1/applications", "", "200 200 200 200 403 401 401 401 401"},
	{"POST /v1/applications", "/v1/applications", `{"name":"new-{n}"}`, "201 201 201 403 403 401 401 401 401"},
	{"GET /v1/applications/{name}", "/v1/applications/{app}", "", "200 200 404 200 403 401 401 401 401"},
	{"PATCH /v1/applications/{name}", "/v1/applications/{app}", `{"description":"changed"}`, "200 200 404 403 403 401 401 401 401"},
	{"DELETE /v1/applications/{name}", "/v1/applications/{empty}", "", "204 204 404 403 403 401 401 401 401"},
	{"GET /v1/applications/{name}/access-keys", "/v1/applications/{app}/access-keys", "", "200 200 404 200 403 401 401 401 401"},
	{"POST /v1/applications/{name}/access-keys", "/v1/applications/{app}/access-keys", `{}`, "201 201 404 403 403 401 401 401 401"},

	// Identities: objects of the account like applications. {identity}
	// has a quota and no application, so that it may be deleted.
	{"GET /v1/identities", "/v1/identities", "", "200 200 200 200 403 401 401 401 401"},
	{"POST /v1/identities", "/v1/identities", `{"name":"i-{n}"}`, "201 201 201 403 403 401 401 401 401"},
	{"GET /v1/identities/{id}", "/v1/identities/{identity}", "", "200 200 404 200 403 401 401 401 401"},
	{"PATCH /v1/identities/{id}", "/v1/identities/{identity}", `{"name":"renamed-{n}"}`, "200 200 404 403 403 401 401 401 401"},
	{"DELETE /v1/identities/{id}", "/v1/identities/{identity}", "", "204 204 404 403 403 401 401 401 401"},
	{"GET /v1/identities/{id}/quota", "/v1/identities/{identity}/quota", "", "200 200 404 200 403 401 401 401 401"},
	{"POST /v1/identities/{id}/quota/top-up", "/v1/identities/{identity}/quota/top-up", `{"amount":1}`, "200 200 404 403 403 401 401 401 401"},
	{"GET /v1/identities/{id}/usage", "/v1/identities/{identity}/usage", "", "200 200 404 200 403 401 401 401 401"},

	// Access keys.
	{"GET /v1/access-keys", "/v1/access-keys", "", "200 200 200 200 403 401 401 401 401"},
	{"GET /v1/access-keys/{id}", "/v1/access-keys/{key}", "", "200 200 404 200 403 401 401 401 401"},
	{"PATCH /v1/access-keys/{id}", "/v1/access-keys/{key}", `{"description":"changed"}`, "200 200 404 403 403 401 401 401 401"},
	{"DELETE /v1/access-keys/{id}", "/v1/access-keys/{key}", "", "204 204 404 403 403 401 401 401 401"},
	{"GET /v1/access-keys/{id}/last-used", "/v1/access-keys/{key}/last-used", "", "200 200 404 200 403 401 401 401 401"},
	{"GET /v1/access-keys/{id}/usage", "/v1/access-keys/{key}/usage", "", "200 200 404 200 403 401 401 401 401"},
	// {key} has no quota: NotFound for whoever may read (or change) it.
	{"GET /v1/access-keys/{id}/quota", "/v1/access-keys/{key}/quota", "", "404 404 404 404 403 401 401 401 401"},
	{"POST /v1/access-keys/{id}/quota/top-up", "/v1/access-keys/{key}/quota/top-up", `{"amount":1}`, "404 404 404 403 403 401 401 401 401"},
	// {key} is Inactive: a roll is refused as such, after the role checks.
	{"POST /v1/access-keys/{id}/roll", "/v1/access-keys/{key}/roll", `{}`, "400 400 404 403 403 401 401 401 401"},
	{"GET /v1/rotations", "/v1/rotations", "", "200 200 200 200 403 401 401 401 401"},
	// An import into {app} (default account): other-admin finds no such
	// application; a viewer may not write.
	{"POST /v1/import", "/v1/import", `{"application":"{app}","keys":[]}`, "200 200 404 403 403 401 401 401 401"},

	// Principals.
	{"GET /v1/principals", "/v1/principals", "", "200 200 200 200 403 401 401 401 401"},
	{"POST /v1/principals", "/v1/principals", `{"name":"np-{n}","role":"viewer"}`, "201 201 201 403 403 401 401 401 401"},
	{"GET /v1/principals/{name}", "/v1/principals/{principal}", "", "200 200 404 200 403 401 401 401 401"},
	{"DELETE /v1/principals/{name}", "/v1/principals/{principal}", "", "204 204 404 403 403 401 401 401 401"},
	{"GET /v1/principals/{name}/access-keys", "/v1/principals/{principal}/access-keys", "", "200 200 404 200 403 401 401 401 401"},
	{"POST /v1/principals/{name}/access-keys", "/v1/principals/{principal}/access-keys", `{}`, "201 201 404 403 403 401 401 401 401"},

	{"GET /v1/audit-events", "/v1/audit-events", "", "200 200 200 200 403 401 401 401 401"},
	// The chain is unfiltered, canary alerts included: not for viewers.
	{"GET /v1/audit-chain", "/v1/audit-chain", "", "200 200 200 403 403 401 401 401 401"},
	{"GET /v1/audit-checkpoints", "/v1/audit-checkpoints", "", "200 200 200 200 403 401 401 401 401"},

	// Leak reports: anyone may report without a credential (202, the same
	// answer whatever matched); a credential that is sent must be an
	// admin's or operator's. Checking digests needs read access.
	{"POST /v1/leaks", "/v1/leaks", `{"findings":[{"secret":"{secret}"}]}`, "200 200 200 403 403 401 202 401 401"},
	{"POST /v1/leaks/check", "/v1/leaks/check", `{"digests":["{digest}"]}`, "200 200 200 200 403 401 401 401 401"},
	// GitHub's requests are authenticated by GitHub's signature alone: no
	// latchkey credential opens it.
	{"POST /v1/leaks/github", "/v1/leaks/github", `[]`, "401 401 401 401 401 401 401 401 401"},

	// Hygiene: the report and policy are the account's; webhooks are
	// objects of the account like applications.
	{"GET /v1/credential-report", "/v1/credential-report", "", "200 200 200 200 403 401 401 401 401"},
	{"GET /v1/policy", "/v1/policy", "", "200 200 200 200 403 401 401 401 401"},
	{"PUT /v1/policy", "/v1/policy", `{"max_key_age":"60d"}`, "200 200 200 403 403 401 401 401 401"},
	{"GET /v1/webhooks", "/v1/webhooks", "", "200 200 200 200 403 401 401 401 401"},
	{"POST /v1/webhooks", "/v1/webhooks", `{"url":"https://hooks.example.com/{n}"}`, "201 201 201 403 403 401 401 401 401"},
	{"GET /v1/webhooks/{id}", "/v1/webhooks/{webhook}", "", "200 200 404 200 403 401 401 401 401"},
	{"PATCH /v1/webhooks/{id}", "/v1/webhooks/{webhook}", `{"description":"changed"}`, "200 200 404 403 403 401 401 401 401"},
	{"DELETE /v1/webhooks/{id}", "/v1/webhooks/{webhook}", "", "204 204 404 403 403 401 401 401 401"},
	{"GET /v1/webhooks/{id}/deliveries", "/v1/webhooks/{webhook}/deliveries", "", "200 200 404 200 403 401 401 401 401"},
	{"POST /v1/webhooks/{id}/ping", "/v1/webhooks/{webhook}/ping", "", "200 200 404 403 403 401 401 401 401"},
}

// TestAuthorizationMatrix sends every route of the API as every role and
// checks each answer against the matrix: the status, the code that goes
// with it, nothing changed by a refused call, and, for another account's
// objects, an answer indistinguishable from the one for a missing object.
func TestAuthorizationMatrix(t *testing.T) {
	e := newEnv(t)
	e.githubSigner(t) // a GitHub key, so that /v1/leaks/github is open to signed requests

	e.mustApp(t, latchkey.DefaultAccount, "callers")
	appKey := e.mustKey(t, latchkey.DefaultAccount, "callers")
	inactive := e.newPrincipal(t, latchkey.DefaultAccount, "ingrid", latchkey.RoleAdmin)
	e.mustDeactivate(t, inactive.id)
	creds := map[string]auth{
		"operator":       bearer(e.operator),
		"admin":          bearer(e.admin),
		"other-admin":    bearer(e.otherAdmin),
		"viewer":         bearer(e.viewer),
		"verifier":       bearer(e.verifierP),
		"app-key":        bearer(cred{appKey.ID, appKey.Secret}),
		"no-credential":  noAuth,
		"bad-credential": bearer(cred{secret: newSecret(t)}),
		"inactive-admin": bearer(inactive),
	}
	codeOf := map[int]string{
		http.StatusUnauthorized: latchkey.EUNAUTHORIZED,
		http.StatusForbidden:    latchkey.EFORBIDDEN,
		http.StatusNotFound:     latchkey.ENOTFOUND,
	}

	// The matrix covers exactly the routes the server serves.
	var rows []string
	for _, r := range matrix {
		rows = append(rows, r.route)
	}
	routes := e.api.Routes()
	slices.Sort(rows)
	slices.Sort(routes)
	if !slices.Equal(rows, routes) {
		t.Fatalf("the matrix rows are not the server's routes:\n rows   %v\n routes %v", rows, routes)
	}

	cells, n := 0, 0
	for _, row := range matrix {
		want := strings.Fields(row.expect)
		if len(want) != len(matrixRoles) {
			t.Fatalf("%s: %d expectations for %d roles", row.route, len(want), len(matrixRoles))
		}
		method, _, _ := strings.Cut(row.route, " ")
		for i, role := range matrixRoles {
			st, code, _ := strings.Cut(want[i], ":")
			status, err := strconv.Atoi(st)
			if err != nil {
				t.Fatalf("%s: %v", row.route, err)
			}
			if code == "" {
				code = codeOf[status]
			}
			n++
			t.Run(row.route+"/"+role, func(t *testing.T) {
				fx := e.matrixFixtures(t, n, row.path)
				path, body := fx.fill(row.path, n), fx.fill(row.body, n)
				before := len(e.auditEvents(t))
				r := e.do(t, method, path, creds[role], body)
				e.expect(t, apiCase{method: method, path: path, status: status, code: code}, r)
				if status >= 400 {
					if after := len(e.auditEvents(t)); after != before {
						t.Errorf("a refused call wrote %d audit events", after-before)
					}
				}
				if role == "other-admin" && status == http.StatusNotFound {
					e.looksMissing(t, method, row.path, row.body, creds[role], r, fx, n)
				}
			})
			cells++
		}
	}
	t.Logf("authorization matrix: %d routes x %d roles = %d cells", len(matrix), len(matrixRoles), cells)
}

// matrixFixture holds the objects made for one cell.
type matrixFixture struct {
	app, empty, principal, key, secret, digest, webhook, identity string
}

func (f matrixFixture) fill(s string, n int) string {
	return strings.NewReplacer("{app}", f.app, "{empty}", f.empty, "{principal}", f.principal, "{key}", f.key,
		"{secret}", f.secret, "{digest}", f.digest, "{webhook}", f.webhook, "{identity}", f.identity, "{n}", strconv.Itoa(n)).Replace(s)
}

// matrixFixtures makes the default-account objects a cell's path and body
// name, afresh, so that a cell that deletes one leaves the others intact.
func (e *env) matrixFixtures(t *testing.T, n int, path string) matrixFixture {
	t.Helper()
	f := matrixFixture{app: fmt.Sprintf("app-%d", n), empty: fmt.Sprintf("empty-%d", n), principal: fmt.Sprintf("p-%d", n)}
	e.mustApp(t, latchkey.DefaultAccount, f.app)
	k := e.mustKey(t, latchkey.DefaultAccount, f.app)
	e.mustDeactivate(t, k.ID) // Inactive, so that it may be deleted
	f.key, f.secret, f.digest = k.ID, k.Secret, digestHex(k.Secret)
	if strings.Contains(path, "{empty}") {
		e.mustApp(t, latchkey.DefaultAccount, f.empty)
	}
	if strings.Contains(path, "{principal}") {
		e.newPrincipal(t, latchkey.DefaultAccount, f.principal, latchkey.RoleAdmin)
	}
	if strings.Contains(path, "{webhook}") {
		w, err := e.svc.CreateWebhook(t.Context(), latchkey.System(), latchkey.DefaultAccount,
			latchkey.NewWebhook{URL: "https://hooks.example.com/latchkey"})
		if err != nil {
			t.Fatal(err)
		}
		f.webhook = w.ID
	}
	if strings.Contains(path, "{identity}") {
		id, err := e.svc.CreateIdentity(t.Context(), latchkey.System(), latchkey.DefaultAccount,
			latchkey.NewIdentity{Name: fmt.Sprintf("idn-%d", n), Quota: &latchkey.Quota{Remaining: 10}})
		if err != nil {
			t.Fatal(err)
		}
		f.identity = id.ID
	}
	return f
}

// looksMissing sends the request that got r again, naming objects that do
// not exist, and checks that the two answers are the same but for the
// name: another account's objects must be indistinguishable from missing
// ones.
func (e *env) looksMissing(t *testing.T, method, path, body string, as auth, r *resp, fx matrixFixture, n int) {
	t.Helper()
	ghost := matrixFixture{app: "ghost-app", empty: "ghost-empty", principal: "ghost-p", key: newID(t), secret: fx.secret, digest: fx.digest, webhook: "wh_ghostghostghost2", identity: "idn_ghostghostghostg"}
	m := e.do(t, method, ghost.fill(path, n), as, ghost.fill(body, n))
	norm := func(b []byte, f matrixFixture) string {
		r := []string{f.app, "NAME", f.empty, "NAME", f.principal, "NAME", f.key, "NAME"}
		if f.webhook != "" {
			r = append(r, f.webhook, "NAME")
		}
		if f.identity != "" {
			r = append(r, f.identity, "NAME")
		}
		return strings.NewReplacer(r...).Replace(string(b))
	}
	if m.status != r.status || norm(m.body, ghost) != norm(r.body, fx) {
		t.Errorf("another account's object answers %d %s\nbut a missing one answers %d %s", r.status, r.body, m.status, m.body)
	}
	for _, h := range []string{"Content-Type", "Cache-Control", "WWW-Authenticate"} {
		if m.header.Get(h) != r.header.Get(h) {
			t.Errorf("header %s differs: %q for another account's object, %q for a missing one", h, r.header.Get(h), m.header.Get(h))
		}
	}
}

// TestOtherAccountNamedLooksMissing: an admin naming another account with
// ?account= gets the answer it would get for an account that does not
// exist, on every route that takes the parameter.
func TestOtherAccountNamedLooksMissing(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	k := e.mustKey(t, latchkey.DefaultAccount, "billing")
	e.newPrincipal(t, latchkey.DefaultAccount, "pat", latchkey.RoleAdmin)
	as := bearer(e.otherAdmin)
	n := 0
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/applications", ""},
		{"POST", "/v1/applications", `{"name":"sneaky"}`},
		{"GET", "/v1/applications/billing", ""},
		{"PATCH", "/v1/applications/billing", `{"description":"x"}`},
		{"DELETE", "/v1/applications/billing", ""},
		{"GET", "/v1/applications/billing/access-keys", ""},
		{"POST", "/v1/applications/billing/access-keys", `{}`},
		{"GET", "/v1/access-keys", ""},
		{"GET", "/v1/principals", ""},
		{"POST", "/v1/principals", `{"name":"sneaky","role":"admin"}`},
		{"GET", "/v1/principals/pat", ""},
		{"DELETE", "/v1/principals/pat", ""},
		{"GET", "/v1/principals/pat/access-keys", ""},
		{"POST", "/v1/principals/pat/access-keys", `{}`},
		{"GET", "/v1/audit-events", ""},
		{"GET", "/v1/audit-chain", ""},
		{"GET", "/v1/audit-checkpoints", ""},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			other := e.do(t, c.method, c.path+"?account=default", as, c.body)
			missing := e.do(t, c.method, c.path+"?account=nosuch", as, c.body)
			e.expect(t, apiCase{method: c.method, path: c.path, status: http.StatusNotFound, code: latchkey.ENOTFOUND}, other)
			if missing.status != other.status || strings.ReplaceAll(string(missing.body), "nosuch", "default") != string(other.body) {
				t.Errorf("?account=default answers %d %s\nbut ?account=nosuch answers %d %s", other.status, other.body, missing.status, missing.body)
			}
			n++
		})
	}
	if k := e.storedKey(t, k.ID); k.Status != latchkey.StatusActive {
		t.Errorf("the default account's key changed: %s", k.Status)
	}
	t.Logf("%d routes with ?account= checked", n)
}
