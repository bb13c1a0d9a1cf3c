package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/netip"
	"sort"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpsig"
	"github.com/latchkey/latchkey/internal/verify"
)

// MaxVerifyBodyBytes bounds a /v1/verify body.
const MaxVerifyBodyBytes = 16 << 10

// VerifyRequest is the body of POST /v1/verify.
type VerifyRequest struct {
	Key         string `json:"key"`
	AccessKeyID string `json:"access_key_id,omitempty"`
	IP          string `json:"ip,omitempty"`
	Referrer    string `json:"referrer,omitempty"`
	UserAgent   string `json:"user_agent,omitempty"`
	// Scope the call needs, e.g. "shipments:read".
	Scope string `json:"scope,omitempty"`
	// Method and Path describe the call instead of Scope: the server's
	// scope rules (serve --scope-rule) judge its canonical form, as on
	// every gateway surface. Path is the request target as the client
	// sent it (escaped, with any query).
	Method         string `json:"method,omitempty"`
	Path           string `json:"path,omitempty"`
	AndroidPackage string `json:"android_package,omitempty"`
	AndroidCert    string `json:"android_cert,omitempty"`
	IOSBundleID    string `json:"ios_bundle_id,omitempty"`
	// Cost is what the call takes from the key's quota: 1 when absent
	// (or the cost of the scope rule that matches method and path), 0
	// for a call that takes nothing but needs the quota not spent.
	Cost *int64 `json:"cost,omitempty"`

	// A request signed with a signing key (RFC 9421) instead of a key:
	// its Signature-Input and Signature field values, with Method and
	// Path, the Authority (host[:port]) and Scheme ("https" when empty)
	// it was sent to, the other fields its signature covers (Headers,
	// e.g. content-digest), and its body (BodyBase64) when it has one,
	// whose Content-Digest is then checked. HasBody says there is a body
	// the caller checks against Content-Digest itself.
	SignatureInput string            `json:"signature_input,omitempty"`
	Signature      string            `json:"signature,omitempty"`
	Authority      string            `json:"authority,omitempty"`
	Scheme         string            `json:"scheme,omitempty"`
	Headers        map[string]string `json:"headers,omitempty"`
	BodyBase64     string            `json:"body_base64,omitempty"`
	HasBody        bool              `json:"has_body,omitempty"`

	// ClientCertificateThumbprint is the SHA-256 thumbprint of the TLS
	// client certificate the call presented (x5t#S256, or 64 hex digits),
	// for keys bound to one; absent when it presented none.
	ClientCertificateThumbprint string `json:"client_certificate_thumbprint,omitempty"`
}

// VerifyResponse is the decision. Identity fields are set only when the
// credential matched a key the caller may see.
type VerifyResponse struct {
	Valid       bool          `json:"valid"`
	Code        latchkey.Code `json:"code"`
	Message     string        `json:"message"`
	AccessKeyID string        `json:"access_key_id,omitempty"`
	Application string        `json:"application,omitempty"`
	Account     string        `json:"account,omitempty"`
	// ExternalID and Metadata are the key's, when it has them.
	ExternalID string          `json:"external_id,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	// ApplicationMetadata is the metadata of the key's application, when
	// it has some.
	ApplicationMetadata json.RawMessage `json:"application_metadata,omitempty"`
	// Identity is the identity the key's application belongs to; absent
	// when it belongs to none.
	Identity *VerifyIdentity `json:"identity,omitempty"`
	// WouldDeny is what a report-only restriction would have answered.
	WouldDeny latchkey.Code `json:"would_deny,omitempty"`
	// RateLimit describes the key's bucket when it has a rate limit.
	RateLimit *RateLimitInfo `json:"rate_limit,omitempty"`
	// Quota describes the key's quota when it has one, or its identity's
	// (the one with less left when both have one).
	Quota *QuotaInfo `json:"quota,omitempty"`
	// RetryAfterSeconds is set for RATE_LIMITED, THROTTLED and
	// QUOTA_EXCEEDED (when the quota refills).
	RetryAfterSeconds int `json:"retry_after_seconds,omitempty"`
}

// VerifyIdentity is the identity of a verified key, as /v1/verify
// returns it.
type VerifyIdentity struct {
	ID         string          `json:"id"`
	ExternalID string          `json:"external_id,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
}

// QuotaInfo is the state of a key's quota after a decision: what it has
// left (as the answering replica knows it) and when it refills.
type QuotaInfo struct {
	Remaining int64      `json:"remaining"`
	ResetAt   *time.Time `json:"reset_at,omitempty"`
}

// RateLimitInfo is the state of a key's rate limit bucket.
type RateLimitInfo struct {
	Limit         int `json:"limit"`
	Remaining     int `json:"remaining"`
	WindowSeconds int `json:"window_seconds"`
}

var codeMessages = map[latchkey.Code]string{
	latchkey.CodeValid:     "the key is valid",
	latchkey.CodeNotFound:  "no such key",
	latchkey.CodeInactive:  "the key is Inactive",
	latchkey.CodeExpired:   "the key has expired",
	latchkey.CodeMalformed: "not a latchkey secret access key (wrong shape or checksum)",
	latchkey.CodeMissing:   "no key was given",

	latchkey.CodeIPNotAllowed:        "the key may not be used from this IP address",
	latchkey.CodeReferrerNotAllowed:  "the key may not be used from this referrer",
	latchkey.CodeAppNotAllowed:       "the key may not be used by this app",
	latchkey.CodeScopeDenied:         "the key does not have the scope this call needs",
	latchkey.CodeRateLimited:         "the key's rate limit is exhausted; retry later",
	latchkey.CodeThrottled:           "too many invalid keys from this address; retry later",
	latchkey.CodeQuotaExceeded:       "the key's quota has less left than the call costs; retry when it refills",
	latchkey.CodeCredentialsInURL:    "credentials must not be sent in a URL; send them in the Authorization or X-Api-Key header. Any key sent this way has been flagged as exposed",
	latchkey.CodeAmbiguousPath:       "the request's path has more than one meaning (an encoded slash or backslash, a semicolon, a double encoding, a control character, invalid UTF-8, or dot segments or repeated slashes that change the scope it needs), its method is not an HTTP token, or a _method query parameter would change it; send the plain path",
	latchkey.CodeCredentialAmbiguous: "more than one credential was sent (Authorization and X-Api-Key, one of them twice, or a comma-separated list); send exactly one",
	latchkey.CodeUntrustedGateway:    "the headers naming the original request (X-Original-Method/-URI, X-Forwarded-Method/-Uri) did not come whole and single from a trusted gateway",

	latchkey.CodeSignatureInvalid:    "the request signature does not verify with the signing key",
	latchkey.CodeSignatureExpired:    "the request signature is older than the window, or past its expires",
	latchkey.CodeSignatureFromFuture: "the request signature was created later than this server's clock allows",
	latchkey.CodeNonceReplayed:       "the signing key already signed a request with this nonce: a replay",
	latchkey.CodeDigestMismatch:      "the request body does not match its Content-Digest",
	latchkey.CodeComponentMissing:    "the request signature does not cover what it must (@method, @target-uri or @authority+@path+@query, content-digest with a body, created, nonce) or covers a field the request lacks",
	latchkey.CodeAlgorithmMismatch:   "the request signature's alg is not the signing key's algorithm",

	latchkey.CodeCertificateMismatch: "the key is bound to a TLS client certificate, and the call did not present it (through the proxy's TLS connection or a trusted gateway's header)",
}

// DecisionCodes returns every decision code a surface can answer, sorted.
func DecisionCodes() []string {
	var out []string
	for c := range codeMessages {
		out = append(out, string(c))
	}
	sort.Strings(out)
	return out
}

// Message returns the human sentence for a decision code.
func Message(c latchkey.Code) string { return codeMessages[c] }

func (s *Server) verify(w http.ResponseWriter, r *http.Request) error {
	caller, err := s.Authenticate(r)
	if err != nil {
		return err
	}
	if caller.Role == "" {
		return latchkey.Errorf(latchkey.EFORBIDDEN, "this principal may not verify keys")
	}
	var in VerifyRequest
	if err := decode(w, r, MaxVerifyBodyBytes, &in); err != nil {
		return err
	}
	req := verify.Request{Secret: in.Key, AccessKeyID: in.AccessKeyID, UserAgent: in.UserAgent, Referrer: in.Referrer,
		Scope: in.Scope, AndroidPackage: in.AndroidPackage, AndroidCert: in.AndroidCert, IOSBundleID: in.IOSBundleID,
		Surface: latchkey.SurfaceVerify, Path: in.Path}
	if in.ClientCertificateThumbprint != "" {
		t, err := latchkey.ParseCertThumbprint(in.ClientCertificateThumbprint)
		if err != nil {
			return latchkey.Errorf(latchkey.EINVALID, "client_certificate_thumbprint must be a SHA-256 thumbprint: 43 base64url characters (x5t#S256) or 64 hexadecimal digits")
		}
		req.ClientCert, req.HasClientCert = t, true
	}
	if in.Cost != nil {
		if *in.Cost < 0 || *in.Cost > latchkey.MaxQuota {
			return latchkey.Errorf(latchkey.EINVALID, "cost must be 0 to %d", int64(latchkey.MaxQuota))
		}
		req.Cost = *in.Cost
		if req.Cost == 0 {
			req.Cost = verify.FreeCost
		}
	}
	if in.IP != "" {
		ip, err := netip.ParseAddr(in.IP)
		if err != nil {
			return latchkey.Errorf(latchkey.EINVALID, "ip must be an IPv4 or IPv6 address")
		}
		req.IP = ip.Unmap()
	}
	if caller.Role != latchkey.RoleOperator {
		req.Account = caller.Account
	}
	var res verify.Result
	if in.SignatureInput != "" || in.Signature != "" {
		if res, err = s.verifySigned(r, &req, &in); err != nil {
			return err
		}
	} else if in.Method != "" || in.Path != "" {
		if in.Scope != "" {
			return latchkey.Errorf(latchkey.EINVALID, "give scope, or method and path for the scope rules to judge, not both")
		}
		if in.Method == "" || in.Path == "" {
			return latchkey.Errorf(latchkey.EINVALID, "method and path go together: give both, e.g. \"method\": \"GET\", \"path\": \"/shipments/42\"")
		}
		res = s.verifyCall(r, &req, in.Method, in.Path)
	} else {
		res = s.Verifier.Verify(&req)
	}
	out := VerifyResponse{Valid: res.Valid(), Code: res.Code, Message: Message(res.Code)}
	var he *httpsig.Error
	if errors.As(res.Err, &he) && he.Code == res.Code {
		out.Message += ": " + he.Reason
	}
	if res.Entry.Found() {
		out.AccessKeyID, out.Application, out.Account = res.Entry.ID, res.Entry.Application(), res.Entry.Account
		out.ExternalID, out.Metadata = res.Entry.ExternalID(), res.Entry.Metadata()
		out.ApplicationMetadata = res.Entry.ApplicationMetadata()
		if id := res.Entry.IdentityID(); id != "" {
			out.Identity = &VerifyIdentity{ID: id, ExternalID: res.Entry.IdentityExternalID(), Metadata: res.Entry.IdentityMetadata()}
		}
	}
	out.WouldDeny = res.WouldDeny
	if res.Rate.Limit > 0 {
		out.RateLimit = &RateLimitInfo{Limit: res.Rate.Limit, Remaining: res.Rate.Remaining, WindowSeconds: int(res.Rate.Window / time.Second)}
	}
	if q := res.Quota; q.Limited {
		out.Quota = &QuotaInfo{Remaining: q.Remaining}
		if !q.Reset.IsZero() {
			out.Quota.ResetAt = &q.Reset
		}
	}
	if d := max(res.Rate.RetryAfter, res.RetryAfter); d > 0 && !res.Valid() {
		out.RetryAfterSeconds = int(math.Ceil(d.Seconds()))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// verifyCall decides on req for the call that method and uri describe, as
// Decide does on the gateway surfaces: a credential in the URI is
// CREDENTIALS_IN_URL (real keys found there are flagged exposed, the
// call's client address and user agent recorded), an ambiguous method or
// path AMBIGUOUS_PATH, and otherwise the scope rules give req its scope.
// verifySigned decides on a signed request described by in. The path
// judged and the path the signature must cover are the same: the
// canonical form, as on every gateway surface. Scope, when given, is the
// scope the call needs in place of what the scope rules say.
func (s *Server) verifySigned(r *http.Request, req *verify.Request, in *VerifyRequest) (verify.Result, error) {
	switch {
	case in.Key != "" || in.AccessKeyID != "":
		return verify.Result{}, latchkey.Errorf(latchkey.EINVALID, "give key, or signature_input and signature, not both (a signed request names its key in keyid)")
	case in.Method == "" || in.Path == "" || in.Authority == "":
		return verify.Result{}, latchkey.Errorf(latchkey.EINVALID, "a signed request needs method, path and authority, e.g. \"method\": \"POST\", \"path\": \"/shipments?page=2\", \"authority\": \"api.example.com\"")
	}
	scheme := in.Scheme
	if scheme == "" {
		scheme = "https"
	}
	if scheme != "https" && scheme != "http" {
		return verify.Result{}, latchkey.Errorf(latchkey.EINVALID, "scheme must be https or http, not %q", in.Scheme)
	}
	sr := &verify.SignedRequest{Request: *req}
	sr.SignatureInput = []string{in.SignatureInput}
	sr.Signature = []string{in.Signature}
	h := http.Header{}
	for k, v := range in.Headers {
		h.Add(k, v)
	}
	if in.BodyBase64 != "" {
		b, err := base64.StdEncoding.DecodeString(in.BodyBase64)
		if err != nil {
			return verify.Result{}, latchkey.Errorf(latchkey.EINVALID, "body_base64 is not standard base64")
		}
		sr.HTTP.Body = b
	}
	sr.HTTP.HasBody = in.HasBody || sr.HTTP.Body != nil
	call := &http.Request{Method: in.Method, Header: http.Header{}}
	if req.IP.IsValid() {
		call.RemoteAddr = netip.AddrPortFrom(req.IP, 0).String()
	}
	if s.credentialInURL(call.WithContext(r.Context()), in.Method, in.Path) {
		return s.refused(latchkey.CodeCredentialsInURL), nil
	}
	scope, t, code := s.judge(in.Method, in.Path)
	if code != "" {
		return s.refused(code), nil
	}
	sr.Scope = scope
	if in.Scope != "" {
		// the caller's own scope for the call (the Go middleware's
		// MiddlewareOptions.Scope), in place of the scope rules'
		sr.Scope = in.Scope
	}
	if sr.Cost == 0 {
		sr.Cost = s.costOf(t)
	}
	sr.HTTP.Message = httpsig.Message{Method: t.Method, Scheme: scheme, Authority: in.Authority,
		Path: t.Path.Escaped, Query: t.RawQuery, Header: h}
	return s.Verifier.VerifySigned(r.Context(), sr), nil
}

func (s *Server) verifyCall(r *http.Request, req *verify.Request, method, uri string) verify.Result {
	call := &http.Request{Method: method, Header: http.Header{}}
	call.Header.Set("User-Agent", req.UserAgent)
	if req.IP.IsValid() {
		call.RemoteAddr = netip.AddrPortFrom(req.IP, 0).String()
	}
	if s.credentialInURL(call.WithContext(r.Context()), method, uri) {
		return s.refused(latchkey.CodeCredentialsInURL)
	}
	scope, t, code := s.judge(method, uri)
	if code != "" {
		return s.refused(code)
	}
	req.Scope = scope
	if req.Cost == 0 {
		req.Cost = s.costOf(t)
	}
	return s.Verifier.Verify(req)
}
