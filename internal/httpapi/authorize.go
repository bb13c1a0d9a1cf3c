package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
)

// ScopeRule maps calls to the scope they need, on every gateway surface
// and on /v1/verify asked with a method and path: a method ("*" for any)
// and a path pattern, exact or a prefix ending in "*".
//
// Rules judge the canonical request (latchkey.CanonicalizePath,
// latchkey.CanonicalMethod): the decoded path with dot segments removed
// and slashes merged, HEAD as GET, and letters compared without regard to
// case (some servers route "/ADMIN" to "/admin"). A pattern ending in
// "/*" also covers the path without its last "/" ("/admin/*" covers
// "/admin"). The first rule that matches gives the scope. A path that
// some rule's pattern covers, called with a method that no rule for that
// path names, needs ScopeUnnamedMethod, which only a key that may use any
// scope has; a path no rule covers needs no scope.
//
// A rule may also say what a call costs from the key's quota (Cost, 0
// meaning the default 1): the first rule that matches the canonical
// method and path gives the cost.
type ScopeRule struct {
	Method string
	Path   string
	Scope  string
	Cost   int64
}

// ScopeUnnamedMethod is the scope a call needs when rules cover its path
// but none names its method. No scope a key can be granted covers it but
// "*", so a key with scopes is refused SCOPE_DENIED: a rule set that
// names GET and POST for a path does not let a read-only key DELETE there.
const ScopeUnnamedMethod = "(method not named by a rule)"

// ParseScopeRule parses "METHOD /path/pattern scope [cost=N]", e.g.
// "GET /shipments/* shipments:read" or "POST /search search:run cost=5".
// The pattern must be a canonical path
// (no escapes, dot segments or repeated slashes); HEAD is refused (a
// GET rule covers it).
func ParseScopeRule(s string) (ScopeRule, error) {
	f := strings.Fields(s)
	if len(f) != 3 && len(f) != 4 {
		return ScopeRule{}, latchkey.Errorf(latchkey.EINVALID, "scope rule %q: expected METHOD /path scope [cost=N], e.g. \"GET /shipments/* shipments:read\"", s)
	}
	r := ScopeRule{Method: strings.ToUpper(f[0]), Path: f[1], Scope: f[2]}
	if len(f) == 4 {
		v, ok := strings.CutPrefix(f[3], "cost=")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil || n < 0 || n > latchkey.MaxQuota {
			return ScopeRule{}, latchkey.Errorf(latchkey.EINVALID, "scope rule %q: the fourth field must be cost=N with N from 0 to %d", s, int64(latchkey.MaxQuota))
		}
		r.Cost = n
		if n == 0 {
			r.Cost = verify.FreeCost
		}
	}
	if r.Method != "*" {
		m, ok := latchkey.CanonicalMethod(r.Method)
		if !ok {
			return ScopeRule{}, latchkey.Errorf(latchkey.EINVALID, "scope rule %q: %q is not an HTTP method", s, f[0])
		}
		if m != r.Method {
			return ScopeRule{}, latchkey.Errorf(latchkey.EINVALID, "scope rule %q: HEAD is judged as GET; write a GET rule", s)
		}
	}
	body := strings.TrimSuffix(r.Path, "*")
	if !strings.HasPrefix(r.Path, "/") || strings.Contains(body, "*") {
		return ScopeRule{}, latchkey.Errorf(latchkey.EINVALID, "scope rule %q: the path must start with / and may end in *", s)
	}
	if cp, err := latchkey.CanonicalizePath(body, 0); err != nil || cp.Path != body || cp.Escaped != body {
		return ScopeRule{}, latchkey.Errorf(latchkey.EINVALID, "scope rule %q: the path must be canonical, as calls are judged: no %%-escapes, no . or .. segments, no //", s)
	}
	if err := (&latchkey.Restrictions{Scopes: []string{r.Scope}}).Validate(); err != nil {
		return ScopeRule{}, latchkey.Errorf(latchkey.EINVALID, "scope rule %q: %s", s, latchkey.ErrorMessage(err))
	}
	return r, nil
}

// covers reports whether the rule's pattern covers path, comparing
// letters without regard to ASCII case.
func (r *ScopeRule) covers(path string) bool {
	p, prefix := strings.CutSuffix(r.Path, "*")
	if !prefix {
		return latchkey.EqualFoldASCII(path, p)
	}
	if len(path) >= len(p) && latchkey.EqualFoldASCII(path[:len(p)], p) {
		return true
	}
	// "/admin/*" covers "/admin"
	return len(p) > 1 && p[len(p)-1] == '/' && latchkey.EqualFoldASCII(path, p[:len(p)-1])
}

// ScopeFor returns the scope a call needs under rules (see ScopeRule):
// method is the judged method (latchkey.CanonicalMethod) and path the
// canonical path.
func ScopeFor(rules []ScopeRule, method, path string) string {
	covered := false
	for i := range rules {
		r := &rules[i]
		if !r.covers(path) {
			continue
		}
		if r.Method == "*" || r.Method == method {
			return r.Scope
		}
		covered = true
	}
	if covered {
		return ScopeUnnamedMethod
	}
	return ""
}

// costOf is what the call t costs from a quota under the rules: the cost
// of the first rule that matches its canonical method and path, 0 (the
// default) when none does or it names none.
func (s *Server) costOf(t Target) int64 {
	m, _ := latchkey.CanonicalMethod(t.Method)
	for i := range s.ScopeRules {
		r := &s.ScopeRules[i]
		if r.covers(t.Path.Path) && (r.Method == "*" || r.Method == m) {
			return r.Cost
		}
	}
	return 0
}

// scopeOf returns the scope a call needs, and false when the readings of
// its path need different scopes: the canonical path, the path decoded
// but not cleaned (a server that does not remove dot segments or merge
// slashes routes on that) and, under RelaxEncodedSlash, the path split
// before it is decoded.
func scopeOf(rules []ScopeRule, method string, cp *latchkey.CanonicalPath) (string, bool) {
	scope := ScopeFor(rules, method, cp.Path)
	if cp.Decoded != cp.Path && ScopeFor(rules, method, cp.Decoded) != scope {
		return "", false
	}
	if cp.Segmented != cp.Path && ScopeFor(rules, method, cp.Segmented) != scope {
		return "", false
	}
	return scope, true
}

// Identity headers set on an allowed call, for the upstream.
const (
	HeaderKeyID       = "X-Latchkey-Access-Key-Id"
	HeaderApplication = "X-Latchkey-Application"
	HeaderAccount     = "X-Latchkey-Account"
	HeaderScopes      = "X-Latchkey-Scopes"
	HeaderCode        = "X-Latchkey-Code"
	// HeaderExternalID is the key's external ID; HeaderMetadata its
	// metadata, base64url of the compact JSON (latchkey.MetadataHeader),
	// at most 2,731 characters.
	HeaderExternalID = "X-Latchkey-External-Id"
	HeaderMetadata   = "X-Latchkey-Metadata"
	// HeaderIdentityID is the ID of the identity the key's application
	// belongs to. HeaderExternalID is then the key's own external ID,
	// or else the identity's: the upstream reads its customer from one
	// header whichever of the two carries it.
	HeaderIdentityID = "X-Latchkey-Identity-Id"
	// HeaderQuotaRemaining is what the key's quota has left, as this
	// replica knows it; HeaderQuotaReset when it refills, in Unix
	// seconds (absent when it never does). Set whenever the key has a
	// quota; a QUOTA_EXCEEDED refusal also has Retry-After.
	HeaderQuotaRemaining = "X-Latchkey-Quota-Remaining"
	HeaderQuotaReset     = "X-Latchkey-Quota-Reset"
)

// HeaderPrefix starts every header latchkey sets. Each gateway surface
// removes client-sent headers with this prefix (latchkey.IsIdentityHeader)
// before the call reaches the upstream, so a client cannot pose as another
// key's application.
const HeaderPrefix = latchkey.IdentityHeaderPrefix

// Headers for gateways that cannot pass latchkey's own answer on.
const (
	// HeaderGateway, sent by the gateway to /v1/authorize, names it.
	// "nginx" asks for the nginx dialect: auth_request understands only
	// 2xx, 401 and 403 and turns anything else into a 500, so a call
	// refused with 429 (RATE_LIMITED, THROTTLED) is answered 403 with the
	// code in X-Latchkey-Code, and the refusal's message in
	// X-Latchkey-Message, for the nginx configuration to answer 429 and
	// the JSON error itself (docs/integrations/nginx.conf).
	HeaderGateway = "X-Latchkey-Gateway"
	HeaderMessage = "X-Latchkey-Message"
)

// Headers by which a gateway names the call it asks /v1/authorize about.
// nginx's documented configuration sets the X-Original pair; Caddy's
// forward_auth and Traefik's forwardAuth set the X-Forwarded pair.
const (
	headerOriginalMethod  = "X-Original-Method"
	headerOriginalURI     = "X-Original-Uri"
	headerForwardedMethod = "X-Forwarded-Method"
	headerForwardedURI    = "X-Forwarded-Uri"
)

// OriginalRequest returns the method and request URI of the call a gateway
// asks about, or the request itself when no gateway header names one.
//
// A gateway's word is taken only from a trusted proxy, and only when it is
// whole and single: ok is false (UNTRUSTED_GATEWAY) when any of the four
// headers comes from a peer outside trusted, is sent more than once, names
// a method without a URI or a URI without a method, or when both pairs
// are sent and disagree. A gateway passes on the pair it does not set
// itself as the client sent it (Caddy passes X-Original-Uri, nginx passes
// X-Forwarded-Uri), so disagreement means a client tried to choose the
// request it is judged on.
func OriginalRequest(r *http.Request, trusted []netip.Prefix) (method, uri string, ok bool) {
	h := r.Header
	om, ou := h[headerOriginalMethod], h[headerOriginalURI]
	fm, fu := h[headerForwardedMethod], h[headerForwardedURI]
	if om == nil && ou == nil && fm == nil && fu == nil {
		return r.Method, r.URL.RequestURI(), true
	}
	if !peerTrusted(r, trusted) || len(om) > 1 || len(ou) > 1 || len(fm) > 1 || len(fu) > 1 {
		return "", "", false
	}
	method, uri = first(om), first(ou)
	if m, u := first(fm), first(fu); m != "" || u != "" {
		if (method != "" && method != m) || (uri != "" && uri != u) {
			return "", "", false
		}
		method, uri = m, u
	}
	if method == "" || uri == "" {
		return "", "", false
	}
	return method, uri, true
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// SurfaceKey is the context key WithSurface keeps the surface under, a
// string value. A context type of its own that answers it (the reverse
// proxy's per-call context) names its surface without a WithSurface
// layer.
type SurfaceKey struct{}

// WithSurface names the surface that decides on the calls whose context
// is ctx (latchkey.SurfaceProxy, latchkey.SurfaceExtAuthz, ...), for the
// alert a canary key raises. It changes no decision.
func WithSurface(ctx context.Context, surface string) context.Context {
	return context.WithValue(ctx, SurfaceKey{}, surface)
}

// SurfaceOf is the surface WithSurface named, and forward auth
// (latchkey.SurfaceAuthorize) when none was.
func SurfaceOf(ctx context.Context) string {
	if s, ok := ctx.Value(SurfaceKey{}).(string); ok {
		return s
	}
	return latchkey.SurfaceAuthorize
}

// peerTrusted reports whether r's connection comes from a trusted proxy.
func peerTrusted(r *http.Request, trusted []netip.Prefix) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && inPrefixes(ap.Addr().Unmap(), trusted)
}

// StatusForCode is the HTTP status a gateway gives a refused call.
func StatusForCode(c latchkey.Code) int {
	switch c {
	case latchkey.CodeValid:
		return http.StatusOK
	case latchkey.CodeIPNotAllowed, latchkey.CodeReferrerNotAllowed, latchkey.CodeAppNotAllowed, latchkey.CodeScopeDenied,
		latchkey.CodeCredentialsInURL:
		return http.StatusForbidden
	case latchkey.CodeRateLimited, latchkey.CodeThrottled, latchkey.CodeQuotaExceeded:
		return http.StatusTooManyRequests
	case latchkey.CodeAmbiguousPath, latchkey.CodeUntrustedGateway:
		return http.StatusBadRequest
	}
	return http.StatusUnauthorized
}

// Target is the call a decision was about, in the form the upstream
// must serve it: the reverse proxy forwards exactly this.
type Target struct {
	// Method is the call's method (HEAD stays HEAD, though it is judged
	// as GET).
	Method string
	Path   latchkey.CanonicalPath
	// RawQuery is the query as the client sent it.
	RawQuery string
}

// Decide is the decision of every gateway surface (forward auth, Envoy
// ext_authz, the reverse proxy) on the call r describes, whose method and
// request URI are given. In order:
//   - a credential in the call's URL is refused with CREDENTIALS_IN_URL,
//     and any real key found there is flagged exposed (a canary key
//     there or in the headers raises its alert);
//   - a method that is not an upper-case HTTP token
//     (latchkey.CanonicalMethod), a _method query parameter
//     (latchkey.QueryOverridesMethod), a path with no single meaning
//     (latchkey.CanonicalizePath), or a path whose readings need
//     different scopes (scopeOf) is refused with AMBIGUOUS_PATH;
//   - otherwise the verifier decides on the canonical call: the scope
//     rules judge its canonical method and path.
//
// The Target is the canonical call, set when the decision got that far.
func (s *Server) Decide(r *http.Request, method, uri string) (verify.Result, Target) {
	if s.credentialInURL(r, method, uri) {
		path, _ := splitTarget(uri)
		s.headerCanaries(r, path)
		return s.refused(latchkey.CodeCredentialsInURL), Target{}
	}
	scope, t, code := s.judge(method, uri)
	if code != "" {
		return s.refused(code), Target{}
	}
	path, _ := splitTarget(uri)
	return s.verifyHTTP(r, scope, path, &t, s.costOf(t)), t
}

// judge returns the scope the call needs and the call in canonical form,
// or AMBIGUOUS_PATH (see Decide).
func (s *Server) judge(method, uri string) (scope string, t Target, refused latchkey.Code) {
	judged, ok := latchkey.CanonicalMethod(method)
	if !ok {
		return "", Target{}, latchkey.CodeAmbiguousPath
	}
	path, query := splitTarget(uri)
	if query != "" && latchkey.QueryOverridesMethod(query) {
		s.logger().Debug("call refused: a _method query parameter would change its method", "method", judged)
		return "", Target{}, latchkey.CodeAmbiguousPath
	}
	cp, err := latchkey.CanonicalizePath(path, s.PathRelax)
	if err != nil {
		s.logger().Debug("ambiguous path refused", "method", judged, "reason", latchkey.ErrorMessage(err))
		return "", Target{}, latchkey.CodeAmbiguousPath
	}
	scope, ok = scopeOf(s.ScopeRules, judged, &cp)
	if !ok {
		s.logger().Debug("path refused: its readings need different scopes", "method", judged)
		return "", Target{}, latchkey.CodeAmbiguousPath
	}
	return scope, Target{Method: method, Path: cp, RawQuery: query}, ""
}

// credentialInURL reports whether uri, the target of the call r
// describes, carries a credential, and flags every real key found in it
// exposed.
func (s *Server) credentialInURL(r *http.Request, method, uri string) bool {
	path, query := splitTarget(uri)
	path = lenientUnescape(path)
	found, secrets := secretInURL(path, query)
	if found {
		orig := &http.Request{Method: method, URL: &url.URL{Path: path, RawQuery: query}, Header: r.Header, RemoteAddr: r.RemoteAddr}
		s.tripwire(orig.WithContext(r.Context()), secrets)
	}
	return found
}

// logger is s.Log, or a logger that discards when the server was built
// without one and Handler has not filled it in (the gateway packages
// call Decide directly).
func (s *Server) logger() *slog.Logger {
	if s.Log == nil {
		return discard
	}
	return s.Log
}

var discard = slog.New(slog.DiscardHandler)

// refused is a refusal decided before the verifier was asked: it is
// counted as the verifier's decisions are.
func (s *Server) refused(c latchkey.Code) verify.Result {
	if o := s.Verifier.Observer; o != nil {
		o.Decided(c)
	}
	return verify.Result{Code: c}
}

// splitTarget returns the path and the raw query of a request target: an
// origin-form "/path?query" as it is, or the path and query of an
// absolute-form "http://host/path?query". Anything else is returned as
// the path, for CanonicalizePath to refuse.
func splitTarget(uri string) (path, rawQuery string) {
	if !strings.HasPrefix(uri, "/") {
		if u, err := url.ParseRequestURI(uri); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
			path, rawQuery = u.EscapedPath(), u.RawQuery
			if path == "" {
				path = "/"
			}
			return path, rawQuery
		}
	}
	path, rawQuery, _ = strings.Cut(uri, "?")
	return path, rawQuery
}

// lenientUnescape decodes a path for the URL tripwire, which must find a
// secret however the path is encoded: invalid escapes are kept as they
// are.
func lenientUnescape(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	if d, err := url.PathUnescape(p); err == nil {
		return d
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			if d, err := url.PathUnescape(p[i : i+3]); err == nil {
				b.WriteString(d)
				i += 2
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// The mobile app headers, in canonical form (read straight from the
// request's header map).
const (
	headerAndroidPackage = "X-Android-Package"
	headerAndroidCert    = "X-Android-Cert"
	headerIOSBundleID    = "X-Ios-Bundle-Identifier"
)

// VerifyHTTP decides on the call r describes, as every HTTP surface does:
// credential from the headers, client IP by the trusted-proxy rules,
// referrer and mobile app headers, and the scope the call needs. It does
// not look at the URL, and judges only bearer credentials: use Decide,
// which also judges signed calls (Signed).
func (s *Server) VerifyHTTP(r *http.Request, scope string) verify.Result {
	return s.verifyHTTP(r, scope, r.URL.Path, nil, 0)
}

// verifyHTTP is VerifyHTTP for a call whose path is path (for a canary
// key's alert) and that costs cost from a quota (verify.Request.Cost).
// Given the call as judged (t), a signed call (Signed) is decided by its
// signature (verifySignedCall).
func (s *Server) verifyHTTP(r *http.Request, scope, path string, t *Target, cost int64) verify.Result {
	cred := CredentialFromRequest(r)
	// The request's headers are read by their canonical names straight
	// from the map: what Header.Get finds, without canonicalising a
	// constant name on every call (forward auth's hot path).
	h := r.Header
	req := verify.Request{
		Surface: SurfaceOf(r.Context()), Path: path,
		Secret: cred.Secret, AccessKeyID: cred.AccessKeyID, Extra: cred.Extra,
		IP: ClientIP(r, s.TrustedProxies), UserAgent: first(h["User-Agent"]), Referrer: first(h["Referer"]),
		Scope: scope, Cost: cost,
		AndroidPackage: first(h[headerAndroidPackage]), AndroidCert: first(h[headerAndroidCert]),
		IOSBundleID: first(h[headerIOSBundleID]),
	}
	req.ClientCert, req.HasClientCert = s.ClientCert(r)
	if t != nil && hasSignature(r.Header) {
		if !cred.Present {
			return s.verifySignedCall(r, &req, t)
		}
		// a signature beside a bearer credential: two credentials, as
		// two credential headers are (CREDENTIAL_AMBIGUOUS)
		req.Extra = append(req.Extra, "")
	}
	return s.Verifier.Verify(&req)
}

// headerCanaries raises the alert of any canary key among the
// credentials in r's headers, for a call refused before they are judged.
func (s *Server) headerCanaries(r *http.Request, path string) {
	cred := CredentialFromRequest(r)
	if cred.Secret == "" && len(cred.Extra) == 0 {
		return
	}
	s.Verifier.Canaries(&verify.Request{Secret: cred.Secret, Extra: cred.Extra, IP: ClientIP(r, s.TrustedProxies),
		UserAgent: r.UserAgent(), Surface: SurfaceOf(r.Context()), Path: path})
}

// WriteDecisionHeaders sets identity headers for an allowed call (the
// scopes header lists the key's granted scopes), the decision code, and
// RateLimit-*/Retry-After headers whenever they apply.
//
// On an allowed call the scopes, external ID, metadata and identity headers are
// always there, empty when the key may use any scope or has no external ID
// or metadata: a gateway that copies a header the answer lacks may copy
// something else (Caddy 2.6's copy_headers sets the header to its own
// placeholder text, "{http.reverse_proxy.header.X-Latchkey-Scopes}").
func WriteDecisionHeaders(h http.Header, res verify.Result) {
	if !res.Valid() || !res.Entry.Found() {
		h[HeaderCode] = []string{string(res.Code)} // canonical, as Set would make it
		WriteRateLimitHeaders(h, res)
		return
	}
	// The eight values in one allocation (Header.Set makes one per
	// header): forward auth is the hot path of every gateway. The keys
	// are canonical, as Set would make them; each value is a slice of
	// capacity 1, so an Add copies instead of writing into its neighbour.
	v := make([]string, 1+len(identityHeaders))
	v[0] = string(res.Code)
	h[HeaderCode] = v[0:1:1]
	WriteRateLimitHeaders(h, res)
	setIdentityHeaders(h, &res.Entry, v[1:])
	for i := 3; i < len(identityHeaders); i++ { // scopes, external ID, metadata, identity ID
		// h[name], not h.Get(name): the names are canonical, and Get
		// would check and canonicalise each one again on every call.
		if name := identityHeaders[i]; first(h[name]) == "" {
			h[name] = v[1+i : 2+i : 2+i] // ""
		}
	}
}

// WriteRateLimitHeaders sets RateLimit-* when the key has a rate limit, and
// Retry-After on a refusal that says when to come back.
func WriteRateLimitHeaders(h http.Header, res verify.Result) {
	if res.Rate.Limit > 0 {
		h.Set("RateLimit-Limit", strconv.Itoa(res.Rate.Limit))
		h.Set("RateLimit-Remaining", strconv.Itoa(res.Rate.Remaining))
		h.Set("RateLimit-Policy", strconv.Itoa(res.Rate.Limit)+";w="+strconv.Itoa(int(res.Rate.Window/time.Second)))
		reset := int(math.Ceil(res.Rate.RetryAfter.Seconds()))
		h.Set("RateLimit-Reset", strconv.Itoa(reset))
	}
	if q := res.Quota; q.Limited {
		h.Set(HeaderQuotaRemaining, strconv.FormatInt(q.Remaining, 10))
		if !q.Reset.IsZero() {
			h.Set(HeaderQuotaReset, strconv.FormatInt(q.Reset.Unix(), 10))
		}
	}
	if d := max(res.Rate.RetryAfter, res.RetryAfter); d > 0 && !res.Valid() {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
	}
}

// SetIdentityHeaders sets the identity of an allowed call's key, for the
// upstream: access key ID, application, account, and the key's granted
// scopes, external ID (its own, or else its identity's), metadata and
// identity ID when it has them. A nil entry, or one that is not a key's,
// sets nothing.
func SetIdentityHeaders(h http.Header, e *verify.Entry) {
	if !e.Found() {
		return
	}
	setIdentityHeaders(h, e, make([]string, len(identityHeaders)))
}

// identityHeaders are the headers setIdentityHeaders sets, in its order;
// the first three always, the others when the key has a value for them.
var identityHeaders = [...]string{HeaderKeyID, HeaderApplication, HeaderAccount, HeaderScopes, HeaderExternalID, HeaderMetadata, HeaderIdentityID}

// setIdentityHeaders is SetIdentityHeaders with the values' storage
// given (len(identityHeaders) strings, written here). The external ID is
// the key's own, else its identity's.
func setIdentityHeaders(h http.Header, e *verify.Entry, v []string) {
	v[0], v[1], v[2] = e.ID, e.Application(), e.Account
	v[3], v[4], v[5], v[6] = e.Scopes(), e.ExternalID(), e.MetadataHeader(), e.IdentityID()
	if v[4] == "" {
		v[4] = e.IdentityExternalID()
	}
	for i, name := range identityHeaders {
		if i < 3 || v[i] != "" {
			h[name] = v[i : i+1 : i+1]
		}
	}
}

// ClientAddressHeaders are headers by which servers and frameworks learn
// a client's address. A client must not choose them: the reverse proxy
// removes them and sets X-Real-IP to the address latchkey decided on.
// (Forwarded and X-Forwarded-* are set by the proxy itself.)
var ClientAddressHeaders = []string{
	"x-real-ip", "true-client-ip", "x-client-ip", "cf-connecting-ip", "fastly-client-ip",
	"x-cluster-client-ip", "x-original-forwarded-for", "client-ip", "forwarded", "x-forwarded",
}

// isClientAddressHeader reports whether name, read as
// latchkey.HeaderNameEqual reads it, is one of ClientAddressHeaders.
func isClientAddressHeader(name string) bool {
	for _, h := range ClientAddressHeaders {
		if latchkey.HeaderNameEqual(name, h) {
			return true
		}
	}
	return false
}

// DeleteLatchkeyHeaders removes every header latchkey.IsIdentityHeader names from
// h: a client must not reach the upstream with identity headers of its
// own making.
func DeleteLatchkeyHeaders(h http.Header) {
	for k := range h {
		if latchkey.IsIdentityHeader(k) {
			delete(h, k)
		}
	}
}

// DeleteClientHeaders removes what DeleteLatchkeyHeaders removes, and
// every credential (IsCredentialHeader), ClientAddressHeaders and
// latchkey.MethodOverrideHeaders header (read the same way): what the
// upstream must not see.
func DeleteClientHeaders(h http.Header) {
	for k := range h {
		if latchkey.IsIdentityHeader(k) || IsCredentialHeader(k) || isClientAddressHeader(k) || latchkey.IsMethodOverrideHeader(k) {
			delete(h, k)
		}
	}
}

// WriteDecision answers a gateway's question the way /v1/authorize does:
// 200 with the decision headers for an allowed call, or the refusal's
// status (401, 403, 429) with WWW-Authenticate on a 401, Retry-After when
// it applies, and {"error":{"code","message"}} with the decision code.
func WriteDecision(w http.ResponseWriter, res verify.Result) {
	h := w.Header()
	WriteDecisionHeaders(h, res)
	if res.Valid() {
		w.WriteHeader(http.StatusOK)
		return
	}
	status := StatusForCode(res.Code)
	rf, ok := refusals[res.Code]
	if !ok {
		writeRefusal(w, status, res.Code)
		return
	}
	// What writeRefusal writes, made once per code: a flood of refused
	// keys costs no more per call than a valid key (no JSON encoding; the
	// values of the headers set here in one allocation).
	v := make([]string, 3)
	v[0], v[1] = "application/json", "no-store"
	h["Content-Type"], h["Cache-Control"] = v[0:1:1], v[1:2:2]
	if status == http.StatusUnauthorized {
		v[2] = rf.challenge
		h["Www-Authenticate"] = v[2:3:3]
	}
	w.WriteHeader(status)
	_, _ = w.Write(rf.body)
}

// writeRefusal answers a refused decision code with its status, its
// Bearer challenge (on 401) and its JSON error; refusals holds the same,
// made once for every code.
func writeRefusal(w http.ResponseWriter, status int, c latchkey.Code) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", latchkey.BearerChallenge(c))
	}
	writeError(w, status, string(c), Message(c))
}

// refusal is WriteDecision's answer to a refused decision code: the JSON
// error body writeError would write, and the Bearer challenge.
type refusal struct {
	body      []byte
	challenge string
}

// refusals holds a refusal for every decision code (codeMessages).
var refusals = func() map[latchkey.Code]refusal {
	m := make(map[latchkey.Code]refusal, len(codeMessages))
	for c, msg := range codeMessages {
		var body ErrorBody
		body.Error.Code, body.Error.Message = string(c), keyformat.MaskSecrets(msg)
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(body); err != nil {
			panic(err) // two strings always encode
		}
		// Shared by every call: no spare capacity to append into.
		m[c] = refusal{body: slices.Clip(b.Bytes()), challenge: latchkey.BearerChallenge(c)}
	}
	return m
}()

const authorizePath = "/v1/authorize"

// authorize is the forward-auth endpoint for nginx auth_request, Caddy
// forward_auth and Traefik forwardAuth. It answers 200 with identity headers,
// or 401/403/429 with a JSON error and WWW-Authenticate. Asked by nginx
// (X-Latchkey-Gateway: nginx), it answers 403 where it would answer 429,
// with X-Latchkey-Code and X-Latchkey-Message: see HeaderGateway.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) error {
	res := s.decideForwarded(r)
	if !res.Valid() && strings.EqualFold(r.Header.Get(HeaderGateway), "nginx") {
		w = nginxWriter{w}
		w.Header().Set(HeaderMessage, Message(res.Code))
	}
	WriteDecision(w, res)
	return nil
}

// decideForwarded decides on the call a gateway asks about (see
// OriginalRequest). A credential in any URL the request carries, its own
// or one a header names, is CREDENTIALS_IN_URL whoever sent the header:
// a client-chosen URI does not hide a key in the real one.
func (s *Server) decideForwarded(r *http.Request) verify.Result {
	method, uri, ok := OriginalRequest(r, s.TrustedProxies)
	if !ok {
		for _, h := range []string{headerOriginalURI, headerForwardedURI} {
			for _, u := range r.Header[h] {
				if s.credentialInURL(r, r.Method, u) {
					return s.refused(latchkey.CodeCredentialsInURL)
				}
			}
		}
		if s.credentialInURL(r, r.Method, r.URL.RequestURI()) {
			return s.refused(latchkey.CodeCredentialsInURL)
		}
		s.untrustedGateway(r)
		return s.refused(latchkey.CodeUntrustedGateway)
	}
	// Caddy keeps the call's query on its own request line too.
	if own := r.URL.RequestURI(); s.credentialInURL(r, method, uri) || (uri != own && s.credentialInURL(r, r.Method, own)) {
		return s.refused(latchkey.CodeCredentialsInURL)
	}
	scope, t, code := s.judge(method, uri)
	if code != "" {
		return s.refused(code)
	}
	path, _ := splitTarget(uri)
	return s.verifyHTTP(r, scope, path, &t, s.costOf(t))
}

// untrustedGateway logs, at most once a minute, why a gateway's word was
// not taken: the operator has most likely left the gateway out of
// --trusted-proxies.
func (s *Server) untrustedGateway(r *http.Request) {
	now := time.Now().UnixNano()
	last := s.untrustedLogged.Load()
	if now-last < int64(time.Minute) || !s.untrustedLogged.CompareAndSwap(last, now) {
		return
	}
	peer, _, _ := strings.Cut(r.RemoteAddr, ":")
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		peer = ap.Addr().Unmap().String()
	}
	if !peerTrusted(r, s.TrustedProxies) {
		s.logger().Warn("forward auth: original-request headers from a peer outside --trusted-proxies; refused with UNTRUSTED_GATEWAY (add the gateway's address to --trusted-proxies)", "peer", peer)
		return
	}
	s.logger().Warn("forward auth: original-request headers repeated, incomplete, or disagreeing between X-Original-* and X-Forwarded-*; refused with UNTRUSTED_GATEWAY (the gateway must set one pair and remove the other)", "peer", peer)
}

// nginxWriter answers 403 for 429: see HeaderGateway.
type nginxWriter struct{ http.ResponseWriter }

func (w nginxWriter) WriteHeader(code int) {
	if code == http.StatusTooManyRequests || code == http.StatusBadRequest {
		code = http.StatusForbidden
	}
	w.ResponseWriter.WriteHeader(code)
}
