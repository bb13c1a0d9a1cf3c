package console

import (
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
)

func TestParseRoleMap(t *testing.T) {
	cases := []struct {
		name, doc, err string
	}{
		{"yaml", testRoleMap, ""},
		{"json", `{"rules":[{"claim":"roles","values":["LatchkeyAdmin"],"account":"acme","role":"admin"}]}`, ""},
		{"empty", ``, "role map"},
		{"no rules", `rules: []`, "no rules"},
		{"unknown field", "rules:\n  - values: [a]\n    role: operator\n    groups: [b]\n", "groups"},
		{"verifier", "rules:\n  - values: [a]\n    account: default\n    role: verifier\n", "operator, admin or viewer"},
		{"consumer is not a console role", "rules:\n  - values: [a]\n    account: default\n    role: consumer\n", "operator, admin or viewer"},
		{"role case", "rules:\n  - values: [a]\n    role: Operator\n", "operator, admin or viewer"},
		{"admin without account", "rules:\n  - values: [a]\n    role: admin\n", "needs an account"},
		{"no values", "rules:\n  - role: operator\n", "no values"},
		{"empty value", "rules:\n  - values: ['']\n    role: operator\n", "empty value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseRoleMap([]byte(tc.doc))
			if tc.err == "" {
				if err != nil || len(m.Rules) == 0 {
					t.Fatalf("ParseRoleMap: %v", err)
				}
				return
			}
			if latchkey.ErrorCode(err) != latchkey.EINVALID || !strings.Contains(latchkey.ErrorMessage(err), tc.err) {
				t.Fatalf("got %v, want EINVALID with %q", err, tc.err)
			}
		})
	}
}

func TestRoleMapMatch(t *testing.T) {
	m, err := ParseRoleMap([]byte(testRoleMap + `
  - claim: email
    values: [eve@example.com]
    account: acme
    role: viewer
  - claim: hd
    values: [example.org]
    account: acme
    role: viewer
`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		claims  map[string]any
		role    latchkey.Role
		account string
	}{
		{"group list", map[string]any{"groups": []any{"x", "lk-ops"}}, latchkey.RoleOperator, latchkey.DefaultAccount},
		{"group string", map[string]any{"groups": "lk-admins"}, latchkey.RoleAdmin, latchkey.DefaultAccount},
		{"order decides", map[string]any{"groups": []any{"lk-viewers", "lk-ops"}}, latchkey.RoleOperator, latchkey.DefaultAccount},
		{"case matters", map[string]any{"groups": []any{"LK-OPS"}}, "", ""},
		{"group in another claim", map[string]any{"roles": []any{"lk-ops"}}, "", ""},
		{"number in list", map[string]any{"groups": []any{1.0}}, "", ""},
		{"object", map[string]any{"groups": map[string]any{"lk-ops": true}}, "", ""},
		{"verified email", map[string]any{"email": "eve@example.com", "email_verified": true}, latchkey.RoleViewer, "acme"},
		{"unverified email", map[string]any{"email": "eve@example.com", "email_verified": false}, "", ""},
		{"email_verified as a string", map[string]any{"email": "eve@example.com", "email_verified": "true"}, "", ""},
		{"hosted domain", map[string]any{"hd": "example.org"}, latchkey.RoleViewer, "acme"},
		{"nothing", map[string]any{}, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, ok := m.match(tc.claims)
			if ok != (tc.role != "") || g.Role != tc.role || g.Account != tc.account {
				t.Fatalf("match = %+v, %v; want %q in %q", g, ok, tc.role, tc.account)
			}
		})
	}
}
