package httpapi_test

import (
	"slices"
	"strings"
	"testing"
	"unicode"
)

// The document is fed to client generators with their default settings. CI
// runs the real ones (.ci/openapi/run: oapi-codegen, Spectral, Redocly);
// these tests catch offline, in the README's test command, the mistakes that
// broke them before.

// TestOpenAPIGeneratedNamesAreDistinct: the Go names oapi-codegen derives
// from component names and operation IDs do not collide. A parameter
// component "account" and a schema "Account" are both type Account; a
// schema "VerifyResponse" and operation "verify"'s response wrapper are
// both type VerifyResponse.
func TestOpenAPIGeneratedNamesAreDistinct(t *testing.T) {
	doc := loadDoc(t)
	owner := map[string]string{}
	claim := func(name, by string) {
		if prev, ok := owner[name]; ok {
			t.Errorf("Go name %s: %s collides with %s", name, by, prev)
			return
		}
		owner[name] = by
	}
	// What the client template declares whatever the document says.
	for _, name := range []string{"Client", "ClientInterface", "ClientOption", "ClientWithResponses",
		"ClientWithResponsesInterface", "HttpRequestDoer", "RequestEditorFn", "NewClient",
		"NewClientWithResponses", "WithBaseURL", "WithHTTPClient", "WithRequestEditorFn"} {
		claim(name, "oapi-codegen's client")
	}
	for _, kind := range []string{"schemas", "parameters", "responses", "requestBodies", "headers"} {
		comps, _ := lookup(doc, "components", kind)
		for _, name := range sortedKeys(comps) {
			claim(goName(name), "components/"+kind+"/"+name)
		}
	}
	for _, op := range docOperations(t, doc) {
		method, path, _ := strings.Cut(op, " ")
		id, _ := lookup(doc, "paths", path, strings.ToLower(method), "operationId")
		s, _ := id.(string)
		if s == "" {
			t.Errorf("%s has no operationId", op)
			continue
		}
		n := goName(s)
		for _, name := range []string{n, n + "Response", n + "Params", n + "JSONBody", n + "JSONRequestBody",
			n + "WithBody", n + "WithResponse", "New" + n + "Request", "Parse" + n + "Response"} {
			claim(name, "operation "+s+" ("+op+")")
		}
	}
}

// goName is oapi-codegen's default name for a component or an operation
// (ToCamelCase): separators dropped, each word's first letter upper case.
func goName(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
		}
		b.WriteRune(r)
		up = false
	}
	return b.String()
}

func sortedKeys(v any) []string {
	m, _ := v.(map[string]any)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestGoName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"account", "Account"},
		{"account_param", "AccountParam"},
		{"access_key_id", "AccessKeyId"},
		{"AccessKeyID", "AccessKeyID"},
		{"BadRequest_CredentialsInUrl", "BadRequestCredentialsInUrl"},
		{"verify", "Verify"},
		{"listApplicationAccessKeys", "ListApplicationAccessKeys"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := goName(tc.in); got != tc.want {
				t.Errorf("goName(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestOpenAPILintBasics: what Spectral's spectral:oas and Redocly's
// recommended rulesets reported as errors or warnings before: every array
// schema says what its items are, every tag an operation uses is declared,
// and the info object has a contact and a license.
func TestOpenAPILintBasics(t *testing.T) {
	doc := loadDoc(t)
	if _, ok := lookup(doc, "info", "contact"); !ok {
		t.Error("info has no contact")
	}
	if name, _ := lookup(doc, "info", "license", "name"); name == nil || name == "" {
		t.Error("info has no license with a name")
	}

	declared := map[string]bool{}
	for _, tag := range asSlice(doc["tags"]) {
		name, _ := lookup(tag, "name")
		declared[name.(string)] = true
	}
	for _, op := range docOperations(t, doc) {
		method, path, _ := strings.Cut(op, " ")
		tags, _ := lookup(doc, "paths", path, strings.ToLower(method), "tags")
		if len(asSlice(tags)) == 0 {
			t.Errorf("%s has no tag", op)
		}
		for _, tag := range asSlice(tags) {
			if !declared[tag.(string)] {
				t.Errorf("%s: tag %q is not declared in the document's tags", op, tag)
			}
		}
	}

	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if isArraySchema(v) && v["items"] == nil && v["prefixItems"] == nil {
				t.Errorf("%s: an array schema without items", at)
			}
			for _, k := range sortedKeys(v) {
				walk(at+"/"+k, v[k])
			}
		case []any:
			for _, c := range v {
				walk(at+"/[]", c)
			}
		}
	}
	walk("#", doc)
}

// isArraySchema reports whether m is a schema whose type is or includes
// "array". A property named "type" has a schema, not a string, as value.
func isArraySchema(m map[string]any) bool {
	switch ty := m["type"].(type) {
	case string:
		return ty == "array"
	case []any:
		return slices.Contains(ty, any("array"))
	}
	return false
}
