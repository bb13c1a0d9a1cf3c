package httpapi_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
)

// goTypeName matches what a Go type looks like in a message, outside
// quoted input: "latchkey.Status", "time.Time", "int64", "[]string",
// "map[string]", "*latchkey.Restrictions", "Go struct field".
var goTypeName = regexp.MustCompile(`\w+\.[A-Z]\w*|\bu?int(8|16|32|64)?\b|\bfloat(32|64)\b|\bstruct\b|map\[|\[\]|\*\w|Go struct|json:`)

// quoted matches a Go-quoted string: a message may quote the caller's input.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// goTypeIn returns the Go type name a message shows outside quoted input,
// or "".
func goTypeIn(msg string) string {
	return goTypeName.FindString(quoted.ReplaceAllString(msg, `""`))
}

// bodyField is a field of a request body, found in the document: its path
// ("restrictions.android_apps[0].package_name") and the JSON types its
// schema allows.
type bodyField struct {
	path  []string // keys; "[0]" for an array's first item
	types []string
}

func (f bodyField) String() string { return strings.ReplaceAll(strings.Join(f.path, "."), ".[", "[") }

// docBodyFields lists every field of every request body in the document,
// by operation, at any depth.
func docBodyFields(t *testing.T, doc map[string]any) map[string][]bodyField {
	t.Helper()
	out := map[string][]bodyField{}
	var walk func(op string, path []string, schema any, depth int)
	walk = func(op string, path []string, schema any, depth int) {
		m := deref(t, doc, schema)
		if m == nil || depth > 6 {
			return
		}
		var types []string
		switch ty := m["type"].(type) {
		case string:
			types = []string{ty}
		case []any:
			for _, x := range ty {
				types = append(types, x.(string))
			}
		}
		if len(path) > 0 {
			out[op] = append(out[op], bodyField{slices.Clone(path), types})
		}
		if props, ok := m["properties"].(map[string]any); ok {
			names := make([]string, 0, len(props))
			for n := range props {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				walk(op, append(path, n), props[n], depth+1)
			}
		}
		if items, ok := m["items"]; ok && len(path) > 0 {
			walk(op, append(path, "[0]"), items, depth+1)
		}
	}
	for p, item := range doc["paths"].(map[string]any) {
		for _, method := range methods {
			op, ok := item.(map[string]any)[method].(map[string]any)
			if !ok || op["requestBody"] == nil {
				continue
			}
			rb := op["requestBody"].(map[string]any)
			walk(strings.ToUpper(method)+" "+p, nil, rb["content"].(map[string]any)["application/json"].(map[string]any)["schema"], 0)
		}
	}
	return out
}

// wrongValues are JSON values of every type, by the schema type they are.
var wrongValues = []struct {
	value any
	is    []string // schema types the value satisfies
}{
	{"text", []string{"string"}},
	{7, []string{"integer", "number"}},
	{1.5, []string{"number"}},
	{true, []string{"boolean"}},
	{[]any{}, []string{"array"}},
	{map[string]any{}, []string{"object"}},
}

// nest builds the body that puts v at path.
func nest(path []string, v any) any {
	if len(path) == 0 {
		return v
	}
	inner := nest(path[1:], v)
	if path[0] == "[0]" {
		return []any{inner}
	}
	return map[string]any{path[0]: inner}
}

// TestWrongTypesNameTheField sends, for every field of every request body
// in the document, a value of every JSON type the field's schema does not
// allow. Each is a 400 MalformedRequest whose message names the field by
// its path and shows no Go type.
func TestWrongTypesNameTheField(t *testing.T) {
	e := newEnv(t)
	target := e.bodyTargets(t)
	fields := docBodyFields(t, loadDoc(t))
	ops := make([]string, 0, len(fields))
	for op := range fields {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	sent, tested := 0, 0
	for _, op := range ops {
		if op == "POST /v1/leaks/github" {
			continue // signed by GitHub and answered the same whatever is wrong: see TestGitHubLeaks
		}
		method, path, _ := strings.Cut(op, " ")
		tested++
		t.Run(op, func(t *testing.T) {
			for _, f := range fields[op] {
				for _, w := range wrongValues {
					if slices.ContainsFunc(w.is, func(s string) bool { return slices.Contains(f.types, s) }) || len(f.types) == 0 {
						continue
					}
					body, err := json.Marshal(nest(f.path, w.value))
					if err != nil {
						t.Fatal(err)
					}
					sent++
					r := e.do(t, method, target.Replace(path), bearer(e.operator), string(body))
					if r.status != http.StatusBadRequest {
						t.Errorf("%s: status %d, want 400; body %s", body, r.status, r.body)
						continue
					}
					eb := r.errorBody(t)
					if eb.Error.Code != latchkey.EMALFORMED {
						t.Errorf("%s: code %s, want %s (%s)", body, eb.Error.Code, latchkey.EMALFORMED, eb.Error.Message)
					}
					if !strings.HasPrefix(eb.Error.Message, f.String()+" must be ") {
						t.Errorf("%s: message %q does not start with %q", body, eb.Error.Message, f.String()+" must be ")
					}
					if g := goTypeIn(eb.Error.Message); g != "" {
						t.Errorf("%s: message %q shows Go type %q", body, eb.Error.Message, g)
					}
				}
			}
		})
	}
	if sent < 100 {
		t.Errorf("only %d wrong values sent; the walk of the document is broken", sent)
	}
	t.Logf("%d wrong values sent to %d operations", sent, tested)
}

// bodyTargets makes an application "billing" with a key, and a webhook,
// and returns what turns the document's paths into theirs.
func (e *env) bodyTargets(t *testing.T) *strings.Replacer {
	t.Helper()
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	key := e.mustKey(t, latchkey.DefaultAccount, "billing")
	wh, err := e.svc.CreateWebhook(t.Context(), e.sys(), latchkey.DefaultAccount, latchkey.NewWebhook{URL: "https://hooks.example.com/targets"})
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer(
		"/v1/webhooks/{id}", "/v1/webhooks/"+wh.ID,
		"/v1/access-keys/{id}", "/v1/access-keys/"+key.ID,
		"/v1/principals/{name}", "/v1/principals/alice",
		"/v1/applications/{name}", "/v1/applications/billing",
	)
}

// TestDecodeMessages pins the messages for the cases people meet first.
func TestDecodeMessages(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	key := "/v1/access-keys/" + e.mustKey(t, latchkey.DefaultAccount, "billing").ID
	tests := []struct {
		name, method, path, body string
		code, message            string
	}{
		{"status as a number", "PATCH", key, `{"status":1}`,
			latchkey.EMALFORMED, `status must be Active or Inactive, not a number`},
		{"role as a boolean", "POST", "/v1/principals", `{"name":"p","role":true}`,
			latchkey.EMALFORMED, `role must be operator, admin, viewer or verifier, not true or false`},
		{"expires_at not RFC 3339", "PATCH", key, `{"expires_at":"tomorrow"}`,
			latchkey.EMALFORMED, `expires_at must be an RFC 3339 time such as 2027-01-31T00:00:00Z, not "tomorrow"`},
		{"expires_at without a zone", "POST", "/v1/applications/billing/access-keys", `{"expires_at":"2027-01-31T00:00:00"}`,
			latchkey.EMALFORMED, `expires_at must be an RFC 3339 time such as 2027-01-31T00:00:00Z, not "2027-01-31T00:00:00"`},
		{"expires_at as a number", "PATCH", key, `{"expires_at":1767225600}`,
			latchkey.EMALFORMED, `expires_at must be an RFC 3339 time string such as 2027-01-31T00:00:00Z, not a number`},
		{"an item of an array", "POST", "/v1/applications", `{"name":"x","restrictions":{"allowed_ips":["10.0.0.0/8",4]}}`,
			latchkey.EMALFORMED, `restrictions.allowed_ips[1] must be a string, not a number`},
		{"a field of an item", "PATCH", key, `{"restrictions":{"android_apps":[{"package_name":"a","sha1_fingerprint":false}]}}`,
			latchkey.EMALFORMED, `restrictions.android_apps[0].sha1_fingerprint must be a string, not true or false`},
		{"fractional integer", "PATCH", key, `{"restrictions":{"rate_limit":{"per_second":1,"burst":2.5}}}`,
			latchkey.EMALFORMED, `restrictions.rate_limit.burst must be a whole number, not 2.5`},
		{"a key in another case", "PATCH", key, `{"Restrictions":{"rate_limit":{"BURST":1.5}}}`,
			latchkey.EMALFORMED, `restrictions.rate_limit.burst must be a whole number, not 1.5`},
		{"unknown nested field", "PATCH", key, `{"restrictions":{"rate_limit":{"per_hour":5}}}`,
			latchkey.EMALFORMED, `unknown field "restrictions.rate_limit.per_hour" (restrictions.rate_limit has per_second, burst and per_minute)`},
		{"body is an array", "POST", "/v1/applications", `[{"name":"x"}]`,
			latchkey.EMALFORMED, `request body must be an object, not an array`},
		{"policy period as a number", "PUT", "/v1/policy", `{"max_key_age":90}`,
			latchkey.EMALFORMED, `max_key_age must be a period such as "90d", "36h" or "off", not a number`},
		{"policy period not a period", "PUT", "/v1/policy", `{"warn_before":"2 weeks"}`,
			latchkey.EINVALID, `warn_before "2 weeks": expected a number of days such as 90d, a duration such as 36h, or off`},
		{"events as a string", "POST", "/v1/webhooks", `{"url":"https://hooks.example.com/","events":"key.created"}`,
			latchkey.EMALFORMED, `events must be an array, not a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.method, tt.path, bearer(e.operator), tt.body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body %s", r.status, r.body)
			}
			eb := r.errorBody(t)
			if eb.Error.Code != tt.code || eb.Error.Message != tt.message {
				t.Errorf("got %s %q\nwant %s %q", eb.Error.Code, eb.Error.Message, tt.code, tt.message)
			}
		})
	}
}
