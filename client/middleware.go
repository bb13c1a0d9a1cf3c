package client

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
)

// Cache bounds of Middleware.
const (
	// DefaultCacheTTL is how long Middleware reuses a positive decision
	// unless told otherwise.
	DefaultCacheTTL = 5 * time.Second
	// MaxCacheTTL is the longest it may: a longer CacheTTL is cut to it.
	MaxCacheTTL = 60 * time.Second
	// DefaultCacheSize is how many decisions it keeps unless told
	// otherwise.
	DefaultCacheSize = 10000
	// DefaultVerifyTimeout is how long Middleware waits for latchkey's
	// decision unless told otherwise; the call is then refused with 503.
	DefaultVerifyTimeout = 2 * time.Second
)

// MiddlewareOptions configure Middleware.
type MiddlewareOptions struct {
	// Client asks latchkey (POST /v1/verify). Its credentials must be an
	// admin principal's; a principal with role verifier is enough and is
	// the one to use.
	Client *Client

	// CacheTTL is how long a positive decision is reused without asking
	// latchkey again: DefaultCacheTTL when 0, at most MaxCacheTTL, and no
	// caching when negative. This is the staleness a service accepts: a
	// key deactivated, deleted or restricted in latchkey may still pass
	// for up to CacheTTL where it passed just before. Refusals are never
	// cached, and neither are the decisions on keys with a rate limit, a
	// quota (their own or their identity's) or a report-only restriction
	// (latchkey must count each of their calls).
	CacheTTL time.Duration
	// CacheSize bounds how many decisions are kept: DefaultCacheSize when
	// 0 or less.
	CacheSize int

	// Timeout bounds the wait for latchkey's decision:
	// DefaultVerifyTimeout when 0; no bound of the middleware's own when
	// negative (the Client's http.Client may still have one). A call
	// whose decision does not come in time is refused with 503, as when
	// latchkey cannot be reached: a slow key service never holds calls
	// open, and never lets them through.
	Timeout time.Duration

	// Scope returns the scope a call needs, e.g. "shipments:write" for a
	// POST to /shipments; nil or "" checks no scope. It is given the
	// call in canonical form, as the next handler gets it (see
	// Middleware).
	Scope func(r *http.Request) string
	// ScopeRules, when Scope is nil, has latchkey judge each call's
	// method and canonical path with its own scope rules (serve
	// --scope-rule), as its gateway surfaces do. Decisions are then
	// cached per method and path.
	ScopeRules bool
	// PathRelax accepts path forms that are refused by default as having
	// more than one meaning (latchkey.PathRelax); as serve --path-relax.
	PathRelax latchkey.PathRelax
	// ClientIP returns the caller's address, which latchkey checks against
	// the key's allowed IPs and records as its last use. nil means the
	// connection's peer; behind a proxy, read X-Forwarded-For here, and
	// only from proxies you trust.
	ClientIP func(r *http.Request) string

	// Scheme is the scheme callers address the service with, which a
	// signed call's @target-uri covers: "https" when the connection is
	// TLS and "http" otherwise when "". Set it to "https" behind a proxy
	// that ends TLS.
	Scheme string

	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Identity is the caller's key, as latchkey decided on it.
type Identity struct {
	AccessKeyID string
	Application string
	Account     string
	// ExternalID is the key's external ID, "" when it has none; Metadata
	// its metadata (a JSON object), nil when it has none. Handlers must
	// not change Metadata: cached decisions share it.
	ExternalID string
	Metadata   json.RawMessage
	// IdentityID, IdentityExternalID and IdentityMetadata describe the
	// identity (the customer) the key's application belongs to; empty
	// when it belongs to none. ApplicationMetadata is the application's
	// metadata. Handlers must not change them.
	IdentityID          string
	IdentityExternalID  string
	IdentityMetadata    json.RawMessage
	ApplicationMetadata json.RawMessage
}

// identityOf is the Identity a decision describes.
func identityOf(res *VerifyResult) Identity {
	id := Identity{AccessKeyID: res.AccessKeyID, Application: res.Application, Account: res.Account,
		ExternalID: res.ExternalID, Metadata: res.Metadata, ApplicationMetadata: res.ApplicationMetadata}
	if i := res.Identity; i != nil {
		id.IdentityID, id.IdentityExternalID, id.IdentityMetadata = i.ID, i.ExternalID, i.Metadata
	}
	return id
}

type identityKey struct{}

// IdentityFrom returns the identity Middleware put in a request's context.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// Middleware returns net/http middleware that lets a call through only when
// latchkey decides its credential is valid, and puts the caller's Identity
// in the request's context (IdentityFrom). The credential is read as
// latchkey reads it: Authorization: Bearer <secret>, Authorization: Basic
// base64(<id>:<secret>), or X-Api-Key: <secret>; a call that carries more
// than one is refused with 401 CREDENTIAL_AMBIGUOUS before latchkey is
// asked (so a canary key among them raises no alert from here).
//
// The decision and the next handler see the same call: its canonical form
// (latchkey.CanonicalizePath, latchkey.CanonicalMethod), with the method in
// upper case and the path decoded where that is unambiguous, dot segments
// removed and slashes merged. A call whose path has more than one meaning
// is refused with 400 AMBIGUOUS_PATH before latchkey is asked, and so is
// one with a _method query parameter. Any request header that reads as
// X-Latchkey-* (in any case, "_" for "-") and any method-override header
// (X-HTTP-Method-Override, ...) is removed before the next handler runs.
//
// A refused call is answered as latchkey's forward-auth endpoint answers it:
// 401, 403 or 429, with {"error":{"code","message"}} holding the decision
// code (INACTIVE, IP_NOT_ALLOWED, ...), X-Latchkey-Code, WWW-Authenticate on
// a 401 and Retry-After on a 429. A call with a secret in its URL is refused
// with 403 CREDENTIALS_IN_URL without asking latchkey (only latchkey's own
// surfaces can flag that key exposed). When latchkey cannot be reached, or
// does not answer within MiddlewareOptions.Timeout, the call is refused
// with 503: the middleware fails closed.
//
// Positive decisions are cached for MiddlewareOptions.CacheTTL, keyed by
// the SHA-256 digest of the secret together with everything the decision
// depends on (access key ID, client address, referrer, scope, app
// identity); the secret itself is never kept. See CacheTTL for what that
// means for a deactivated key.
//
// A call signed with a signing key (RFC 9421: Signature-Input and
// Signature, no credential header) is judged by its signature, never
// cached, and its body checked against its Content-Digest (serveSigned).
func Middleware(o MiddlewareOptions) func(http.Handler) http.Handler {
	ttl := o.CacheTTL
	switch {
	case ttl == 0:
		ttl = DefaultCacheTTL
	case ttl > MaxCacheTTL:
		ttl = MaxCacheTTL
	}
	size := o.CacheSize
	if size <= 0 {
		size = DefaultCacheSize
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultVerifyTimeout
	}
	m := &middleware{o: o, now: now, cache: &decisionCache{ttl: ttl, max: size, m: map[[32]byte]cached{}}}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m.serve(next, w, r)
		})
	}
}

type middleware struct {
	o     MiddlewareOptions
	now   func() time.Time
	cache *decisionCache
}

func (m *middleware) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	if urlHoldsSecret(r) {
		refuse(w, http.StatusForbidden, latchkey.CodeCredentialsInURL,
			"credentials must not be sent in a URL; send them in the Authorization or X-Api-Key header", 0)
		return
	}
	r, raw, ok := m.canonical(r)
	if !ok {
		refuse(w, http.StatusBadRequest, latchkey.CodeAmbiguousPath,
			"the request's path has more than one meaning (an encoded slash or backslash, a semicolon, a double encoding, a control character or invalid UTF-8), its method is not an HTTP token, or a _method parameter would change it; send the plain path", 0)
		return
	}
	in := VerifyInput{
		IP: m.clientIP(r), Referrer: r.Referer(), UserAgent: r.UserAgent(),
		AndroidPackage: r.Header.Get("X-Android-Package"), AndroidCert: r.Header.Get("X-Android-Cert"),
		IOSBundleID: r.Header.Get("X-Ios-Bundle-Identifier"),
	}
	var one bool
	// A signature beside a credential header is a second credential too:
	// the next handler might read the signature's keyid.
	if in.Key, in.AccessKeyID, one = credential(r); !one || (hasSignature(r) && !signedCall(r)) {
		refuse(w, http.StatusUnauthorized, latchkey.CodeCredentialAmbiguous,
			"more than one credential was sent (Authorization and X-Api-Key, one of them twice, or a comma-separated list); send exactly one", 0)
		return
	}
	if in.Key == "" && signedCall(r) {
		m.serveSigned(next, w, r, raw, in)
		return
	}
	if in.Key == "" {
		refuse(w, http.StatusUnauthorized, latchkey.CodeMissing, "no key was given", 0)
		return
	}
	switch {
	case m.o.Scope != nil:
		in.Scope = m.o.Scope(r)
	case m.o.ScopeRules:
		// the path as sent: latchkey judges it as its gateway
		// surfaces do, under every reading
		in.Method, in.Path = r.Method, raw
	}
	ck := cacheKey(&in)
	if id, ok := m.cache.get(ck, m.now()); ok {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
		return
	}
	res, ok := m.ask(w, r, in)
	if !ok {
		return
	}
	id := identityOf(res)
	if res.RateLimit == nil && res.WouldDeny == "" && res.Quota == nil {
		m.cache.put(ck, id, m.now())
	}
	if res.RateLimit != nil {
		setRateLimit(w, res.RateLimit)
	}
	next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
}

// canonical returns r in canonical form (see Middleware) and its path as
// it came on the wire, without any
// header that reads as X-Latchkey-* or is a method override
// (latchkey.MethodOverrideHeaders); false when the method or path is
// ambiguous, or a _method query parameter would change the method.
func (m *middleware) canonical(r *http.Request) (*http.Request, string, bool) {
	if _, ok := latchkey.CanonicalMethod(r.Method); !ok {
		return nil, "", false
	}
	raw := r.URL.EscapedPath()
	if strings.HasPrefix(r.RequestURI, "/") { // as it came on the wire
		raw, _, _ = strings.Cut(r.RequestURI, "?")
	}
	cp, err := latchkey.CanonicalizePath(raw, m.o.PathRelax)
	if err != nil {
		return nil, "", false
	}
	if latchkey.QueryOverridesMethod(r.URL.RawQuery) {
		return nil, "", false
	}
	strip := func(k string) bool { return latchkey.IsIdentityHeader(k) || latchkey.IsMethodOverrideHeader(k) }
	latchkeyHeader := false
	for k := range r.Header {
		latchkeyHeader = latchkeyHeader || strip(k)
	}
	if cp.Escaped == r.URL.EscapedPath() && cp.Segmented == r.URL.Path && !latchkeyHeader {
		return r, raw, true
	}
	c := r.Clone(r.Context())
	c.URL.Path, c.URL.RawPath = cp.Segmented, cp.Escaped
	c.RequestURI = c.URL.RequestURI()
	for k := range c.Header {
		if strip(k) {
			delete(c.Header, k)
		}
	}
	return c, raw, true
}

// ask has latchkey decide on in, within the Timeout. It answers a
// refusal (or 503 when latchkey cannot be reached) and returns false, or
// returns the valid decision.
func (m *middleware) ask(w http.ResponseWriter, r *http.Request, in VerifyInput) (*VerifyResult, bool) {
	ctx := r.Context()
	if m.o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.o.Timeout)
		defer cancel()
	}
	res, err := m.o.Client.Verify(ctx, in)
	if err != nil {
		if r.Context().Err() == nil { // else the caller went away
			refuseError(w, http.StatusServiceUnavailable, latchkey.EUNAVAILABLE, "the key service cannot be reached; try again shortly")
		}
		return nil, false
	}
	if !res.Valid {
		refuse(w, StatusForCode(res.Code), res.Code, res.Message, res.RetryAfterSeconds)
		return nil, false
	}
	return res, true
}

func setRateLimit(w http.ResponseWriter, rl *RateLimitInfo) {
	w.Header().Set("RateLimit-Limit", strconv.Itoa(rl.Limit))
	w.Header().Set("RateLimit-Remaining", strconv.Itoa(rl.Remaining))
}

func (m *middleware) clientIP(r *http.Request) string {
	if m.o.ClientIP != nil {
		return m.o.ClientIP(r)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return host
}

// credential reads the secret (and access key ID, from Basic) as latchkey
// does, and reports false when the call carries more than one credential
// (two Authorization or X-Api-Key values, both, a comma-separated list) or
// one under an underscored name such as X_Api_Key: latchkey refuses those
// with CREDENTIAL_AMBIGUOUS.
func credential(r *http.Request) (secret, id string, one bool) {
	n := 0
	for name, vs := range r.Header {
		auth := latchkey.HeaderNameEqual(name, "Authorization")
		if !auth && !latchkey.HeaderNameEqual(name, "X-Api-Key") {
			continue
		}
		for _, v := range vs {
			for v != "" {
				var part string
				part, v, _ = strings.Cut(v, ",")
				if part = strings.TrimSpace(part); part == "" {
					continue
				}
				n++
				if strings.Contains(name, "_") {
					n++
				}
				if auth {
					secret, id = authorization(part)
				} else {
					secret, id = part, ""
				}
			}
		}
	}
	if n > 1 {
		return "", "", false
	}
	return secret, id, true
}

// authorization reads an Authorization value: Bearer or Basic.
func authorization(v string) (secret, id string) {
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
		id, secret, _ := strings.Cut(string(raw), ":")
		return secret, id
	}
	return "", ""
}

// urlCredentialParams are the query parameter names latchkey refuses.
var urlCredentialParams = []string{"api_key", "apikey", "api-key", "key", "access_key", "secret",
	"secret_access_key", "token", "access_token", "x-api-key"}

// urlHoldsSecret reports whether the URL carries a credential: a latchkey
// secret anywhere (lksk_, or checksum-valid with an account's prefix, even
// percent-encoded), or a query parameter named like a credential.
func urlHoldsSecret(r *http.Request) bool {
	if looksLikeSecret(r.URL.Path) || looksLikeSecret(r.URL.RawQuery) {
		return true
	}
	if r.URL.RawQuery == "" {
		return false
	}
	for name, vs := range r.URL.Query() {
		for _, p := range urlCredentialParams {
			if strings.EqualFold(name, p) {
				for _, v := range vs {
					if v != "" {
						return true
					}
				}
			}
		}
	}
	return false
}

// cacheKey is the SHA-256 digest of everything a decision depends on; the
// secret is hashed, never kept.
func cacheKey(in *VerifyInput) [32]byte {
	h := sha256.New()
	for _, s := range []string{in.Key, in.AccessKeyID, in.IP, in.Referrer, in.Scope, in.Method, in.Path, in.AndroidPackage, in.AndroidCert, in.IOSBundleID} {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// StatusForCode is the HTTP status latchkey's gateway surfaces (forward
// auth, the reverse proxy, Envoy ext_authz) and Middleware give a decision:
// 200 for VALID, 403 for a restriction or a credential in the URL, 429 for
// a rate limit or a spent quota, 401 otherwise.
func StatusForCode(c latchkey.Code) int {
	switch c {
	case latchkey.CodeIPNotAllowed, latchkey.CodeReferrerNotAllowed, latchkey.CodeAppNotAllowed, latchkey.CodeScopeDenied,
		latchkey.CodeCredentialsInURL:
		return http.StatusForbidden
	case latchkey.CodeRateLimited, latchkey.CodeThrottled, latchkey.CodeQuotaExceeded:
		return http.StatusTooManyRequests
	case latchkey.CodeAmbiguousPath, latchkey.CodeUntrustedGateway:
		return http.StatusBadRequest
	case latchkey.CodeValid:
		return http.StatusOK
	}
	return http.StatusUnauthorized
}

func refuse(w http.ResponseWriter, status int, code latchkey.Code, msg string, retryAfter int) {
	w.Header().Set("X-Latchkey-Code", string(code))
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", latchkey.BearerChallenge(code))
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	refuseError(w, status, string(code), msg)
}

func refuseError(w http.ResponseWriter, status int, code, msg string) {
	var body errorBody
	body.Error.Code, body.Error.Message = code, msg
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// decisionCache keeps positive decisions for a bounded time, in bounded
// number.
type decisionCache struct {
	ttl time.Duration // < 0: no caching
	max int

	mu sync.Mutex
	m  map[[32]byte]cached
}

type cached struct {
	id      Identity
	expires time.Time
}

func (c *decisionCache) get(k [32]byte, now time.Time) (Identity, bool) {
	if c.ttl < 0 {
		return Identity{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return Identity{}, false
	}
	if !now.Before(e.expires) {
		delete(c.m, k)
		return Identity{}, false
	}
	return e.id, true
}

func (c *decisionCache) put(k [32]byte, id Identity, now time.Time) {
	if c.ttl < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for ek, e := range c.m { // drop what has expired
			if !now.Before(e.expires) {
				delete(c.m, ek)
			}
		}
		// Still full: drop arbitrary entries, an eighth of the cache at
		// once so that a full cache is not swept on every call.
		for ek := range c.m {
			if len(c.m) < c.max-c.max/8 {
				break
			}
			delete(c.m, ek)
		}
	}
	c.m[k] = cached{id: id, expires: now.Add(c.ttl)}
}

// len returns the number of decisions kept, for tests.
func (c *decisionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
