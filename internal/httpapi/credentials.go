package httpapi

import (
	"encoding/base64"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// Credential is what a request presented.
type Credential struct {
	Secret      string
	AccessKeyID string // from Basic auth
	Present     bool   // a credential header was sent, even a malformed one
	// Extra holds the secrets of every further credential the request
	// carried ("" for one that could not be read): a request with any is
	// refused CREDENTIAL_AMBIGUOUS, and each is looked at only for a
	// canary key's alert.
	Extra []string
}

// CredentialFromRequest reads the credential from Authorization: Bearer
// <secret>, Authorization: Basic base64(<id>:<secret>), or X-Api-Key:
// <secret>. It never looks at the URL: see SecretInURL.
//
// A request may carry one credential only. Two header lines, both
// headers, a value that lists several (comma-separated, as proxies join
// repeated headers): each is a credential, the first found is Secret and
// the others are Extra. Which one a gateway, a framework or the upstream
// would take is not certain, so the surfaces refuse the call instead of
// picking one. A credential under an underscore twin of X-Api-Key
// (X_Api_Key, which CGI, WSGI and Rack servers read as X-Api-Key and
// nginx drops) is always Extra, even alone: the call is refused too.
func CredentialFromRequest(r *http.Request) Credential {
	var c Credential
	read := false // c.Secret holds the first credential
	for _, f := range credentialHeaders {
		for _, v := range r.Header[f.name] {
			c.Present = c.Present || v != ""
			for v != "" {
				var part string
				part, v, _ = strings.Cut(v, ",")
				if part = strings.TrimSpace(part); part == "" {
					continue
				}
				secret, id := parseCredential(part, f.auth)
				// Servers differ on an underscored name (nginx drops
				// it, WSGI reads it as the dashed one): a credential
				// under one is never taken as the credential.
				if !read && !f.twin {
					c.Secret, c.AccessKeyID, read = secret, id, true
					continue
				}
				c.Extra = append(c.Extra, secret)
			}
		}
	}
	return c
}

// credentialHeaders are the names, in the canonical form Go's server
// gives every request header (textproto.CanonicalMIMEHeaderKey), under
// which a credential can arrive: Authorization, X-Api-Key, and the
// underscore twins of X-Api-Key. Looking up each one costs five map
// lookups; ranging over the request's headers cost ten times as much.
var credentialHeaders = [...]struct {
	name       string
	auth, twin bool
}{
	{"Authorization", true, false},
	{"X-Api-Key", false, false},
	{"X_api_key", false, true},
	{"X-Api_key", false, true},
	{"X_api-Key", false, true},
}

// IsCredentialHeader reports whether a request header of this name
// carries a credential: Authorization or X-Api-Key, read as
// latchkey.HeaderNameEqual reads names (any case, "_" for "-"). The
// gateway surfaces remove every such header before the upstream sees the
// call.
func IsCredentialHeader(name string) bool {
	switch len(name) {
	case len("Authorization"):
		return latchkey.HeaderNameEqual(name, "Authorization")
	case len("X-Api-Key"):
		return latchkey.HeaderNameEqual(name, "X-Api-Key")
	}
	return false
}

// parseCredential reads one credential: an Authorization value (auth)
// or an X-Api-Key value. An Authorization scheme other than Bearer and
// Basic, or a Basic value that is not base64 of "id:secret", gives no
// secret.
func parseCredential(v string, auth bool) (secret, id string) {
	if !auth {
		return v, ""
	}
	scheme, rest, _ := strings.Cut(v, " ")
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return rest, ""
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return "", ""
		}
		id, secret, ok := strings.Cut(string(raw), ":")
		if !ok {
			return "", ""
		}
		// curl -u :SECRET gives an empty ID
		return secret, id
	}
	return "", ""
}

// credentialParams are query parameter names that mean "a credential is
// here" whatever their value looks like.
var credentialParams = map[string]bool{
	"api_key": true, "apikey": true, "api-key": true, "key": true, "access_key": true,
	"secret": true, "secret_access_key": true, "token": true, "access_token": true, "x-api-key": true,
}

// SecretInURL reports whether the request's URL carries a credential: a
// query parameter named like one, or a latchkey secret anywhere in the path
// or query. It returns every valid latchkey secret found, so the caller can
// flag those keys exposed.
func SecretInURL(r *http.Request) (found bool, secrets []string) {
	return secretInURL(r.URL.Path, r.URL.RawQuery)
}

// secretInURL is SecretInURL on a decoded path and a raw query. It splits
// and decodes the query as url.ParseQuery does (pairs separated by "&",
// pairs with ";" or undecodable escapes skipped), without building the
// url.Values: it allocates nothing unless it finds something.
func secretInURL(path, raw string) (found bool, secrets []string) {
	if mayHoldSecret(path) {
		secrets = appendSecrets(secrets, path)
	}
	for q := raw; q != ""; {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		name, val, _ := strings.Cut(pair, "=")
		name, ok := queryUnescape(name)
		if !ok {
			continue
		}
		if val, ok = queryUnescape(val); !ok {
			continue
		}
		if val != "" && isCredentialParam(name) {
			found = true
		}
		if mayHoldSecret(val) {
			secrets = appendSecrets(secrets, val)
		}
		if mayHoldSecret(name) {
			secrets = appendSecrets(secrets, name)
		}
	}
	if len(secrets) == 0 && mayHoldSecret(raw) {
		// malformed query that could not be split
		secrets = appendSecrets(secrets, raw)
	}
	return found || len(secrets) > 0, secrets
}

// queryUnescape decodes a query component, copying only when it has
// something to decode.
func queryUnescape(s string) (string, bool) {
	if !strings.ContainsAny(s, "%+") {
		return s, true
	}
	u, err := url.QueryUnescape(s)
	return u, err == nil
}

// isCredentialParam reports whether a query parameter's name, in any case,
// is one of credentialParams.
func isCredentialParam(name string) bool {
	var b [len("secret_access_key")]byte
	for i := range len(name) {
		c := name[i]
		if c >= utf8.RuneSelf {
			// Unicode case folding: "\u212aey" (Kelvin sign) is "key".
			return credentialParams[strings.ToLower(name)]
		}
		if i >= len(b) {
			return false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return credentialParams[string(b[:len(name)])]
}

// mayHoldSecret is the cheap test before appendSecrets: every secret has a
// '_' before its last 46 characters.
func mayHoldSecret(s string) bool {
	return len(s) >= keyformat.MinPrefixLen+46 && strings.IndexByte(s, '_') >= 0
}

// appendSecrets appends each checksum-valid secret in s (lksk_ or with an
// account's prefix: keyformat.IndexSecret) that out does not hold yet.
func appendSecrets(out []string, s string) []string {
	for {
		i, j := keyformat.IndexSecret(s)
		if i < 0 {
			return out
		}
		// once per secret: each one found is flagged exposed, with an
		// audit event, however often the URL repeats it
		if !slices.Contains(out, s[i:j]) {
			out = append(out, s[i:j])
		}
		s = s[j:]
	}
}

// safePath returns the request path for logs, with anything that looks like
// a secret masked.
func safePath(r *http.Request) string { return keyformat.MaskSecrets(r.URL.Path) }

// ClientIP returns the address of the client: the connection's peer, or, when
// the peer is a trusted proxy, the nearest untrusted address in
// X-Forwarded-For. Forwarding headers from anyone else are ignored.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		a, _ := netip.ParseAddr(r.RemoteAddr)
		return a.Unmap()
	}
	addr := peer.Addr().Unmap()
	if !inPrefixes(addr, trusted) {
		return addr
	}
	hops := r.Header["X-Forwarded-For"] // Values, without canonicalising the name
	for i := len(hops) - 1; i >= 0; i-- {
		// The hops right to left, as strings.Split would give them,
		// without allocating the split.
		rest := hops[i]
		for {
			j := strings.LastIndexByte(rest, ',')
			a, err := netip.ParseAddr(strings.TrimSpace(rest[j+1:]))
			if err != nil {
				return addr // a garbled chain: trust only what we saw
			}
			a = a.Unmap()
			if !inPrefixes(a, trusted) {
				return a
			}
			addr = a
			if j < 0 {
				break
			}
			rest = rest[:j]
		}
	}
	return addr
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addrString is a client address for the audit: "" when there is none (a
// unix socket), never "invalid IP".
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
