package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/latchkey/latchkey/internal/httpsig"
	"github.com/latchkey/latchkey/internal/verify"
)

// Signed reports whether r is a call signed with a signing key (RFC 9421)
// rather than one carrying a bearer credential: it has Signature-Input or
// Signature and no credential header. A call with both carries two
// credentials and is refused CREDENTIAL_AMBIGUOUS (verifyHTTP): the
// upstream might read the signature's keyid where latchkey judged the
// bearer credential.
func Signed(r *http.Request) bool {
	return hasSignature(r.Header) && !CredentialFromRequest(r).Present
}

func hasSignature(h http.Header) bool {
	return len(h["Signature-Input"]) > 0 || len(h["Signature"]) > 0
}

type bodyKey struct{}

// WithBody gives the signed call whose context is ctx its whole body, for
// its Content-Digest to be checked with the signature: Envoy ext_authz
// sends the body when with_request_body is configured and the body was
// not cut short. Without it, a surface that forwards the body checks the
// digest itself as the body streams (httpsig.DigestReader).
func WithBody(ctx context.Context, body []byte) context.Context {
	return context.WithValue(ctx, bodyKey{}, body)
}

// verifySignedCall decides on a signed gateway call (see Signed). The
// signature must cover the call as it was judged and will be served: its
// method, the canonical path (t.Path.Escaped) and the query as sent, at
// the scheme and authority the client addressed (requestOrigin).
func (s *Server) verifySignedCall(r *http.Request, req *verify.Request, t *Target) verify.Result {
	scheme, authority := s.requestOrigin(r)
	sr := &verify.SignedRequest{Request: *req, SignatureInput: r.Header.Values("Signature-Input"), Signature: r.Header.Values("Signature")}
	sr.HTTP.Message = httpsig.Message{Method: t.Method, Scheme: scheme, Authority: authority,
		Path: t.Path.Escaped, Query: t.RawQuery, Header: r.Header}
	if b, ok := r.Context().Value(bodyKey{}).([]byte); ok {
		sr.HTTP.Body = b
	}
	sr.HTTP.HasBody = sr.HTTP.Body != nil || announcesBody(r)
	return s.Verifier.VerifySigned(r.Context(), sr)
}

// requestOrigin is the scheme and authority the client sent its call to:
// X-Forwarded-Proto and X-Forwarded-Host when a trusted proxy sends them
// once each (forward auth: nginx as documented, Caddy's forward_auth),
// else the URL's scheme (Envoy's, or an absolute-form request line) or
// the connection's, and the Host.
func (s *Server) requestOrigin(r *http.Request) (scheme, authority string) {
	scheme, authority = r.URL.Scheme, r.Host
	if scheme == "" {
		scheme = "http"
		if r.TLS != nil {
			scheme = "https"
		}
	}
	if !peerTrusted(r, s.TrustedProxies) {
		return scheme, authority
	}
	if v := r.Header.Values("X-Forwarded-Proto"); len(v) == 1 && (v[0] == "http" || v[0] == "https") {
		scheme = v[0]
	}
	if v := r.Header.Values("X-Forwarded-Host"); len(v) == 1 && v[0] != "" && !strings.Contains(v[0], ",") {
		authority = v[0]
	}
	return scheme, authority
}

// announcesBody reports whether the call has, or says it has, a body, so
// that its signature must cover content-digest. Any sign counts: the
// call's own body, Content-Digest, a Content-Length other than 0,
// Transfer-Encoding, or the X-Original-Content-Length and
// X-Original-Transfer-Encoding that the documented nginx configuration
// sends (its auth subrequest has no body). Every one of them can only make
// the check stricter, so none needs a trusted sender.
func announcesBody(r *http.Request) bool {
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		return true
	}
	h := r.Header
	nonZero := func(name string) bool {
		for _, v := range h.Values(name) {
			if v = strings.TrimSpace(v); v != "" && strings.Trim(v, "0") != "" {
				return true
			}
		}
		return false
	}
	return len(h["Content-Digest"]) > 0 || nonZero("Content-Length") || nonZero("X-Original-Content-Length") ||
		h.Get("Transfer-Encoding") != "" || h.Get("X-Original-Transfer-Encoding") != "" || len(r.TransferEncoding) > 0
}
