package verify_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpsig"
	"github.com/latchkey/latchkey/internal/verify"
)

// signingKey returns a signing key for app made from a key pair generated
// now, and its private half.
func signingKey(t testing.TB, app string, priv crypto.Signer, mod ...func(*latchkey.AccessKey)) *latchkey.AccessKey {
	t.Helper()
	k := newKey(t, "acme", app, mod...).AccessKey
	pub, err := latchkey.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	k.KeyType, k.PublicKey, k.SecretDigest = latchkey.KeyTypeSigning, pub, latchkey.SigningDigest(k.ID)
	return k
}

func newEd25519(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// signed is a POST with a body, signed by priv as keyid at created.
func signed(t testing.TB, keyid string, priv crypto.Signer, created time.Time, body []byte) *verify.SignedRequest {
	t.Helper()
	m := httpsig.Message{Method: "POST", Scheme: "https", Authority: "api.example.com", Path: "/shipments", Query: "page=2", Header: http.Header{}}
	s := httpsig.Signer{KeyID: keyid, Key: priv, Now: func() time.Time { return created }}
	if err := s.Sign(&m, body); err != nil {
		t.Fatal(err)
	}
	return &verify.SignedRequest{
		SignatureInput: m.Header.Values("Signature-Input"),
		Signature:      m.Header.Values("Signature"),
		HTTP:           httpsig.Request{Message: m, Body: body, HasBody: body != nil},
	}
}

func TestVerifySigned(t *testing.T) {
	body := []byte(`{"parcel":1}`)
	ed := newEd25519(t)
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edKey := signingKey(t, "billing", ed)
	ecKey := signingKey(t, "shipping", p256)
	offKey := signingKey(t, "old", ed, inactive)
	bearer := newKey(t, "acme", "bearer")
	tests := []struct {
		name string
		req  func() *verify.SignedRequest
		want latchkey.Code
	}{
		{"ed25519", func() *verify.SignedRequest { return signed(t, edKey.ID, ed, t0, body) }, latchkey.CodeValid},
		{"ecdsa p-256", func() *verify.SignedRequest { return signed(t, ecKey.ID, p256, t0, body) }, latchkey.CodeValid},
		{"no body", func() *verify.SignedRequest { return signed(t, edKey.ID, ed, t0, nil) }, latchkey.CodeValid},
		{"no signature", func() *verify.SignedRequest { return &verify.SignedRequest{} }, latchkey.CodeMissing},
		{"garbled Signature-Input", func() *verify.SignedRequest {
			r := signed(t, edKey.ID, ed, t0, body)
			r.SignatureInput = []string{"sig1=(((("}
			return r
		}, latchkey.CodeMalformed},
		{"unknown keyid", func() *verify.SignedRequest { return signed(t, newKey(t, "acme", "x").ID, ed, t0, body) }, latchkey.CodeNotFound},
		{"a bearer key's ID", func() *verify.SignedRequest { return signed(t, bearer.ID, ed, t0, body) }, latchkey.CodeNotFound},
		{"signed by another key", func() *verify.SignedRequest { return signed(t, edKey.ID, newEd25519(t), t0, body) }, latchkey.CodeSignatureInvalid},
		{"wrong algorithm", func() *verify.SignedRequest { return signed(t, ecKey.ID, ed, t0, body) }, latchkey.CodeAlgorithmMismatch},
		{"older than the window", func() *verify.SignedRequest {
			return signed(t, edKey.ID, ed, t0.Add(-httpsig.DefaultWindow-httpsig.DefaultSkew-time.Second), body)
		}, latchkey.CodeSignatureExpired},
		{"within the skew", func() *verify.SignedRequest { return signed(t, edKey.ID, ed, t0.Add(httpsig.DefaultSkew), body) }, latchkey.CodeValid},
		{"from the future", func() *verify.SignedRequest {
			return signed(t, edKey.ID, ed, t0.Add(httpsig.DefaultSkew+time.Second), body)
		}, latchkey.CodeSignatureFromFuture},
		{"body changed", func() *verify.SignedRequest {
			r := signed(t, edKey.ID, ed, t0, body)
			r.HTTP.Body = []byte(`{"parcel":2}`)
			return r
		}, latchkey.CodeDigestMismatch},
		{"path changed", func() *verify.SignedRequest {
			r := signed(t, edKey.ID, ed, t0, body)
			r.HTTP.Path = "/admin"
			return r
		}, latchkey.CodeSignatureInvalid},
		{"body added by a middlebox", func() *verify.SignedRequest {
			r := signed(t, edKey.ID, ed, t0, nil)
			r.HTTP.Body, r.HTTP.HasBody = body, true
			return r
		}, latchkey.CodeComponentMissing},
		{"component added by a middlebox", func() *verify.SignedRequest {
			r := signed(t, edKey.ID, ed, t0, body)
			r.SignatureInput = []string{strings.Replace(r.SignatureInput[0], `"content-digest"`, `"content-digest" "x-added"`, 1)}
			r.HTTP.Header.Set("X-Added", "1")
			return r
		}, latchkey.CodeSignatureInvalid},
		{"no nonce", func() *verify.SignedRequest {
			r := signed(t, edKey.ID, ed, t0, body)
			in := r.SignatureInput[0]
			i := strings.Index(in, ";nonce=")
			j := strings.Index(in, ";keyid=")
			r.SignatureInput = []string{in[:i] + in[j:]}
			return r
		}, latchkey.CodeComponentMissing},
		{"inactive key, valid signature", func() *verify.SignedRequest { return signed(t, offKey.ID, ed, t0, body) }, latchkey.CodeInactive},
	}
	ix := verify.NewIndex()
	for _, k := range []*latchkey.AccessKey{edKey, ecKey, offKey, bearer.AccessKey} {
		ix.Put(k)
	}
	v := verify.New(ix, nil)
	v.Now = func() time.Time { return t0 }
	v.Signatures = &httpsig.Policy{Nonces: &httpsig.NonceCache{Now: v.Now}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := v.VerifySigned(t.Context(), tt.req())
			if res.Code != tt.want {
				t.Fatalf("code %s (%v), want %s", res.Code, res.Err, tt.want)
			}
		})
	}
}

func TestVerifySignedReplayAndDeactivation(t *testing.T) {
	ed := newEd25519(t)
	k := signingKey(t, "billing", ed)
	ix := verify.NewIndex()
	ix.Put(k)
	v := verify.New(ix, nil)
	v.Now = func() time.Time { return t0 }
	v.Signatures = &httpsig.Policy{Nonces: &httpsig.NonceCache{Now: v.Now}}
	req := signed(t, k.ID, ed, t0, []byte("x"))
	if res := v.VerifySigned(t.Context(), req); res.Code != latchkey.CodeValid {
		t.Fatalf("first use: %s (%v)", res.Code, res.Err)
	}
	if res := v.VerifySigned(t.Context(), req); res.Code != latchkey.CodeNonceReplayed {
		t.Fatalf("replay: %s, want NONCE_REPLAYED", res.Code)
	}
	// Deactivated mid-stream: the next signed request is refused.
	off := *k
	off.Status = latchkey.StatusInactive
	ix.Put(&off)
	if res := v.VerifySigned(t.Context(), signed(t, k.ID, ed, t0, []byte("y"))); res.Code != latchkey.CodeInactive {
		t.Fatalf("after deactivation: %s, want INACTIVE", res.Code)
	}
}

// TestBearerSecretNeverFindsSigningKey: a signing key has no secret; the
// bearer path cannot reach it by any secret, nor by its key ID.
func TestBearerSecretNeverFindsSigningKey(t *testing.T) {
	k := signingKey(t, "billing", newEd25519(t))
	ix := verify.NewIndex()
	ix.Put(k)
	v := verify.New(ix, nil)
	res := v.Verify(&verify.Request{Secret: newSecret(t), AccessKeyID: k.ID})
	if res.Code != latchkey.CodeNotFound || res.Entry.Found() {
		t.Fatalf("bearer verify of a signing key: %s, entry %v", res.Code, res.Entry)
	}
}
