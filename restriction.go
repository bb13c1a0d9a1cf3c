package latchkey

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Restrictions narrow where and how a key may be used. Set on an
// application, they are the default for all its keys; set on a key, they
// narrow it further: a call must satisfy both. Every kind of restriction
// that is set must be satisfied; an empty list restricts nothing.
type Restrictions struct {
	// AllowedIPs are IPv4/IPv6 addresses and CIDR ranges.
	AllowedIPs []string `json:"allowed_ips,omitempty"`
	// AllowedReferrers are patterns such as https://*.example.com/* (see
	// ParseReferrerPattern for the rules).
	AllowedReferrers []string `json:"allowed_referrers,omitempty"`
	// AndroidApps are package names with SHA-1 signing-certificate
	// fingerprints, sent as X-Android-Package and X-Android-Cert.
	AndroidApps []AndroidApp `json:"android_apps,omitempty"`
	// IOSBundleIDs are bundle identifiers, sent as X-Ios-Bundle-Identifier.
	IOSBundleIDs []string `json:"ios_bundle_ids,omitempty"`
	// Scopes the key may use, e.g. "shipments:read" or "shipments:*".
	// Empty means any scope.
	Scopes []string `json:"scopes,omitempty"`
	// RateLimit bounds requests per key.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
}

// AndroidApp identifies an Android app by package and signing certificate.
type AndroidApp struct {
	PackageName     string `json:"package_name"`
	SHA1Fingerprint string `json:"sha1_fingerprint"`
}

// RateLimit is a token bucket per key: PerSecond tokens a second with Burst
// capacity, and/or PerMinute a minute (burst of PerMinute).
type RateLimit struct {
	PerSecond float64 `json:"per_second,omitempty"`
	Burst     int     `json:"burst,omitempty"`
	PerMinute int     `json:"per_minute,omitempty"`
}

// Empty reports whether r restricts nothing.
func (r *Restrictions) Empty() bool {
	return r == nil || (len(r.AllowedIPs) == 0 && len(r.AllowedReferrers) == 0 && len(r.AndroidApps) == 0 &&
		len(r.IOSBundleIDs) == 0 && len(r.Scopes) == 0 && r.RateLimit == nil)
}

// Limits on restriction lists, so a request cannot make a key that is
// expensive to check.
const (
	MaxRestrictionEntries = 1000
	MaxScopeLen           = 128
)

// Validate checks every value and normalises it in place (CIDRs masked,
// fingerprints lower-case hex without colons). Errors name the field and the
// value and say what would be accepted.
func (r *Restrictions) Validate() error {
	if r == nil {
		return nil
	}
	lists := []struct {
		name string
		n    int
	}{
		{"allowed_ips", len(r.AllowedIPs)}, {"allowed_referrers", len(r.AllowedReferrers)},
		{"android_apps", len(r.AndroidApps)}, {"ios_bundle_ids", len(r.IOSBundleIDs)}, {"scopes", len(r.Scopes)},
	}
	for _, l := range lists {
		if l.n > MaxRestrictionEntries {
			return Errorf(EINVALID, "%s has %d entries; at most %d are allowed", l.name, l.n, MaxRestrictionEntries)
		}
	}
	for i, s := range r.AllowedIPs {
		p, err := ParsePrefix(s)
		if err != nil {
			return err
		}
		r.AllowedIPs[i] = p.String()
	}
	for _, s := range r.AllowedReferrers {
		if _, err := ParseReferrerPattern(s); err != nil {
			return err
		}
	}
	for i, a := range r.AndroidApps {
		if err := validateAndroidPackage(a.PackageName); err != nil {
			return err
		}
		fp, err := NormalizeSHA1Fingerprint(a.SHA1Fingerprint)
		if err != nil {
			return err
		}
		r.AndroidApps[i].SHA1Fingerprint = fp
	}
	for _, b := range r.IOSBundleIDs {
		if err := validateBundleID(b); err != nil {
			return err
		}
	}
	for _, s := range r.Scopes {
		if err := validateScope(s); err != nil {
			return err
		}
	}
	if rl := r.RateLimit; rl != nil {
		// !(a <= b) rather than a > b: NaN fails every comparison
		if !(rl.PerSecond >= 0 && rl.PerSecond <= 1e6) || rl.Burst < 0 || rl.Burst > 1e6 || rl.PerMinute < 0 || rl.PerMinute > 6e7 {
			return Errorf(EINVALID, "rate_limit: per_second must be 0 to 1000000, burst 0 to 1000000, per_minute 0 to 60000000")
		}
		if rl.PerSecond == 0 && rl.PerMinute == 0 {
			return Errorf(EINVALID, "rate_limit needs per_second or per_minute (or omit rate_limit)")
		}
		if rl.PerSecond == 0 && rl.Burst != 0 {
			return Errorf(EINVALID, "rate_limit.burst goes with per_second")
		}
		if rl.PerSecond > 0 && rl.Burst == 0 {
			rl.Burst = max(1, int(rl.PerSecond))
		}
	}
	return nil
}

// ParsePrefix accepts an IPv4 or IPv6 address or CIDR range. An address is a
// single-address range. IPv4-mapped IPv6 is turned into IPv4.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, Errorf(EINVALID, "allowed_ips: %q is not a valid CIDR range (e.g. 203.0.113.0/24 or 2001:db8::/32)", s)
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, Errorf(EINVALID, "allowed_ips: %q must not have a zone", s)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, Errorf(EINVALID, "allowed_ips: %q is neither an IP address nor a CIDR range (e.g. 203.0.113.7 or 203.0.113.0/24)", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ReferrerPattern is a parsed allowed-referrer pattern.
//
// Rules: the pattern is SCHEME://HOST[:PORT][PATH].
//   - SCHEME is http, https, or * (either).
//   - HOST is a host name, compared without regard to case; a leading "*."
//     matches any one or more labels before the rest (*.example.com matches
//     a.example.com and a.b.example.com, not example.com); "*" alone matches
//     any host. A wildcard anywhere else in the host is an error.
//   - PORT, when given, must match; when omitted, any port matches.
//   - PATH is matched as a prefix when it ends in "*", exactly otherwise;
//     an omitted path, "/" followed by nothing, or "/*" matches every path.
//
// Userinfo in a referrer (https://user@host/) never matches.
type ReferrerPattern struct {
	Scheme     string // "http", "https" or "" for either
	Host       string // lower case, without the wildcard label
	Wildcard   bool   // host began with "*."
	AnyHost    bool
	Port       string // "" = any
	Path       string
	PathPrefix bool
}

// ParseReferrerPattern parses and checks a pattern.
func ParseReferrerPattern(s string) (ReferrerPattern, error) {
	bad := func(why string) (ReferrerPattern, error) {
		return ReferrerPattern{}, Errorf(EINVALID, "allowed_referrers: %q: %s (e.g. https://*.example.com/*)", s, why)
	}
	var p ReferrerPattern
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return bad("must start with http://, https:// or *://")
	}
	switch strings.ToLower(scheme) {
	case "http", "https":
		p.Scheme = strings.ToLower(scheme)
	case "*":
	default:
		return bad("scheme must be http, https or *")
	}
	host, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		host, path = rest[:i], rest[i:]
	}
	if strings.ContainsAny(host, "@?#") || strings.ContainsAny(path, "?#") {
		return bad("must not contain userinfo, a query or a fragment")
	}
	if h, port, ok := strings.Cut(host, ":"); ok {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return bad("port must be a number from 0 to 65535")
		}
		host, p.Port = h, port
	}
	host = strings.ToLower(host)
	switch {
	case host == "*":
		p.AnyHost = true
	case strings.HasPrefix(host, "*."):
		p.Wildcard, host = true, host[2:]
	}
	if !p.AnyHost {
		if host == "" {
			return bad("host is missing")
		}
		if strings.Contains(host, "*") {
			return bad("a wildcard may only be the whole first label of the host, as in *.example.com")
		}
		for _, c := range host {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
				return bad("host may hold only letters, digits, '-' and '.'")
			}
		}
		p.Host = host
	}
	if strings.Contains(strings.TrimSuffix(path, "*"), "*") {
		return bad("a wildcard in the path may only be at its end")
	}
	switch {
	case path == "" || path == "/" || path == "/*":
		p.Path, p.PathPrefix = "/", true
	case strings.HasSuffix(path, "*"):
		p.Path, p.PathPrefix = strings.TrimSuffix(path, "*"), true
	default:
		p.Path = path
	}
	return p, nil
}

// Match reports whether a Referer header value is allowed by the pattern.
// It does not allocate. To match one value against several patterns, parse
// it once with ParseReferrer and use MatchReferrer.
func (p *ReferrerPattern) Match(ref string) bool {
	r, ok := ParseReferrer(ref)
	return ok && p.MatchReferrer(&r)
}

// Referrer is a Referer header value taken apart for matching.
type Referrer struct {
	HTTPS bool   // the scheme is https (else http)
	Host  string // without a trailing dot; compared case-insensitively
	Port  string // "" when the value names none
	Path  string // without query or fragment; "/" when empty
}

// Classes of the bytes ParseReferrer's scan of the authority stops at or
// notes; 0 for the others.
const (
	refEnd   = 1 + iota // '/', '?', '#': the authority ends
	refAt               // '@': user information
	refColon            // ':': a port may follow
)

var refClass = func() (t [256]uint8) {
	t['/'], t['?'], t['#'], t['@'], t[':'] = refEnd, refEnd, refEnd, refAt, refColon
	return t
}()

// ParseReferrer takes a Referer header value apart. It reports false for a
// value no pattern can match: not http or https, or with user information
// (https://good.example.com@evil.example/). It does not allocate.
func ParseReferrer(ref string) (Referrer, bool) {
	var r Referrer
	ok := r.Parse(ref)
	return r, ok
}

// Parse is ParseReferrer into r, which it sets whole when it reports true
// (a caller that keeps the Referrer on its stack and passes it to
// MatchReferrer copies nothing).
func (r *Referrer) Parse(ref string) bool {
	// One pass: the scheme is read at its fixed place (the first "://"
	// of an http or https value is right after the scheme), then the
	// authority up to its first '/', '?' or '#', noting '@' and the
	// last ':' on the way (a byte's class from a table: one load and
	// one compare for the bytes of a name). matchReference in the tests is
	// the two-pass form this must agree with (FuzzReferrerPattern).
	*r = Referrer{}
	var rest string
	switch {
	case len(ref) >= 8 && ref[5:8] == "://" && equalFold(ref[:5], "https"):
		r.HTTPS, rest = true, ref[8:]
	case len(ref) >= 7 && ref[4:7] == "://" && equalFold(ref[:4], "http"):
		rest = ref[7:]
	default:
		return false
	}
	end, colon := len(rest), -1
scan:
	for i := 0; i < len(rest); i++ {
		switch refClass[rest[i]] {
		case 0:
		case refEnd:
			end = i
			break scan
		case refAt:
			return false // userinfo: https://good.example.com@evil.example/
		case refColon:
			colon = i
		}
	}
	host := rest[:end]
	if colon >= 0 && rest[end-1] != ']' {
		host, r.Port = rest[:colon], rest[colon+1:end]
	}
	if len(host) > 0 && host[len(host)-1] == '.' {
		host = host[:len(host)-1]
	}
	r.Host = host
	r.Path = "/"
	if end < len(rest) && rest[end] == '/' {
		path := rest[end:]
		for i := 1; i < len(path); i++ {
			if c := path[i]; c == '?' || c == '#' {
				path = path[:i]
				break
			}
		}
		r.Path = path
	}
	return true
}

// MatchReferrer reports whether a parsed Referer value is allowed by the
// pattern.
func (p *ReferrerPattern) MatchReferrer(r *Referrer) bool {
	if r.HTTPS && p.Scheme == "http" || !r.HTTPS && p.Scheme == "https" {
		return false
	}
	if p.Port != "" && r.Port != p.Port {
		return false
	}
	host := r.Host
	if !p.AnyHost {
		if p.Wildcard {
			if len(host) <= len(p.Host)+1 || host[len(host)-len(p.Host)-1] != '.' || !equalFold(host[len(host)-len(p.Host):], p.Host) {
				return false
			}
		} else if !equalFold(host, p.Host) {
			return false
		}
	}
	if p.PathPrefix {
		return len(r.Path) >= len(p.Path) && r.Path[:len(p.Path)] == p.Path
	}
	return r.Path == p.Path
}

// NormalizeSHA1Fingerprint accepts a SHA-1 certificate fingerprint as 40 hex
// digits, with or without colons, in any case, and returns lower-case hex.
func NormalizeSHA1Fingerprint(s string) (string, error) {
	out := make([]byte, 0, 40)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ':':
			continue
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
			out = append(out, c)
		case c >= 'A' && c <= 'F':
			out = append(out, c+'a'-'A')
		default:
			return "", Errorf(EINVALID, "android_apps: sha1_fingerprint %q must be 40 hex digits (colons allowed)", s)
		}
	}
	if len(out) != 40 {
		return "", Errorf(EINVALID, "android_apps: sha1_fingerprint %q must be 40 hex digits (colons allowed)", s)
	}
	return string(out), nil
}

func validateAndroidPackage(s string) error {
	parts := strings.Split(s, ".")
	ok := len(parts) >= 2 && len(s) <= 255
	for _, p := range parts {
		if p == "" || !(p[0] >= 'a' && p[0] <= 'z' || p[0] >= 'A' && p[0] <= 'Z') {
			ok = false
		}
		for _, c := range p {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
				ok = false
			}
		}
	}
	if !ok {
		return Errorf(EINVALID, "android_apps: package_name %q is not an Android package name (e.g. com.example.app)", s)
	}
	return nil
}

func validateBundleID(s string) error {
	ok := s != "" && len(s) <= 255 && s[0] != '.' && s[len(s)-1] != '.'
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			ok = false
		}
	}
	if !ok {
		return Errorf(EINVALID, "ios_bundle_ids: %q is not a bundle identifier (e.g. com.example.app)", s)
	}
	return nil
}

func validateScope(s string) error {
	body := strings.TrimSuffix(s, "*")
	ok := s != "" && len(s) <= MaxScopeLen
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '.' || c == '_' || c == '-' || c == '/') {
			ok = false
		}
	}
	if !ok {
		return Errorf(EINVALID, "scopes: %q must be 1 to %d characters of letters, digits and :._-/ with an optional trailing * (e.g. shipments:read, shipments:*)", s, MaxScopeLen)
	}
	return nil
}

// ScopeAllows reports whether granted (a scope or a prefix ending in "*")
// covers the required scope.
func ScopeAllows(granted, required string) bool {
	if n := len(granted); n > 0 && granted[n-1] == '*' {
		return len(required) >= n-1 && required[:n-1] == granted[:n-1]
	}
	return granted == required
}

// ParseExpiry parses an RFC 3339 time for expires_at.
func ParseExpiry(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, Errorf(EINVALID, "expires_at %q must be an RFC 3339 time such as 2027-01-31T00:00:00Z", s)
	}
	return t, nil
}

// String summarises restrictions for lists and messages.
func (r *Restrictions) String() string {
	if r.Empty() {
		return "none"
	}
	var parts []string
	add := func(n int, one, many string) {
		switch {
		case n == 1:
			parts = append(parts, "1 "+one)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %s", n, many))
		}
	}
	add(len(r.AllowedIPs), "IP range", "IP ranges")
	add(len(r.AllowedReferrers), "referrer", "referrers")
	add(len(r.AndroidApps)+len(r.IOSBundleIDs), "app", "apps")
	add(len(r.Scopes), "scope", "scopes")
	if r.RateLimit != nil {
		parts = append(parts, "rate limit")
	}
	return strings.Join(parts, ", ")
}
