package httpapi

import (
	"encoding/base64"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/latchkey/latchkey/keyformat"
)

// Credential is what a request presented.
type Credential struct {
	Secret      string
	AccessKeyID string // from Basic auth
	Present     bool   // a credential header was sent, even a malformed one
}

// CredentialFromRequest reads the credential from, in order:
// Authorization: Bearer <secret>; Authorization: Basic base64(<id>:<secret>);
// X-Api-Key: <secret>. It never looks at the URL: see SecretInURL.
func CredentialFromRequest(r *http.Request) Credential {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, _ := strings.Cut(h, " ")
		rest = strings.TrimSpace(rest)
		switch {
		case strings.EqualFold(scheme, "Bearer"):
			return Credential{Secret: rest, Present: true}
		case strings.EqualFold(scheme, "Basic"):
			raw, err := base64.StdEncoding.DecodeString(rest)
			if err != nil {
				return Credential{Present: true}
			}
			id, secret, ok := strings.Cut(string(raw), ":")
			if !ok {
				return Credential{Present: true}
			}
			if id == "" {
				// curl -u :SECRET
				return Credential{Secret: secret, Present: true}
			}
			return Credential{Secret: secret, AccessKeyID: id, Present: true}
		}
		return Credential{Present: true}
	}
	if h := r.Header.Get("X-Api-Key"); h != "" {
		return Credential{Secret: strings.TrimSpace(h), Present: true}
	}
	return Credential{}
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
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return addr // a garbled chain: trust only what we saw
			}
			a = a.Unmap()
			if !inPrefixes(a, trusted) {
				return a
			}
			addr = a
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
