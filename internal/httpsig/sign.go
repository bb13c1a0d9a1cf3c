package httpsig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/dunglas/httpsfv"
	"github.com/latchkey/latchkey"
)

// Signer signs requests with a signing key's private half, covering what
// Policy.Check requires: @method, @target-uri, content-digest when there
// is a body, created, nonce, keyid and alg.
type Signer struct {
	KeyID string
	Key   crypto.Signer // ed25519.PrivateKey or *ecdsa.PrivateKey on P-256
	Label string        // "sig1" when empty
	Now   func() time.Time
	// Digest is the Content-Digest field value of a body: ContentDigest
	// (sha-512) when nil.
	Digest func(body []byte) string
}

// Sign sets Signature-Input, Signature and, when body is not nil,
// Content-Digest on m.Header. The nonce is 16 bytes from crypto/rand; an
// error from it is returned.
func (s *Signer) Sign(m *Message, body []byte) error {
	pub, err := latchkey.NewPublicKey(s.Key.Public())
	if err != nil {
		return err
	}
	covered := []string{"@method", "@target-uri"}
	if body != nil {
		digest := ContentDigest
		if s.Digest != nil {
			digest = s.Digest
		}
		m.Header.Set("Content-Digest", digest(body))
		covered = append(covered, "content-digest")
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	il := httpsfv.InnerList{Params: httpsfv.NewParams()}
	for _, c := range covered {
		il.Items = append(il.Items, httpsfv.NewItem(c))
	}
	il.Params.Add("created", now().Unix())
	il.Params.Add("nonce", base64.RawURLEncoding.EncodeToString(nonce))
	il.Params.Add("keyid", s.KeyID)
	il.Params.Add("alg", pub.Algorithm)
	params, err := httpsfv.Marshal(il)
	if err != nil {
		return err
	}
	sig := &Signature{Covered: covered, params: params}
	base, err := sig.Base(m)
	if err != nil {
		return err
	}
	v, err := signBytes(s.Key, base)
	if err != nil {
		return err
	}
	label := s.Label
	if label == "" {
		label = "sig1"
	}
	m.Header.Set("Signature-Input", label+"="+params)
	m.Header.Set("Signature", label+"=:"+base64.StdEncoding.EncodeToString(v)+":")
	return nil
}

// signBytes signs base with k by RFC 9421's algorithm for its key type.
func signBytes(k crypto.Signer, base []byte) ([]byte, error) {
	switch k := k.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, base), nil
	case *ecdsa.PrivateKey:
		h := sha256.Sum256(base)
		r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
		if err != nil {
			return nil, err
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out, nil
	}
	return nil, fmt.Errorf("httpsig: cannot sign with a %T", k)
}

// ContentDigest is the Content-Digest field value (RFC 9530) of body:
// its sha-512 digest.
func ContentDigest(body []byte) string {
	sum := sha512.Sum512(body)
	return "sha-512=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
}
