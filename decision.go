package latchkey

// Code is the outcome of verifying a credential. Every surface (verify,
// forward auth, proxy, SDK) reports one of these.
type Code string

const (
	CodeValid     Code = "VALID"
	CodeNotFound  Code = "NOT_FOUND" // unknown key, other account's key, or wrong secret for the ID
	CodeInactive  Code = "INACTIVE"
	CodeExpired   Code = "EXPIRED"
	CodeMalformed Code = "MALFORMED" // not a latchkey secret (bad shape or checksum)
	CodeMissing   Code = "MISSING"   // no credential was sent at all
)
