package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/hashformat"
)

// docInputEnums returns every enum the document declares on a request: a
// query or path parameter ("GET /v1/access-keys ?kind") or a request body
// field ("PATCH /v1/access-keys/{id} body status", "... body events[]").
func docInputEnums(t *testing.T, doc map[string]any) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	enum := func(m map[string]any) []string {
		var vs []string
		for _, v := range m["enum"].([]any) {
			vs = append(vs, v.(string))
		}
		return vs
	}
	var walk func(key string, schema any)
	walk = func(key string, schema any) {
		m := deref(t, doc, schema)
		if m == nil {
			return
		}
		if _, ok := m["enum"]; ok {
			out[key] = enum(m)
		}
		if props, ok := m["properties"].(map[string]any); ok {
			sep := "."
			if strings.HasSuffix(key, " body") {
				sep = " "
			}
			for name, p := range props {
				walk(key+sep+name, p)
			}
		}
		if items, ok := m["items"]; ok {
			walk(key+"[]", items)
		}
	}
	for path, item := range doc["paths"].(map[string]any) {
		item := item.(map[string]any)
		for _, m := range methods {
			op, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			opName := strings.ToUpper(m) + " " + path
			params, _ := item["parameters"].([]any)
			more, _ := op["parameters"].([]any)
			for _, p := range append(slices.Clone(params), more...) {
				pm := deref(t, doc, p)
				walk(fmt.Sprintf("%s ?%s", opName, pm["name"]), pm["schema"])
			}
			if rb := deref(t, doc, op["requestBody"]); rb != nil {
				for _, c := range rb["content"].(map[string]any) {
					walk(opName+" body", c.(map[string]any)["schema"])
				}
			}
		}
	}
	return out
}

// deref follows $refs from v to the object they lead to; nil if v is not
// an object.
func deref(t *testing.T, doc map[string]any, v any) map[string]any {
	t.Helper()
	m, _ := v.(map[string]any)
	for m != nil {
		ref, ok := m["$ref"].(string)
		if !ok {
			break
		}
		r, err := resolve(doc, ref)
		if err != nil {
			t.Fatal(err)
		}
		m, _ = r.(map[string]any)
	}
	return m
}

// enumProbe sends one value where the document declares an enum.
type enumProbe struct {
	accepted []string // what the code accepts; must equal the document's enum
	send     func(t *testing.T, v string) *resp
}

// caseVariants returns v in upper, lower and swapped case, without v itself
// or an accepted value.
func caseVariants(v string, accepted []string) []string {
	swap := strings.Map(func(r rune) rune {
		if unicode.IsUpper(r) {
			return unicode.ToLower(r)
		}
		return unicode.ToUpper(r)
	}, v)
	var out []string
	for _, s := range []string{strings.ToUpper(v), strings.ToLower(v), swap} {
		if s != v && !slices.Contains(accepted, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// TestOpenAPIEnumsAreStrict walks every enum the OpenAPI document declares
// on a request and checks that the server accepts exactly its values: each
// one, and not the same value in another case ("inactive", "ACTIVE") nor an
// unknown one. A refusal is a 400 InvalidArgument whose message names every
// accepted value.
func TestOpenAPIEnumsAreStrict(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	key := e.mustKey(t, latchkey.DefaultAccount, "billing")
	wh, err := e.svc.CreateWebhook(ctx, e.sys(), latchkey.DefaultAccount, latchkey.NewWebhook{URL: "https://hooks.example.com/enum"})
	if err != nil {
		t.Fatal(err)
	}
	as := bearer(e.operator)
	n := 0
	query := func(path, name string) func(*testing.T, string) *resp {
		return func(t *testing.T, v string) *resp {
			return e.do(t, "GET", path+"?"+url.Values{name: {v}}.Encode(), as, "")
		}
	}
	body := func(method, path string, fields func(v string) map[string]any) func(*testing.T, string) *resp {
		return func(t *testing.T, v string) *resp {
			return e.do(t, method, path, as, jsonBody(t, fields(v)))
		}
	}
	probes := map[string]enumProbe{
		"PATCH /v1/access-keys/{id} body status": {strs(latchkey.Statuses()),
			body("PATCH", "/v1/access-keys/"+key.ID, func(v string) map[string]any { return map[string]any{"status": v} })},
		"POST /v1/principals body role": {strs(latchkey.Roles()),
			body("POST", "/v1/principals", func(v string) map[string]any {
				n++
				return map[string]any{"name": fmt.Sprintf("p%d", n), "role": v}
			})},
		"POST /v1/webhooks body events[]": {latchkey.EventTypes(),
			body("POST", "/v1/webhooks", func(v string) map[string]any {
				n++
				return map[string]any{"url": fmt.Sprintf("https://hooks.example.com/%d", n), "events": []string{v}}
			})},
		"PATCH /v1/webhooks/{id} body events[]": {latchkey.EventTypes(),
			body("PATCH", "/v1/webhooks/"+wh.ID, func(v string) map[string]any { return map[string]any{"events": []string{v}} })},
		"POST /v1/import body group_by": {latchkey.ImportGroupings(),
			body("POST", "/v1/import", func(v string) map[string]any { return map[string]any{"group_by": v, "keys": []any{}} })},
		// A row that is invalid for its content (no digest) is still a 200
		// with the row reported invalid; an enum outside the list is a 400.
		"POST /v1/import body keys[].hash_format": {hashformat.Inputs(),
			body("POST", "/v1/import", func(v string) map[string]any {
				return map[string]any{"application": "billing", "keys": []any{map[string]any{"row": 1, "hash_format": v}}}
			})},
		"POST /v1/import body keys[].status": {strs(latchkey.Statuses()),
			body("POST", "/v1/import", func(v string) map[string]any {
				return map[string]any{"application": "billing", "keys": []any{map[string]any{"row": 1, "status": v}}}
			})},
		"GET /v1/access-keys ?kind":                {latchkey.KeyKinds(), query("/v1/access-keys", "kind")},
		"GET /v1/audit-events ?action":             {latchkey.AuditActions(), query("/v1/audit-events", "action")},
		"GET /v1/credential-report ?format":        {[]string{"json", "csv"}, query("/v1/credential-report", "format")},
		"GET /v1/webhooks/{id}/deliveries ?status": {latchkey.DeliveryStatuses(), query("/v1/webhooks/"+wh.ID+"/deliveries", "status")},
	}

	doc := docInputEnums(t, loadDoc(t))
	var keys []string
	for k := range doc {
		keys = append(keys, k)
	}
	for k := range probes {
		if _, ok := doc[k]; !ok {
			t.Errorf("%s: the server checks an enum here, but the document declares none", k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Run(k, func(t *testing.T) {
			p, ok := probes[k]
			if !ok {
				t.Fatalf("the document declares enum %v here; add a probe to this test", doc[k])
			}
			if !slices.Equal(sorted(doc[k]), sorted(p.accepted)) {
				t.Errorf("document enum %v, code accepts %v", doc[k], p.accepted)
			}
			for _, v := range p.accepted {
				if r := p.send(t, v); r.status >= 300 {
					t.Errorf("%q: status %d, want success; body %s", v, r.status, r.body)
				}
				for _, bad := range caseVariants(v, p.accepted) {
					r := p.send(t, bad)
					msg := wantInvalid(t, bad, r, p.accepted)
					if hint := fmt.Sprintf("did you mean %q", v); !strings.Contains(msg, hint) {
						t.Errorf("%q: message %q does not say %s", bad, msg, hint)
					}
				}
			}
			for _, bad := range []string{"bogus", " " + p.accepted[0], p.accepted[0] + "\x00"} {
				wantInvalid(t, bad, p.send(t, bad), p.accepted)
			}
		})
	}
}

// wantInvalid checks that r refuses bad with 400 InvalidArgument and a
// message naming every accepted value, and returns the message.
func wantInvalid(t *testing.T, bad string, r *resp, accepted []string) string {
	t.Helper()
	if r.status != http.StatusBadRequest {
		t.Errorf("%q: status %d, want 400; body %s", bad, r.status, r.body)
		return ""
	}
	eb := r.errorBody(t)
	if eb.Error.Code != latchkey.EINVALID {
		t.Errorf("%q: code %s, want %s", bad, eb.Error.Code, latchkey.EINVALID)
	}
	for _, a := range accepted {
		if !strings.Contains(eb.Error.Message, a) {
			t.Errorf("%q: message %q does not name accepted value %q", bad, eb.Error.Message, a)
		}
	}
	return eb.Error.Message
}

func strs[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

func sorted(vs []string) []string {
	vs = slices.Clone(vs)
	sort.Strings(vs)
	return vs
}
