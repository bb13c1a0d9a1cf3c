package httpsig

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"time"

	"github.com/dunglas/httpsfv"
	"github.com/latchkey/latchkey"
)

// Defaults of a Policy.
const (
	DefaultWindow = 60 * time.Second
	DefaultSkew   = 5 * time.Second
	// MaxNonceLen bounds a nonce, which is kept for the window.
	MaxNonceLen = 128
)

// NonceStore remembers the nonces a key signed with, for as long as a
// signature with them could still be accepted. Claim reports whether the
// nonce was new (and records it for ttl); false means a replay. An error
// means the store could not answer, and the signature is refused.
type NonceStore interface {
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Policy is what latchkey requires of a request signature beyond RFC 9421.
type Policy struct {
	// Window is how old created may be (DefaultWindow when 0).
	Window time.Duration
	// Skew is how far created may be in the future, and how far past its
	// expiry and window a signature is still taken, for clocks that
	// differ a little (DefaultSkew when 0; negative for none).
	Skew time.Duration
	// Nonces remembers nonces; nil refuses every signature (fail closed).
	Nonces NonceStore
}

func (p *Policy) window() time.Duration {
	if p.Window > 0 {
		return p.Window
	}
	return DefaultWindow
}

func (p *Policy) skew() time.Duration {
	switch {
	case p.Skew < 0:
		return 0
	case p.Skew == 0:
		return DefaultSkew
	}
	return p.Skew
}

// Request is a signed request as a surface saw it.
type Request struct {
	Message
	// Body is the request body when the surface has it all; when
	// HasBody is set and Body is nil, the surface checks the digest
	// itself as it streams the body (DigestChecker).
	Body    []byte
	HasBody bool
}

// Check decides on s, a signature of r made (it claims) with pub, at now.
// It returns nil or an *Error. The order: required components
// (COMPONENT_MISSING), alg (ALGORITHM_MISMATCH), freshness
// (SIGNATURE_FROM_FUTURE, SIGNATURE_EXPIRED), the signature itself
// (SIGNATURE_INVALID), the body's digest (DIGEST_MISMATCH), and last the
// nonce (NONCE_REPLAYED), so that only a valid signature uses one up.
func (p *Policy) Check(ctx context.Context, s *Signature, r *Request, pub *latchkey.PublicKey, now time.Time) error {
	if err := required(s, r); err != nil {
		return err
	}
	if s.Alg != "" && s.Alg != pub.Algorithm {
		return refuse(latchkey.CodeAlgorithmMismatch, "alg is %q but the key is %s", s.Alg, pub.Algorithm)
	}
	skew := p.skew()
	created := time.Unix(s.Created, 0)
	if created.After(now.Add(skew)) {
		return refuse(latchkey.CodeSignatureFromFuture, "created is %s ahead of this server's clock", created.Sub(now).Round(time.Second))
	}
	if now.Sub(created) > p.window()+skew {
		return refuse(latchkey.CodeSignatureExpired, "created is %s old; signatures are accepted for %s", now.Sub(created).Round(time.Second), p.window())
	}
	if s.Expires != 0 && now.After(time.Unix(s.Expires, 0).Add(skew)) {
		return refuse(latchkey.CodeSignatureExpired, "the signature expired %s ago", now.Sub(time.Unix(s.Expires, 0)).Round(time.Second))
	}
	base, err := s.Base(&r.Message)
	if err != nil {
		return err
	}
	if !VerifyBytes(pub, base, s.Value) {
		return refuse(latchkey.CodeSignatureInvalid, "the signature does not verify with the key %s", pub.Fingerprint)
	}
	if r.HasBody && r.Body != nil {
		if err := CheckDigest(r.Header.Values("Content-Digest"), r.Body); err != nil {
			return err
		}
	}
	if p.Nonces == nil {
		return refuse(latchkey.CodeNonceReplayed, "no nonce store is configured")
	}
	// Kept for as long as the signature could be accepted: until the
	// window (and skew) has passed from created.
	ttl := created.Add(p.window() + skew).Sub(now)
	if ttl <= 0 {
		ttl = time.Second
	}
	fresh, err := p.Nonces.Claim(ctx, s.KeyID+" "+s.Nonce, ttl)
	if err != nil {
		return err
	}
	if !fresh {
		return refuse(latchkey.CodeNonceReplayed, "nonce %q was already used by this key", s.Nonce)
	}
	return nil
}

// required checks that s covers what latchkey requires of r.
func required(s *Signature, r *Request) error {
	has := func(c string) bool {
		for _, x := range s.Covered {
			if x == c {
				return true
			}
		}
		return false
	}
	switch {
	case !has("@method"):
		return refuse(latchkey.CodeComponentMissing, "the signature must cover @method")
	case !has("@target-uri") && !(has("@authority") && has("@path") && has("@query")):
		return refuse(latchkey.CodeComponentMissing, "the signature must cover @target-uri, or @authority, @path and @query")
	case r.HasBody && !has("content-digest"):
		return refuse(latchkey.CodeComponentMissing, "a request with a body must cover content-digest")
	case s.Created == 0:
		return refuse(latchkey.CodeComponentMissing, "the signature must have the created parameter")
	case s.Nonce == "":
		return refuse(latchkey.CodeComponentMissing, "the signature must have the nonce parameter")
	case len(s.Nonce) > MaxNonceLen:
		return refuse(latchkey.CodeMalformed, "the nonce is longer than %d bytes", MaxNonceLen)
	}
	return nil
}

// CheckDigest checks body against a Content-Digest field (RFC 9530): every
// sha-256 and sha-512 digest in it must match, and there must be at least
// one. Other algorithms are ignored, as RFC 9530 lets a recipient do.
func CheckDigest(field []string, body []byte) error {
	d, err := parseDigest(field)
	if err != nil {
		return err
	}
	return d.match(sha256.Sum256(body), sha512.Sum512(body))
}

// digests are the sha-256 and sha-512 values of a Content-Digest field.
type digests struct{ sha256, sha512 []byte }

func parseDigest(field []string) (*digests, error) {
	if len(field) == 0 {
		return nil, refuse(latchkey.CodeComponentMissing, "the request has a body but no Content-Digest")
	}
	dict, err := httpsfv.UnmarshalDictionary(field)
	if err != nil {
		return nil, refuse(latchkey.CodeMalformed, "Content-Digest is not a structured-field dictionary")
	}
	var d digests
	for _, alg := range dict.Names() {
		m, _ := dict.Get(alg)
		it, ok := m.(httpsfv.Item)
		if !ok {
			continue
		}
		v, ok := it.Value.([]byte)
		if !ok {
			continue
		}
		switch alg {
		case "sha-256":
			d.sha256 = v
		case "sha-512":
			d.sha512 = v
		}
	}
	if d.sha256 == nil && d.sha512 == nil {
		return nil, refuse(latchkey.CodeDigestMismatch, "Content-Digest has neither sha-256 nor sha-512")
	}
	return &d, nil
}

func (d *digests) match(s256 [32]byte, s512 [64]byte) error {
	if d.sha256 != nil && subtle.ConstantTimeCompare(d.sha256, s256[:]) != 1 {
		return refuse(latchkey.CodeDigestMismatch, "the body does not match its sha-256 Content-Digest")
	}
	if d.sha512 != nil && subtle.ConstantTimeCompare(d.sha512, s512[:]) != 1 {
		return refuse(latchkey.CodeDigestMismatch, "the body does not match its sha-512 Content-Digest")
	}
	return nil
}
