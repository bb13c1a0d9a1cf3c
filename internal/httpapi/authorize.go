package httpapi

import (
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
)

// ScopeRule maps calls to the scope they need, for the forward-auth and
// proxy surfaces: a method ("*" for any) and a path pattern (exact, or a
// prefix ending in "*").
type ScopeRule struct {
	Method string
	Path   string
	Scope  string
}

// ParseScopeRule parses "METHOD /path/pattern scope", e.g.
// "GET /shipments/* shipments:read".
func ParseScopeRule(s string) (ScopeRule, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return ScopeRule{}, latchkey.Errorf(latchkey.EINVALID, "scope rule %q: expected METHOD /path scope, e.g. \"GET /shipments/* shipments:read\"", s)
	}
	r := ScopeRule{Method: strings.ToUpper(f[0]), Path: f[1], Scope: f[2]}
	if !strings.HasPrefix(r.Path, "/") || strings.Contains(strings.TrimSuffix(r.Path, "*"), "*") {
		return ScopeRule{}, latchkey.Errorf(latchkey.EINVALID, "scope rule %q: the path must start with / and may end in *", s)
	}
	if err := (&latchkey.Restrictions{Scopes: []string{r.Scope}}).Validate(); err != nil {
		return ScopeRule{}, latchkey.Errorf(latchkey.EINVALID, "scope rule %q: %s", s, latchkey.ErrorMessage(err))
	}
	return r, nil
}

// ScopeFor returns the scope of the first rule that matches, or "".
func ScopeFor(rules []ScopeRule, method, path string) string {
	for _, r := range rules {
		if r.Method != "*" && r.Method != method {
			continue
		}
		if p, ok := strings.CutSuffix(r.Path, "*"); ok {
			if strings.HasPrefix(path, p) {
				return r.Scope
			}
		} else if path == r.Path {
			return r.Scope
		}
	}
	return ""
}

// Identity headers set on an allowed call, for the upstream.
const (
	HeaderKeyID       = "X-Latchkey-Access-Key-Id"
	HeaderApplication = "X-Latchkey-Application"
	HeaderAccount     = "X-Latchkey-Account"
	HeaderScopes      = "X-Latchkey-Scopes"
	HeaderCode        = "X-Latchkey-Code"
)

// HeaderPrefix starts every header latchkey sets. Each gateway surface
// removes client-sent headers with this prefix before the call reaches the
// upstream, so a client cannot pose as another key's application.
const HeaderPrefix = "X-Latchkey-"

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

// OriginalRequest returns the method and URI of the call a gateway asks
// about: X-Original-Method/X-Original-URI (nginx), X-Forwarded-Method/
// X-Forwarded-Uri (Traefik, Caddy), or the request itself.
func OriginalRequest(r *http.Request) (method, uri string) {
	method, uri = r.Header.Get("X-Original-Method"), r.Header.Get("X-Original-Uri")
	if method == "" {
		method = r.Header.Get("X-Forwarded-Method")
	}
	if uri == "" {
		uri = r.Header.Get("X-Forwarded-Uri")
	}
	if method == "" {
		method = r.Method
	}
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	return strings.ToUpper(method), uri
}

// StatusForCode is the HTTP status a gateway gives a refused call.
func StatusForCode(c latchkey.Code) int {
	switch c {
	case latchkey.CodeValid:
		return http.StatusOK
	case latchkey.CodeIPNotAllowed, latchkey.CodeReferrerNotAllowed, latchkey.CodeAppNotAllowed, latchkey.CodeScopeDenied,
		latchkey.CodeCredentialsInURL:
		return http.StatusForbidden
	case latchkey.CodeRateLimited, latchkey.CodeThrottled:
		return http.StatusTooManyRequests
	}
	return http.StatusUnauthorized
}

// Decide is the decision of every gateway surface (forward auth, Envoy
// ext_authz, the reverse proxy) on the call r describes, whose method and
// request URI are given: a credential in the call's URL is refused with
// CREDENTIALS_IN_URL, and any real key found there is flagged exposed;
// otherwise VerifyHTTP decides.
func (s *Server) Decide(r *http.Request, method, uri string) verify.Result {
	if found, secrets := secretInURL(splitURI(uri)); found {
		orig := &http.Request{Method: method, URL: parseURI(uri), Header: r.Header, RemoteAddr: r.RemoteAddr}
		s.tripwire(orig.WithContext(r.Context()), secrets)
		return verify.Result{Code: latchkey.CodeCredentialsInURL}
	}
	return s.VerifyHTTP(r, method, uri)
}

// splitURI returns the decoded path and the raw query of a request URI,
// as parseURI would: without parsing when the URI is a plain origin-form
// path with nothing to decode.
func splitURI(uri string) (path, rawQuery string) {
	plain := strings.HasPrefix(uri, "/")
	for i := 0; plain && i < len(uri); i++ {
		plain = uri[i] != '%' && uri[i] >= 0x20 && uri[i] != 0x7f
	}
	if plain {
		path, rawQuery, _ = strings.Cut(uri, "?")
		return path, rawQuery
	}
	u := parseURI(uri)
	return u.Path, u.RawQuery
}

// VerifyHTTP decides on the call r describes, as every HTTP surface does:
// credential from the headers, client IP by the trusted-proxy rules,
// referrer and mobile app headers, and the scope the original method and
// path need. It does not look at the URL: use Decide.
func (s *Server) VerifyHTTP(r *http.Request, method, uri string) verify.Result {
	cred := CredentialFromRequest(r)
	path, _, _ := strings.Cut(uri, "?")
	req := verify.Request{
		Secret: cred.Secret, AccessKeyID: cred.AccessKeyID,
		IP: ClientIP(r, s.TrustedProxies), UserAgent: r.UserAgent(), Referrer: r.Referer(),
		Scope:          ScopeFor(s.ScopeRules, method, path),
		AndroidPackage: r.Header.Get("X-Android-Package"), AndroidCert: r.Header.Get("X-Android-Cert"),
		IOSBundleID: r.Header.Get("X-Ios-Bundle-Identifier"),
	}
	return s.Verifier.Verify(&req)
}

// WriteDecisionHeaders sets identity headers for an allowed call (the
// scopes header lists the key's granted scopes), the decision code, and
// RateLimit-*/Retry-After headers whenever they apply.
//
// On an allowed call the scopes header is always there, empty when the key
// may use any scope: a gateway that copies a header the answer lacks may
// copy something else (Caddy 2.6's copy_headers sets the header to its own
// placeholder text, "{http.reverse_proxy.header.X-Latchkey-Scopes}").
func WriteDecisionHeaders(h http.Header, res verify.Result) {
	h.Set(HeaderCode, string(res.Code))
	WriteRateLimitHeaders(h, res)
	if res.Valid() && res.Entry != nil {
		SetIdentityHeaders(h, res.Entry)
		if h.Get(HeaderScopes) == "" {
			h[HeaderScopes] = []string{""}
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
	if d := max(res.Rate.RetryAfter, res.RetryAfter); d > 0 && !res.Valid() {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
	}
}

// SetIdentityHeaders sets the identity of an allowed call's key, for the
// upstream: access key ID, application, account, and the key's granted
// scopes when it has any. A nil entry sets nothing.
func SetIdentityHeaders(h http.Header, e *verify.Entry) {
	if e == nil {
		return
	}
	h.Set(HeaderKeyID, e.ID)
	h.Set(HeaderApplication, e.Application())
	h.Set(HeaderAccount, e.Account)
	if sc := e.Scopes(); sc != "" {
		h.Set(HeaderScopes, sc)
	}
}

// DeleteLatchkeyHeaders removes every X-Latchkey-* header from h: a client
// must not reach the upstream with identity headers of its own making.
func DeleteLatchkeyHeaders(h http.Header) {
	for k := range h {
		if len(k) >= len(HeaderPrefix) && strings.EqualFold(k[:len(HeaderPrefix)], HeaderPrefix) {
			delete(h, k)
		}
	}
}

// WriteDecision answers a gateway's question the way /v1/authorize does:
// 200 with the decision headers for an allowed call, or the refusal's
// status (401, 403, 429) with WWW-Authenticate on a 401, Retry-After when
// it applies, and {"error":{"code","message"}} with the decision code.
func WriteDecision(w http.ResponseWriter, res verify.Result) {
	WriteDecisionHeaders(w.Header(), res)
	if res.Valid() {
		w.WriteHeader(http.StatusOK)
		return
	}
	status := StatusForCode(res.Code)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey", error="invalid_token"`)
	}
	writeError(w, status, string(res.Code), Message(res.Code))
}

const authorizePath = "/v1/authorize"

// authorize is the forward-auth endpoint for nginx auth_request, Caddy
// forward_auth and Traefik forwardAuth. It answers 200 with identity headers,
// or 401/403/429 with a JSON error and WWW-Authenticate. Asked by nginx
// (X-Latchkey-Gateway: nginx), it answers 403 where it would answer 429,
// with X-Latchkey-Code and X-Latchkey-Message: see HeaderGateway.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) error {
	method, uri := OriginalRequest(r)
	res := s.Decide(r, method, uri)
	if !res.Valid() && strings.EqualFold(r.Header.Get(HeaderGateway), "nginx") {
		w = nginxWriter{w}
		w.Header().Set(HeaderMessage, Message(res.Code))
	}
	WriteDecision(w, res)
	return nil
}

// nginxWriter answers 403 for 429: see HeaderGateway.
type nginxWriter struct{ http.ResponseWriter }

func (w nginxWriter) WriteHeader(code int) {
	if code == http.StatusTooManyRequests {
		code = http.StatusForbidden
	}
	w.ResponseWriter.WriteHeader(code)
}

func parseURI(uri string) *url.URL {
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return &url.URL{Path: uri}
	}
	return u
}
