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

	CodeIPNotAllowed       Code = "IP_NOT_ALLOWED"
	CodeReferrerNotAllowed Code = "REFERRER_NOT_ALLOWED"
	CodeAppNotAllowed      Code = "APP_NOT_ALLOWED"
	CodeScopeDenied        Code = "SCOPE_DENIED"
	CodeRateLimited        Code = "RATE_LIMITED"
	// CodeCredentialsInURL answers a call whose URL carried a credential,
	// on surfaces that speak decision codes (forward auth, proxy).
	CodeCredentialsInURL Code = "CREDENTIALS_IN_URL"
	// CodeThrottled answers a client address that sent too many invalid
	// credentials (the brute-force guard).
	CodeThrottled Code = "THROTTLED"
)
