package console

import (
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/latchkey/latchkey"
)

// RoleMap turns the claims of a person signed in with OIDC into the one
// account and role they get in the console. Rules are tried in order and
// the first that matches decides; when none matches the person is refused.
// Nobody gets a role that a rule does not name.
//
// In YAML (JSON is the same document in other brackets):
//
//	rules:
//	  - claim: groups            # the claim to look at (default "groups")
//	    values: [latchkey-ops]   # matches when the claim holds any of these
//	    role: operator
//	  - claim: groups
//	    values: [acme-key-admins]
//	    account: acme
//	    role: admin
//
// A rule on the claim "email" matches only when the token also says
// email_verified: true, so that an address nobody proved cannot buy a role.
type RoleMap struct {
	Rules []RoleRule `yaml:"rules" json:"rules"`
}

// RoleRule is one line of a RoleMap.
type RoleRule struct {
	Claim   string   `yaml:"claim" json:"claim"`
	Values  []string `yaml:"values" json:"values"`
	Account string   `yaml:"account" json:"account"`
	Role    string   `yaml:"role" json:"role"`
}

// grant is what a matching rule gives: a role in an account.
type grant struct {
	Account string
	Role    latchkey.Role
	Rule    int // 1-based, for the log
}

// consoleRoles are the roles a rule may give a person in the console. A
// verifier only verifies keys; it never uses the console. (A later portal
// adds its own "consumer" role here, for another surface.)
var consoleRoles = []latchkey.Role{latchkey.RoleOperator, latchkey.RoleAdmin, latchkey.RoleViewer}

// ParseRoleMap reads a role map in YAML or JSON. Unknown fields, a role
// other than operator, admin or viewer, a rule without values, and an
// admin or viewer rule without an account are EINVALID, naming the rule.
func ParseRoleMap(b []byte) (*RoleMap, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var m RoleMap
	if err := dec.Decode(&m); err != nil {
		return nil, latchkey.Errorf(latchkey.EINVALID, "role map: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(m.Rules) == 0 {
		return nil, latchkey.Errorf(latchkey.EINVALID, "role map: no rules; add at least one under \"rules:\" (claim, values, account, role)")
	}
	for i := range m.Rules {
		r := &m.Rules[i]
		if r.Claim == "" {
			r.Claim = "groups"
		}
		bad := func(format string, a ...any) error {
			return latchkey.Errorf(latchkey.EINVALID, "role map rule %d: %s", i+1, fmt.Sprintf(format, a...))
		}
		if len(r.Values) == 0 {
			return nil, bad("no values; a rule matches when claim %q holds one of its values", r.Claim)
		}
		for _, v := range r.Values {
			if v == "" {
				return nil, bad("an empty value would match a missing claim")
			}
		}
		role, err := latchkey.ParseRole(r.Role)
		if err != nil || !roleAllowed(role) {
			return nil, bad("role %q; a person may be operator, admin or viewer", r.Role)
		}
		switch {
		case role == latchkey.RoleOperator && r.Account == "":
			r.Account = latchkey.DefaultAccount
		case role != latchkey.RoleOperator && r.Account == "":
			return nil, bad("role %s needs an account", role)
		}
	}
	return &m, nil
}

func roleAllowed(r latchkey.Role) bool {
	for _, c := range consoleRoles {
		if r == c {
			return true
		}
	}
	return false
}

// match returns the grant of the first rule that the claims satisfy.
func (m *RoleMap) match(claims map[string]any) (grant, bool) {
	for i, r := range m.Rules {
		if r.Claim == "email" && claims["email_verified"] != true {
			continue
		}
		if claimHolds(claims[r.Claim], r.Values) {
			return grant{Account: r.Account, Role: latchkey.Role(r.Role), Rule: i + 1}, true
		}
	}
	return grant{}, false
}

// claimHolds reports whether a claim (a string, a boolean, or a list of
// strings) holds one of values. Any other shape never matches.
func claimHolds(claim any, values []string) bool {
	var have []string
	switch c := claim.(type) {
	case string:
		have = []string{c}
	case bool:
		have = []string{fmt.Sprint(c)}
	case []any:
		for _, x := range c {
			if s, ok := x.(string); ok {
				have = append(have, s)
			}
		}
	case []string:
		have = c
	}
	for _, h := range have {
		for _, v := range values {
			if h == v {
				return true
			}
		}
	}
	return false
}
