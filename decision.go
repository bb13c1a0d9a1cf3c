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
	// CodeAmbiguousPath answers a call whose path has more than one
	// meaning (CanonicalizePath), or whose method is not an HTTP token,
	// on the gateway surfaces and /v1/verify: it is refused rather than
	// judged in one reading and served in another.
	CodeAmbiguousPath Code = "AMBIGUOUS_PATH"
	// CodeUntrustedGateway answers forward auth when the headers that
	// name the original call (X-Original-*, X-Forwarded-Method/-Uri) come
	// from a peer outside --trusted-proxies, or are repeated, incomplete
	// or contradict each other.
	CodeUntrustedGateway Code = "UNTRUSTED_GATEWAY"
	// CodeCredentialAmbiguous answers a call that carries more than one
	// credential (two Authorization or X-Api-Key values, both headers, or
	// a comma-separated list in one): which one a gateway, a framework or
	// the upstream would read is not certain, so none is judged. Any
	// canary key among them still raises its alert.
	CodeCredentialAmbiguous Code = "CREDENTIAL_AMBIGUOUS"

	// Refusals of a signing key's request signature (RFC 9421; see
	// internal/httpsig). Each is given only for a key ID that names a
	// signing key the caller may use; any other key ID is NOT_FOUND.
	//
	// CodeSignatureInvalid: the signature does not verify with the key.
	CodeSignatureInvalid Code = "SIGNATURE_INVALID"
	// CodeSignatureExpired: created is older than the window, or expires
	// has passed.
	CodeSignatureExpired Code = "SIGNATURE_EXPIRED"
	// CodeSignatureFromFuture: created is later than now plus the allowed
	// clock skew.
	CodeSignatureFromFuture Code = "SIGNATURE_FROM_FUTURE"
	// CodeNonceReplayed: the key already signed a request with this nonce
	// within the window.
	CodeNonceReplayed Code = "NONCE_REPLAYED"
	// CodeDigestMismatch: the body does not match its Content-Digest.
	CodeDigestMismatch Code = "DIGEST_MISMATCH"
	// CodeComponentMissing: the signature does not cover a component
	// latchkey requires (@method, the target, content-digest with a body,
	// created, nonce), or covers one the request lacks.
	CodeComponentMissing Code = "COMPONENT_MISSING"
	// CodeAlgorithmMismatch: alg names another algorithm than the key's.
	CodeAlgorithmMismatch Code = "ALGORITHM_MISMATCH"
)

// BearerChallenge is the WWW-Authenticate value of a 401 with code c.
// A call that sent no credential gets the bare challenge: RFC 6750
// section 3.1 says a request that lacks authentication information gets
// no error code. More than one credential gets error="invalid_request";
// any other credential that was sent and refused gets
// error="invalid_token".
func BearerChallenge(c Code) string {
	switch c {
	case CodeMissing:
		return `Bearer realm="latchkey"`
	case CodeCredentialAmbiguous:
		// RFC 6750 section 3.1: "uses more than one method for
		// including an access token"
		return `Bearer realm="latchkey", error="invalid_request"`
	}
	return `Bearer realm="latchkey", error="invalid_token"`
}
