package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/keyformat"
)

var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// openapiDoc returns the embedded document, parsed once.
var openapiDoc = sync.OnceValues(func() (map[string]any, error) {
	var doc map[string]any
	err := json.Unmarshal(httpapi.OpenAPI(), &doc)
	return doc, err
})

func loadDoc(t *testing.T) map[string]any {
	t.Helper()
	doc, err := openapiDoc()
	if err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	return doc
}

// docOperations returns "METHOD /path" for every operation in the document.
func docOperations(t *testing.T, doc map[string]any) []string {
	t.Helper()
	var out []string
	for path, item := range doc["paths"].(map[string]any) {
		for m := range item.(map[string]any) {
			if slices.Contains(methods, m) {
				out = append(out, strings.ToUpper(m)+" "+path)
			}
		}
	}
	sort.Strings(out)
	return out
}

func TestOpenAPIDocument(t *testing.T) {
	doc := loadDoc(t)
	if got := doc["openapi"]; got != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", got)
	}
	for _, name := range []string{"bearer", "basic", "apiKey"} {
		if _, ok := lookup(doc, "components", "securitySchemes", name); !ok {
			t.Errorf("securitySchemes has no %q", name)
		}
	}
	if s, _ := lookup(doc, "components", "securitySchemes", "apiKey"); s != nil {
		want := map[string]any{"type": "apiKey", "in": "header", "name": "X-Api-Key"}
		for k, v := range want {
			if s.(map[string]any)[k] != v {
				t.Errorf("apiKey scheme %s = %v, want %v", k, s.(map[string]any)[k], v)
			}
		}
	}
	for _, name := range []string{"AccessKey", "CreatedAccessKey", "Application", "Account", "Principal", "CreatedPrincipal",
		"AuditEvent", "VerifyRequest", "VerifyResponse", "LastUsed", "Error"} {
		if _, ok := lookup(doc, "components", "schemas", name); !ok {
			t.Errorf("components/schemas has no %s", name)
		}
	}
	codes, _ := lookup(doc, "components", "schemas", "VerifyCode", "enum")
	var got []string
	for _, c := range codes.([]any) {
		got = append(got, c.(string))
	}
	sort.Strings(got)
	if diff := cmp.Diff(httpapi.DecisionCodes(), got); diff != "" {
		t.Errorf("VerifyCode enum (-server +document):\n%s", diff)
	}
	if _, ok := lookup(doc, "components", "schemas", "CreatedAccessKey", "properties", "secret_access_key"); !ok {
		t.Error("CreatedAccessKey has no secret_access_key")
	}
	if _, ok := lookup(doc, "components", "schemas", "AccessKey", "properties", "secret_access_key"); ok {
		t.Error("AccessKey must not have secret_access_key")
	}
}

// lookup walks a parsed JSON document.
func lookup(v any, keys ...string) (any, bool) {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// TestOpenAPIRefsResolve walks every $ref in the document.
func TestOpenAPIRefsResolve(t *testing.T) {
	doc := loadDoc(t)
	n := 0
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				n++
				if _, err := resolve(doc, ref); err != nil {
					t.Errorf("%s: %v", path, err)
				}
			}
			for k, c := range v {
				walk(path+"/"+k, c)
			}
		case []any:
			for i, c := range v {
				walk(path+"/"+strconv.Itoa(i), c)
			}
		}
	}
	walk("#", doc)
	if n == 0 {
		t.Fatal("no $ref found; the walk is broken")
	}
}

func resolve(doc map[string]any, ref string) (any, error) {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("$ref %q is not local", ref)
	}
	var keys []string
	for _, k := range strings.Split(p, "/") {
		keys = append(keys, strings.NewReplacer("~1", "/", "~0", "~").Replace(k))
	}
	v, ok := lookup(doc, keys...)
	if !ok {
		return nil, fmt.Errorf("$ref %q does not resolve", ref)
	}
	return v, nil
}

// TestOpenAPIMatchesRoutes: every route the server registers is in the
// document with that method, and every operation in the document is
// served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadDoc(t)
	e := newEnv(t)
	routes := e.api.Routes()
	sort.Strings(routes)
	ops := docOperations(t, doc)
	if diff := cmp.Diff(routes, ops); diff != "" {
		t.Errorf("Server.Routes() (-) and the OpenAPI operations (+) differ:\n%s", diff)
	}

	for _, op := range ops {
		method, path, _ := strings.Cut(op, " ")
		t.Run(op, func(t *testing.T) {
			concrete := strings.NewReplacer("{name}", "nosuchname", "{id}", "LKIAAAAAAAAAAAAAAAAA").Replace(path)
			r := e.do(t, method, concrete, bearer(e.operator), "")
			if r.status == http.StatusMethodNotAllowed {
				t.Fatalf("%s answered 405: %s", op, r.body)
			}
			if r.status == http.StatusNotFound && strings.Contains(string(r.body), "no such endpoint") {
				t.Fatalf("%s is not served: %s", op, r.body)
			}
		})
	}
}

// TestOpenAPIErrorCodesMatchStatuses: each error code the document lists
// under a status is answered with that status by the server's one table.
func TestOpenAPIErrorCodesMatchStatuses(t *testing.T) {
	doc := loadDoc(t)
	for _, op := range docOperations(t, doc) {
		method, path, _ := strings.Cut(op, " ")
		responses, _ := lookup(doc, "paths", path, strings.ToLower(method), "responses")
		for status, r := range responses.(map[string]any) {
			st, err := strconv.Atoi(status)
			if err != nil {
				t.Errorf("%s: response key %q is not a status", op, status)
				continue
			}
			codes := errorCodes(t, doc, r)
			if st < 400 {
				if len(codes) > 0 {
					t.Errorf("%s %d lists error codes %v", op, st, codes)
				}
				continue
			}
			if len(codes) == 0 {
				t.Errorf("%s %d lists no error codes", op, st)
			}
			for _, c := range codes {
				if got := httpapi.StatusFor(c); got != st {
					t.Errorf("%s: code %s listed under %d, but the server answers it with %d", op, c, st, got)
				}
			}
		}
	}
}

// errorCodes returns the error.code enum of a response object.
func errorCodes(t *testing.T, doc map[string]any, r any) []string {
	t.Helper()
	if ref, ok := r.(map[string]any)["$ref"].(string); ok {
		var err error
		if r, err = resolve(doc, ref); err != nil {
			t.Fatal(err)
		}
	}
	enum, ok := lookup(r, "content", "application/json", "schema", "properties", "error", "properties", "code", "enum")
	if !ok {
		return nil
	}
	var out []string
	for _, c := range enum.([]any) {
		out = append(out, c.(string))
	}
	return out
}

// operation finds the document's operation for a concrete request path.
func operation(doc map[string]any, method, path string) (map[string]any, bool) {
	path, _, _ = strings.Cut(path, "?")
	segs := strings.Split(path, "/")
	for tmpl, item := range doc["paths"].(map[string]any) {
		ts := strings.Split(tmpl, "/")
		if len(ts) != len(segs) {
			continue
		}
		match := true
		for i := range ts {
			if strings.HasPrefix(ts[i], "{") {
				match = match && segs[i] != ""
			} else {
				match = match && ts[i] == segs[i]
			}
		}
		if !match {
			continue
		}
		if op, ok := item.(map[string]any)[strings.ToLower(method)].(map[string]any); ok {
			return op, true
		}
	}
	return nil, false
}

// checkSchema validates a response against the document: its status must be
// documented for the operation and its JSON body must match the schema.
// Requests to paths or methods the API does not serve are not checked.
func checkSchema(t *testing.T, method, path string, r *resp) {
	t.Helper()
	doc := loadDoc(t)
	op, ok := operation(doc, method, path)
	if !ok {
		if r.status < 400 {
			t.Errorf("%s %s answered %d but is not in the OpenAPI document", method, path, r.status)
		}
		return
	}
	res, ok := op["responses"].(map[string]any)[strconv.Itoa(r.status)]
	if !ok {
		t.Errorf("%s %s answered %d, which the OpenAPI document does not list; body %s", method, path, r.status, keyformat.MaskSecrets(string(r.body)))
		return
	}
	if ref, ok := res.(map[string]any)["$ref"].(string); ok {
		res, _ = resolve(doc, ref)
	}
	schema, ok := lookup(res, "content", "application/json", "schema")
	if !ok {
		if len(r.body) != 0 {
			t.Errorf("%s %s %d: the document says no body, got %s", method, path, r.status, keyformat.MaskSecrets(string(r.body)))
		}
		return
	}
	var body any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Errorf("%s %s %d: body is not JSON: %v", method, path, r.status, err)
		return
	}
	for _, err := range validate(doc, schema, body, "body") {
		// a mismatch quotes the value, which may be a secret made by the test
		t.Errorf("%s %s %d: %s", method, path, r.status, keyformat.MaskSecrets(err.Error()))
	}
}

// validate checks v against the subset of JSON Schema 2020-12 that the
// document uses. It returns every mismatch.
func validate(doc map[string]any, schema, v any, at string) []error {
	s, ok := schema.(map[string]any)
	if !ok {
		return nil
	}
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(at+": "+format, args...)) }
	if ref, ok := s["$ref"].(string); ok {
		target, err := resolve(doc, ref)
		if err != nil {
			return []error{err}
		}
		errs = append(errs, validate(doc, target, v, at)...)
	}
	for _, sub := range asSlice(s["allOf"]) {
		errs = append(errs, validate(doc, sub, v, at)...)
	}
	if one := asSlice(s["oneOf"]); len(one) > 0 {
		n := 0
		for _, sub := range one {
			if len(validate(doc, sub, v, at)) == 0 {
				n++
			}
		}
		if n != 1 {
			fail("matches %d of oneOf, want exactly 1 (value %v)", n, v)
		}
	}
	if ty, ok := s["type"]; ok {
		var types []string
		switch ty := ty.(type) {
		case string:
			types = []string{ty}
		case []any:
			for _, x := range ty {
				types = append(types, x.(string))
			}
		}
		if !slices.Contains(types, jsonType(v)) && !(jsonType(v) == "integer" && slices.Contains(types, "number")) {
			fail("type %s, want %v (value %v)", jsonType(v), types, v)
			return errs
		}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		fail("%v is not one of %v", v, enum)
	}
	switch v := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		for _, req := range asSlice(s["required"]) {
			if _, ok := v[req.(string)]; !ok {
				fail("required property %q is missing", req)
			}
		}
		for k, pv := range v {
			if ps, ok := props[k]; ok {
				errs = append(errs, validate(doc, ps, pv, at+"."+k)...)
			} else if s["additionalProperties"] == false {
				fail("property %q is not in the schema", k)
			}
		}
	case []any:
		for i, item := range v {
			errs = append(errs, validate(doc, s["items"], item, fmt.Sprintf("%s[%d]", at, i))...)
		}
	case string:
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(v) {
			fail("%q does not match %s", v, p)
		}
		if n, ok := s["maxLength"].(float64); ok && float64(len([]rune(v))) > n {
			fail("longer than %v", n)
		}
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
				fail("%q is not a date-time", v)
			}
		}
	case float64:
		if m, ok := s["minimum"].(float64); ok && v < m {
			fail("%v is below the minimum %v", v, m)
		}
	}
	return errs
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if v == float64(int64(v)) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

// TestValidateCatchesMismatches keeps the validator honest: a body that
// does not match must be reported.
func TestValidateCatchesMismatches(t *testing.T) {
	doc := loadDoc(t)
	schema := map[string]any{"$ref": "#/components/schemas/Account"}
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"valid", `{"name":"default","created_at":"2026-03-01T12:00:00Z"}`, true},
		{"missing field", `{"name":"default"}`, false},
		{"extra field", `{"name":"default","created_at":"2026-03-01T12:00:00Z","secret":"x"}`, false},
		{"wrong type", `{"name":1,"created_at":"2026-03-01T12:00:00Z"}`, false},
		{"bad time", `{"name":"default","created_at":"yesterday"}`, false},
		{"bad name", `{"name":"-x","created_at":"2026-03-01T12:00:00Z"}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(tc.body), &v); err != nil {
				t.Fatal(err)
			}
			errs := validate(doc, schema, v, "body")
			if got := len(errs) == 0; got != tc.ok {
				t.Errorf("valid = %v, want %v (errors %v)", got, tc.ok, errs)
			}
		})
	}
}
