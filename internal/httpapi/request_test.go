package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
)

// bodyEndpoint is an endpoint that reads a JSON body, with the name of one
// of its string fields (for the wrong-type case) and a valid body.
type bodyEndpoint struct {
	method, path string
	field        string
	valid        string
	limit        int
}

func bodyEndpoints(e *env, keyID string) []bodyEndpoint {
	return []bodyEndpoint{
		{"POST", "/v1/accounts", "name", `{"name":"acme"}`, httpapi.MaxBodyBytes},
		{"POST", "/v1/applications", "name", `{"name":"orders"}`, httpapi.MaxBodyBytes},
		{"PATCH", "/v1/applications/billing", "description", `{"description":"x"}`, httpapi.MaxBodyBytes},
		{"POST", "/v1/applications/billing/access-keys", "description", `{"description":"x"}`, httpapi.MaxBodyBytes},
		{"PATCH", "/v1/access-keys/" + keyID, "description", `{"description":"x"}`, httpapi.MaxBodyBytes},
		{"POST", "/v1/principals", "name", `{"name":"pat","role":"viewer"}`, httpapi.MaxBodyBytes},
		{"POST", "/v1/principals/alice/access-keys", "description", `{"description":"x"}`, httpapi.MaxBodyBytes},
		{"POST", "/v1/verify", "key", `{"key":"x"}`, httpapi.MaxVerifyBodyBytes},
	}
}

// TestRequestBodies: every endpoint that reads a body refuses the same bad
// bodies with the same codes, and changes nothing.
func TestRequestBodies(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	k := e.mustKey(t, latchkey.DefaultAccount, "billing")
	before := len(e.auditEvents(t))

	for _, ep := range bodyEndpoints(e, k.ID) {
		t.Run(ep.method+" "+ep.path, func(t *testing.T) {
			tooLarge := `{"` + ep.field + `":"` + strings.Repeat("a", ep.limit) + `"}`
			// valid JSON, but the padding puts it over the limit
			paddedOver := ep.valid + strings.Repeat(" ", ep.limit)
			bad := func(name, body, code string, status int) apiCase {
				return apiCase{name: name, method: ep.method, path: ep.path, as: bearer(e.operator), body: body, status: status, code: code}
			}
			cases := []apiCase{
				bad("not JSON", `{"`+ep.field+`":`, latchkey.EMALFORMED, http.StatusBadRequest),
				bad("syntax error", `{"`+ep.field+`" "x"}`, latchkey.EMALFORMED, http.StatusBadRequest),
				bad("unknown field", `{"nope":1}`, latchkey.EMALFORMED, http.StatusBadRequest),
				bad("wrong type", `{"`+ep.field+`":1}`, latchkey.EMALFORMED, http.StatusBadRequest),
				bad("array instead of object", `[]`, latchkey.EMALFORMED, http.StatusBadRequest),
				bad("string instead of object", `"x"`, latchkey.EMALFORMED, http.StatusBadRequest),
				bad("trailing object", ep.valid+`{}`, latchkey.EMALFORMED, http.StatusBadRequest),
				bad("trailing garbage", ep.valid+`x`, latchkey.EMALFORMED, http.StatusBadRequest),
				bad("whitespace only", "  \n", latchkey.EMALFORMED, http.StatusBadRequest),
				bad("body over the limit", tooLarge, latchkey.ETOOLARGE, http.StatusRequestEntityTooLarge),
				bad("valid object padded over the limit", paddedOver, latchkey.ETOOLARGE, http.StatusRequestEntityTooLarge),
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					e.expect(t, tc, e.do(t, tc.method, tc.path, tc.as, tc.body))
				})
			}
			t.Run("empty body", func(t *testing.T) {
				tc := bad("", "", latchkey.EMALFORMED, http.StatusBadRequest)
				e.expect(t, tc, e.do(t, ep.method, ep.path, both(bearer(e.operator), header("Content-Type", "application/json")), ""))
			})
			for _, ct := range []string{"application/xml", "multipart/form-data; boundary=x", "not a media type", "text/plain"} {
				t.Run("Content-Type "+ct, func(t *testing.T) {
					r := e.do(t, ep.method, ep.path, both(bearer(e.operator), header("Content-Type", ct)), ep.valid)
					e.expect(t, apiCase{method: ep.method, path: ep.path, status: http.StatusUnsupportedMediaType, code: latchkey.EUNSUPPORTED}, r)
				})
			}
		})
	}
	if after := len(e.auditEvents(t)); after != before {
		t.Errorf("refused requests wrote %d audit events", after-before)
	}
}

// TestRequestBodyAtTheLimit: a body of exactly the limit is read.
func TestRequestBodyAtTheLimit(t *testing.T) {
	e := newEnv(t)
	body := `{"name":"acme"}`
	body += strings.Repeat(" ", httpapi.MaxBodyBytes-len(body))
	r := e.do(t, "POST", "/v1/accounts", bearer(e.operator), body)
	e.expect(t, apiCase{method: "POST", path: "/v1/accounts", status: http.StatusCreated}, r)
}

// TestContentTypes: a body is read only when it is sent as
// application/json, with at most charset=utf-8, as the OpenAPI document
// says. Anything else, what curl -d sends and no Content-Type at all among
// them, is 415 UnsupportedMediaType, changes nothing, and says what to send.
func TestContentTypes(t *testing.T) {
	e := newEnv(t)
	noContentType := func(r *http.Request) { r.Header.Del("Content-Type") }
	tests := []struct {
		name, ct string // ct "" sends none
		ok       bool
		hint     string // more the message must say
	}{
		{"json", "application/json", true, ""},
		{"json, UTF-8", "application/json; charset=utf-8", true, ""},
		{"json, UTF-8 in capitals", "Application/JSON;charset=UTF-8", true, ""},
		{"none", "", false, "the request has none"},
		{"what curl -d sends", "application/x-www-form-urlencoded", false, "add -H 'Content-Type: application/json'"},
		{"text", "text/plain", false, `not "text/plain"`},
		{"text/plain;charset=UTF-8", "text/plain;charset=UTF-8", false, ""},
		{"JSON merge patch", "application/merge-patch+json", false, ""},
		{"another charset", "application/json; charset=iso-8859-1", false, ""},
		{"another parameter", "application/json; profile=x", false, ""},
		{"text/json", "text/json", false, ""},
		{"multipart", "multipart/form-data; boundary=x", false, ""},
		{"not a media type", "json please", false, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("acc%d", i)
			as := both(bearer(e.operator), header("Content-Type", tt.ct))
			if tt.ct == "" {
				as = both(bearer(e.operator), noContentType)
			}
			r := e.do(t, "POST", "/v1/accounts", as, jsonBody(t, map[string]string{"name": name}))
			if tt.ok {
				e.expect(t, apiCase{method: "POST", path: "/v1/accounts", status: http.StatusCreated}, r)
				return
			}
			e.expect(t, apiCase{method: "POST", path: "/v1/accounts", status: http.StatusUnsupportedMediaType, code: latchkey.EUNSUPPORTED}, r)
			msg := r.errorBody(t).Error.Message
			if !strings.HasPrefix(msg, "Content-Type must be application/json (optionally with charset=utf-8)") || !strings.Contains(msg, tt.hint) {
				t.Errorf("message %q does not say what to send (and %q)", msg, tt.hint)
			}
			err := e.store.View(t.Context(), func(tx latchkey.Tx) error {
				_, err := tx.FindAccount(t.Context(), name)
				return err
			})
			if latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
				t.Errorf("account %s after a refused body: %v", name, err)
			}
		})
	}
}

// TestOpenAPIContentTypes: the document says what the server does. Every
// operation that reads a body takes application/json only and lists 415,
// and the server answers it 415 for a form body and for none, and reads
// the body with charset=utf-8.
func TestOpenAPIContentTypes(t *testing.T) {
	e := newEnv(t)
	target := e.bodyTargets(t)
	doc := loadDoc(t)
	n := 0
	for _, op := range docOperations(t, doc) {
		method, path, _ := strings.Cut(op, " ")
		o, _ := lookup(doc, "paths", path, strings.ToLower(method))
		rb := deref(t, doc, o.(map[string]any)["requestBody"])
		if rb == nil || path == "/v1/leaks/github" { // GitHub's own format, signed: see TestGitHubLeaks
			continue
		}
		n++
		t.Run(op, func(t *testing.T) {
			var types []string
			for ct := range rb["content"].(map[string]any) {
				types = append(types, ct)
			}
			if !slices.Equal(types, []string{"application/json"}) {
				t.Errorf("request body content types %v, want only application/json", types)
			}
			if _, ok := lookup(o, "responses", "415"); !ok {
				t.Errorf("no 415 response documented")
			}
			for _, ct := range []string{"application/x-www-form-urlencoded", ""} {
				as := both(bearer(e.operator), header("Content-Type", ct))
				if r := e.do(t, method, target.Replace(path), as, `{}`); r.status != http.StatusUnsupportedMediaType {
					t.Errorf("Content-Type %q: status %d, want 415", ct, r.status)
				}
			}
			as := both(bearer(e.operator), header("Content-Type", "application/json; charset=utf-8"))
			if r := e.do(t, method, target.Replace(path), as, `{}`); r.status == http.StatusUnsupportedMediaType {
				t.Errorf("charset=utf-8: status 415; body %s", r.body)
			}
		})
	}
	if n < 10 {
		t.Errorf("only %d operations with a body; the walk is broken", n)
	}
}

func TestUnknownEndpointsAndMethods(t *testing.T) {
	e := newEnv(t)
	allow := func(want ...string) func(*testing.T, *resp) {
		return func(t *testing.T, r *resp) {
			t.Helper()
			got := r.header.Get("Allow")
			for _, m := range want {
				if !strings.Contains(got, m) {
					t.Errorf("Allow = %q, want it to list %s", got, m)
				}
			}
		}
	}
	notAllowed := func(method, path string, methods ...string) apiCase {
		return apiCase{name: method + " " + path, method: method, path: path, as: bearer(e.operator),
			status: http.StatusMethodNotAllowed, code: latchkey.EMETHOD, check: allow(methods...)}
	}
	notFound := func(method, path string) apiCase {
		return apiCase{name: method + " " + path, method: method, path: path, as: bearer(e.operator),
			status: http.StatusNotFound, code: latchkey.ENOTFOUND, check: func(t *testing.T, r *resp) {
				if !strings.Contains(string(r.body), "no such endpoint") {
					t.Errorf("body %s, want the no-such-endpoint answer", r.body)
				}
			}}
	}
	e.run(t, []apiCase{
		notAllowed("PUT", "/v1/accounts", "GET", "POST"),
		notAllowed("DELETE", "/v1/accounts", "GET", "POST"),
		notAllowed("GET", "/v1/verify", "POST"),
		notAllowed("PUT", "/v1/applications/billing", "GET", "PATCH", "DELETE"),
		notAllowed("POST", "/v1/access-keys/LKIAAAAAAAAAAAAAAAAA", "GET", "PATCH", "DELETE"),
		notAllowed("PATCH", "/v1/principals/alice", "GET", "DELETE"),
		notAllowed("POST", "/v1/audit-events", "GET"),
		notAllowed("POST", "/healthz", "GET"),
		notFound("GET", "/"),
		notFound("GET", "/v2/accounts"),
		notFound("GET", "/v1/nope"),
		notFound("GET", "/v1/access-keys/LKIAAAAAAAAAAAAAAAAA/nope"),
		{name: "unknown endpoint without a credential is 404, not 401", method: "GET", path: "/v1/nope",
			status: http.StatusNotFound, code: latchkey.ENOTFOUND},
	})
}
