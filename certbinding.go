package latchkey

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"net/url"
	"strings"
)

// CodeCertificateMismatch answers a key bound to a TLS client certificate
// (AccessKey.CertThumbprint) that was presented without that certificate:
// no client certificate, another one, or one from a peer that is not
// trusted to say which certificate the client presented. It is checked
// right after the key is found active and unexpired, before restrictions;
// gateway surfaces answer 401.
const CodeCertificateMismatch Code = "CERTIFICATE_MISMATCH"

// CertThumbprint is the SHA-256 thumbprint of a certificate's DER
// encoding, as RFC 8705 section 3.1 spells it for x5t#S256.
type CertThumbprint [sha256.Size]byte

// ThumbprintOf returns the thumbprint of a DER-encoded certificate.
func ThumbprintOf(der []byte) CertThumbprint { return sha256.Sum256(der) }

// String is the base64url encoding without padding (43 characters).
func (t CertThumbprint) String() string { return base64.RawURLEncoding.EncodeToString(t[:]) }

// ParseCertThumbprint reads a thumbprint written as RFC 8705's x5t#S256
// (base64url without padding, 43 characters) or as 64 hexadecimal digits
// (what Envoy's x-forwarded-client-cert Hash field and `openssl x509
// -fingerprint -sha256` print, colons allowed). EINVALID otherwise.
func ParseCertThumbprint(s string) (CertThumbprint, error) {
	var t CertThumbprint
	switch h := strings.ReplaceAll(s, ":", ""); {
	case len(s) == 43:
		if n, err := base64.RawURLEncoding.Decode(t[:], []byte(s)); err == nil && n == len(t) {
			return t, nil
		}
	case len(h) == 64:
		if n, err := hex.Decode(t[:], []byte(h)); err == nil && n == len(t) {
			return t, nil
		}
	}
	return t, Errorf(EINVALID, "certificate_thumbprint must be a SHA-256 thumbprint: 43 base64url characters (x5t#S256) or 64 hexadecimal digits")
}

// ParseCertificatePEM returns the thumbprint of the first certificate in
// a PEM document. EINVALID when there is none or it does not parse.
func ParseCertificatePEM(data []byte) (CertThumbprint, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return CertThumbprint{}, Errorf(EINVALID, "certificate: no PEM CERTIFICATE block found")
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return CertThumbprint{}, Errorf(EINVALID, "certificate: not an X.509 certificate")
		}
		return ThumbprintOf(b.Bytes), nil
	}
}

// ParseEscapedCertificate reads the URL-escaped PEM certificate nginx
// passes in $ssl_client_escaped_cert (and Envoy in the Cert field of
// x-forwarded-client-cert). EINVALID when it is not one.
func ParseEscapedCertificate(s string) (CertThumbprint, error) {
	p, err := url.PathUnescape(s) // not QueryUnescape: "+" stays "+"
	if err != nil {
		return CertThumbprint{}, Errorf(EINVALID, "client certificate: not URL-escaped PEM")
	}
	return ParseCertificatePEM([]byte(p))
}

// CertBinding returns the x5t#S256 a create or update binds a key to,
// from a thumbprint or a PEM certificate (at most one of them): "" with
// a thumbprint of "" (unbind). EINVALID for both, or a bad value.
func CertBinding(thumbprint, certificate string) (string, error) {
	switch {
	case thumbprint != "" && certificate != "":
		return "", Errorf(EINVALID, "give certificate_thumbprint or certificate, not both")
	case certificate != "":
		t, err := ParseCertificatePEM([]byte(certificate))
		return t.String(), err
	case thumbprint != "":
		t, err := ParseCertThumbprint(thumbprint)
		return t.String(), err
	}
	return "", nil
}
