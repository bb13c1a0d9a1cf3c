package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/latchkey/latchkey"
)

// Headers that carry the client's TLS certificate from a gateway that
// terminated the client's TLS: nginx's $ssl_client_escaped_cert (a
// URL-escaped PEM certificate) and Envoy's x-forwarded-client-cert, whose
// Hash field is the hex SHA-256 of the certificate's DER. They are read
// only from a peer in TrustedProxies, and removed before the upstream
// when they come from any other (DeleteUntrustedCertHeaders).
const (
	HeaderClientCert          = "X-Client-Cert"
	HeaderForwardedClientCert = "X-Forwarded-Client-Cert"
)

type clientCertKey struct{}

// WithClientCert records the thumbprint of the client certificate a
// surface learned from its own transport (Envoy ext_authz's source
// certificate); it wins over headers and the connection's TLS.
func WithClientCert(ctx context.Context, t latchkey.CertThumbprint) context.Context {
	return context.WithValue(ctx, clientCertKey{}, t)
}

// ClientCert returns the thumbprint of the TLS client certificate the
// call r presented, for keys bound to one, in this order: the one a
// surface recorded (WithClientCert); from a trusted proxy, its
// X-Client-Cert or, without it, the last element's Hash of
// X-Forwarded-Client-Cert; the first certificate of r's own TLS
// connection. A header that is repeated or does not parse gives no
// certificate (a bound key is then refused), and so does any header from
// an untrusted peer.
func (s *Server) ClientCert(r *http.Request) (latchkey.CertThumbprint, bool) {
	if t, ok := r.Context().Value(clientCertKey{}).(latchkey.CertThumbprint); ok {
		return t, true
	}
	// the canonical names straight from the map: Values without
	// canonicalising them on every call
	xcc, xfcc := r.Header[HeaderClientCert], r.Header[HeaderForwardedClientCert]
	if (len(xcc) > 0 || len(xfcc) > 0) && peerTrusted(r, s.TrustedProxies) {
		switch {
		case len(xcc) == 1:
			t, err := latchkey.ParseEscapedCertificate(xcc[0])
			return t, err == nil
		case len(xcc) == 0 && len(xfcc) == 1:
			return forwardedCertHash(xfcc[0])
		}
		return latchkey.CertThumbprint{}, false
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return latchkey.ThumbprintOf(r.TLS.PeerCertificates[0].Raw), true
	}
	return latchkey.CertThumbprint{}, false
}

// DeleteUntrustedCertHeaders removes the client certificate headers of a
// call from a peer outside TrustedProxies, so that the upstream does not
// take a forged one for the gateway's.
func (s *Server) DeleteUntrustedCertHeaders(r *http.Request, h http.Header) {
	if !peerTrusted(r, s.TrustedProxies) {
		h.Del(HeaderClientCert)
		h.Del(HeaderForwardedClientCert)
	}
}

// forwardedCertHash reads the Hash field of the last element of an
// x-forwarded-client-cert value (the one the nearest Envoy added):
// elements are separated by commas and fields by semicolons, outside
// double quotes.
func forwardedCertHash(v string) (latchkey.CertThumbprint, bool) {
	elems := splitQuoted(v, ',')
	for _, f := range splitQuoted(elems[len(elems)-1], ';') {
		k, val, ok := strings.Cut(strings.TrimSpace(f), "=")
		if ok && strings.EqualFold(k, "Hash") {
			t, err := latchkey.ParseCertThumbprint(strings.Trim(val, `"`))
			if err != nil || len(strings.Trim(val, `"`)) != 64 {
				return latchkey.CertThumbprint{}, false
			}
			return t, true
		}
	}
	return latchkey.CertThumbprint{}, false
}

// splitQuoted splits s at sep outside double quotes (a backslash escapes
// the next character inside them).
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
