package client

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/latchkey/latchkey/internal/httpsig"
)

// SigningTransport is an http.RoundTripper that signs every request with a
// signing key (RFC 9421) before Base sends it: it covers @method,
// @target-uri and, when there is a body, content-digest (RFC 9530, which
// it sets), with created, a fresh nonce, keyid (the access key ID) and
// alg. The private key is used here and never sent.
//
//	hc := &http.Client{Transport: &client.SigningTransport{KeyID: id, Key: key}}
type SigningTransport struct {
	KeyID string
	Key   crypto.Signer // ed25519.PrivateKey or *ecdsa.PrivateKey on P-256
	// Base sends the signed request; http.DefaultTransport when nil.
	Base http.RoundTripper
	// Now is the clock created is read from; time.Now when nil.
	Now func() time.Time
}

// RoundTrip implements http.RoundTripper. It reads the body to digest it,
// so a body is held in memory once.
func (t *SigningTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	out := r.Clone(r.Context())
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		if len(b) > 0 {
			body = b
		}
		out.Body = io.NopCloser(bytes.NewReader(b))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		out.ContentLength = int64(len(b))
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	m := httpsig.Message{Method: r.Method, Scheme: r.URL.Scheme, Authority: host, Path: r.URL.EscapedPath(),
		Query: r.URL.RawQuery, Header: out.Header}
	if m.Path == "" {
		m.Path = "/"
	}
	s := httpsig.Signer{KeyID: t.KeyID, Key: t.Key, Now: t.Now}
	if err := s.Sign(&m, body); err != nil {
		return nil, fmt.Errorf("latchkey: signing the request: %w", err)
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(out)
}

// ParseSigningKey reads a signing key's private half as
// create-access-key --generate-key-pair saves it in a credentials profile
// (latchkey_signing_key: the standard base64 of PKCS #8 DER).
func ParseSigningKey(s string) (crypto.Signer, error) {
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("latchkey: the signing key is not base64")
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errors.New("latchkey: the signing key is not a PKCS #8 private key")
	}
	sk, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("latchkey: the signing key cannot sign")
	}
	return sk, nil
}
