package latchkey

import "time"

// Role is what an admin principal may do.
type Role string

const (
	// RoleOperator manages every account.
	RoleOperator Role = "operator"
	// RoleAdmin manages one account.
	RoleAdmin Role = "admin"
	// RoleViewer reads one account and changes nothing.
	RoleViewer Role = "viewer"
	// RoleVerifier may only call the verification endpoints, for one account.
	RoleVerifier Role = "verifier"
)

// Roles lists every role, in the order the OpenAPI document does.
func Roles() []Role { return []Role{RoleOperator, RoleAdmin, RoleViewer, RoleVerifier} }

// ParseRole accepts the four role names, exactly (case-sensitive).
// Returns EINVALID naming them otherwise.
func ParseRole(s string) (Role, error) { return ParseChoice("role", s, Roles()) }

// Principal is a person or automation that manages keys. It authenticates
// with an access key of its own.
type Principal struct {
	Account   string    `json:"account"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// Actor is the authenticated caller of a management operation, as recorded
// in audit events.
type Actor struct {
	Principal   string // principal name; "system" for the server itself
	Account     string // the principal's account
	Role        Role
	AccessKeyID string // the key the caller signed in with
	SourceIP    string
	UserAgent   string
}

// System is the actor for changes the server makes by itself (bootstrap).
func System() Actor {
	return Actor{Principal: "system", Account: DefaultAccount, Role: RoleOperator}
}

// CanRead reports whether the actor may read objects of account.
func (a Actor) CanRead(account string) bool {
	switch a.Role {
	case RoleOperator:
		return true
	case RoleAdmin, RoleViewer:
		return a.Account == account
	}
	return false
}

// CanWrite reports whether the actor may change objects of account.
func (a Actor) CanWrite(account string) bool {
	switch a.Role {
	case RoleOperator:
		return true
	case RoleAdmin:
		return a.Account == account
	}
	return false
}

// CanSeeCanaries reports whether the actor may see account's canary keys
// and that they are canaries: those who may change the account (operators,
// and the account's admins). To a viewer a canary does not exist: it is
// left out of lists, reports and the audit log, and reading it is
// NOT_FOUND, so that a viewer's credential, if stolen, cannot be used to
// tell the canaries from the real keys.
func (a Actor) CanSeeCanaries(account string) bool { return a.CanWrite(account) }

// CanVerify reports whether the actor may verify keys of account.
func (a Actor) CanVerify(account string) bool {
	if a.Role == RoleOperator {
		return true
	}
	return a.Role != "" && a.Account == account
}
