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

// OriginalRequest returns the method and URI of the call a gateway asks
// about: X-Original-Method/X-Original-URI (nginx), X-Forwarded-Method/
// X-Forwarded-Uri (Traefik, Caddy), or the request itself.
func OriginalRequest(r *http.Request) (method, uri string) {
	method, uri = r.Header.Get("X-Original-Method"), r.Header.Get("X-Original-URI")
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

// VerifyHTTP decides on the call r describes, as every HTTP surface does:
// credential from the headers, client IP by the trusted-proxy rules,
// referrer and mobile app headers, and the scope the original method and
// path need.
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
// scopes header lists the key's granted scopes), and
// RateLimit-*/Retry-After headers whenever they apply.
func WriteDecisionHeaders(h http.Header, res verify.Result) {
	h.Set(HeaderCode, string(res.Code))
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
	if res.Valid() && res.Entry != nil {
		h.Set(HeaderKeyID, res.Entry.ID)
		h.Set(HeaderApplication, res.Entry.Application)
		h.Set(HeaderAccount, res.Entry.Account)
		if sc := res.Entry.Scopes(); sc != "" {
			h.Set(HeaderScopes, sc)
		}
	}
}

// authorize is the forward-auth endpoint for nginx auth_request, Caddy
// forward_auth and Traefik forwardAuth. It answers 200 with identity headers,
// or 401/403/429 with a JSON error and WWW-Authenticate.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) error {
	method, uri := OriginalRequest(r)
	if found, secrets := SecretInURL(&http.Request{Method: method, URL: parseURI(uri), Header: r.Header, RemoteAddr: r.RemoteAddr}); found {
		s.tripwire(r, secrets)
		c := latchkey.CodeCredentialsInURL
		w.Header().Set(HeaderCode, string(c))
		writeError(w, StatusForCode(c), string(c), Message(c))
		return nil
	}
	res := s.VerifyHTTP(r, method, uri)
	WriteDecisionHeaders(w.Header(), res)
	if res.Valid() {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	status := StatusForCode(res.Code)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey", error="invalid_token"`)
	}
	writeError(w, status, string(res.Code), Message(res.Code))
	return nil
}

func parseURI(uri string) *url.URL {
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return &url.URL{Path: uri}
	}
	return u
}
