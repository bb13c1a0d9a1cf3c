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
//
// The role consumer is for the self-service portal (/portal), not the
// console: it names the account and the consumer organisation (owner) the
// person manages applications of, either fixed (owner) or read from a
// claim of the person (owner_claim, which must then hold one string):
//
//	rules:
//	  - claim: groups
//	    values: [globex-developers]
//	    account: acme
//	    role: consumer
//	    owner: globex
//	  - claim: org_id          # anyone whose org_id is one of these ...
//	    values: [globex, initech]
//	    account: acme
//	    role: consumer
//	    owner_claim: org_id    # ... manages the apps owned by its value
//
// The console reads only the operator, admin and viewer rules and the
// portal only the consumer rules, each taking the first that matches: a
// consumer rule never opens the console, and a console rule never opens
// the portal.
type RoleMap struct {
	Rules []RoleRule `yaml:"rules" json:"rules"`
}

// RoleRule is one line of a RoleMap.
type RoleRule struct {
	Claim   string   `yaml:"claim" json:"claim"`
	Values  []string `yaml:"values" json:"values"`
	Account string   `yaml:"account" json:"account"`
	Role    string   `yaml:"role" json:"role"`
	// Owner (fixed) or OwnerClaim (the claim whose one string value it
	// is) names a consumer's organisation; consumer rules only.
	Owner      string `yaml:"owner" json:"owner"`
	OwnerClaim string `yaml:"owner_claim" json:"owner_claim"`
}

// RoleConsumer is the role map's role for API consumers in the portal. It
// is no latchkey.Role: a consumer has no principal and no API access.
const RoleConsumer = "consumer"

// grant is what a matching rule gives: a role in an account or, for a
// consumer, an owner in an account.
type grant struct {
	Account string
	Role    latchkey.Role // "" for a consumer
	Rule    int           // 1-based, for the log
	// Consumer marks a portal grant; Owner is then the organisation
	// whose applications the person manages.
	Consumer bool
	Owner    string
}

// consoleRoles are the roles a rule may give a person in the console. A
// verifier only verifies keys; it never uses the console. (The portal's
// role, consumer, is RoleConsumer.)
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
		if r.Role == RoleConsumer {
			switch {
			case r.Account == "":
				return nil, bad("role consumer needs an account")
			case (r.Owner == "") == (r.OwnerClaim == ""):
				return nil, bad("role consumer needs exactly one of owner (the organisation) or owner_claim (the claim that names it)")
			}
			if err := latchkey.ValidateOwner(r.Owner); err != nil {
				return nil, bad("owner: %s", latchkey.ErrorMessage(err))
			}
			continue
		}
		if r.Owner != "" || r.OwnerClaim != "" {
			return nil, bad("owner and owner_claim belong to consumer rules only")
		}
		role, err := latchkey.ParseRole(r.Role)
		if err != nil || !roleAllowed(role) {
			return nil, bad("role %q; a person may be operator, admin or viewer (console) or consumer (portal)", r.Role)
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

// match returns the grant of the first console rule (operator, admin,
// viewer) that the claims satisfy.
func (m *RoleMap) match(claims map[string]any) (grant, bool) {
	return m.matchFor(claims, false)
}

// matchFor returns the grant of the first rule for the portal (consumer
// set) or the console that the claims satisfy. A consumer rule whose
// owner_claim is not one printable string does not match.
func (m *RoleMap) matchFor(claims map[string]any, consumer bool) (grant, bool) {
	for i, r := range m.Rules {
		if (r.Role == RoleConsumer) != consumer {
			continue
		}
		if (r.Claim == "email" || r.OwnerClaim == "email") && claims["email_verified"] != true {
			continue
		}
		if !claimHolds(claims[r.Claim], r.Values) {
			continue
		}
		if !consumer {
			return grant{Account: r.Account, Role: latchkey.Role(r.Role), Rule: i + 1}, true
		}
		owner := r.Owner
		if r.OwnerClaim != "" {
			s, ok := claims[r.OwnerClaim].(string)
			if !ok || s == "" || latchkey.ValidateOwner(s) != nil {
				continue
			}
			owner = s
		}
		return grant{Account: r.Account, Rule: i + 1, Consumer: true, Owner: owner}, true
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
