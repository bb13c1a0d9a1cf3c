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
		{"consumer", "rules:\n  - values: [a]\n    account: default\n    role: consumer\n    owner: globex\n", ""},
		{"consumer by claim", "rules:\n  - claim: org\n    values: [a]\n    account: default\n    role: consumer\n    owner_claim: org\n", ""},
		{"consumer without owner", "rules:\n  - values: [a]\n    account: default\n    role: consumer\n", "exactly one of owner"},
		{"consumer with both owners", "rules:\n  - values: [a]\n    account: default\n    role: consumer\n    owner: x\n    owner_claim: org\n", "exactly one of owner"},
		{"consumer without account", "rules:\n  - values: [a]\n    role: consumer\n    owner: x\n", "consumer needs an account"},
		{"consumer bad owner", "rules:\n  - values: [a]\n    account: default\n    role: consumer\n    owner: ' x'\n", "owner"},
		{"owner on an admin rule", "rules:\n  - values: [a]\n    account: default\n    role: admin\n    owner: x\n", "consumer rules only"},
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

// TestRoleMapMatchConsumer: the portal reads consumer rules only and the
// console never does; owner_claim gives the claim's one string value, and
// anything else in it matches nothing.
func TestRoleMapMatchConsumer(t *testing.T) {
	m, err := ParseRoleMap([]byte(testRoleMap + `
  - values: [globex-devs]
    account: acme
    role: consumer
    owner: globex
  - claim: org
    values: [initech, umbrella]
    account: acme
    role: consumer
    owner_claim: org
  - claim: groups
    values: [partners]
    account: acme
    role: consumer
    owner_claim: partner_org
`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		claims  map[string]any
		owner   string // "" = no consumer grant
		console latchkey.Role
	}{
		{"fixed owner", map[string]any{"groups": []any{"globex-devs"}}, "globex", ""},
		{"owner from claim", map[string]any{"org": "initech"}, "initech", ""},
		{"claim value not listed", map[string]any{"org": "acme-corp"}, "", ""},
		{"owner claim is a list", map[string]any{"groups": []any{"partners"}, "partner_org": []any{"a", "b"}}, "", ""},
		{"owner claim missing", map[string]any{"groups": []any{"partners"}}, "", ""},
		{"owner claim empty", map[string]any{"groups": []any{"partners"}, "partner_org": ""}, "", ""},
		{"owner claim string", map[string]any{"groups": []any{"partners"}, "partner_org": "hooli"}, "hooli", ""},
		{"admin is no consumer", map[string]any{"groups": []any{"lk-admins"}}, "", latchkey.RoleAdmin},
		{"both", map[string]any{"groups": []any{"lk-admins", "globex-devs"}}, "globex", latchkey.RoleAdmin},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, ok := m.matchFor(tc.claims, true)
			if ok != (tc.owner != "") || g.Owner != tc.owner || (ok && (!g.Consumer || g.Account != "acme" || g.Role != "")) {
				t.Errorf("portal match = %+v, %v; want owner %q", g, ok, tc.owner)
			}
			c, ok := m.match(tc.claims)
			if ok != (tc.console != "") || c.Role != tc.console || c.Consumer {
				t.Errorf("console match = %+v, %v; want %q", c, ok, tc.console)
			}
		})
	}
}
