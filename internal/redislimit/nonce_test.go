package redislimit_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpsig"
	"github.com/latchkey/latchkey/internal/redislimit"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
)

// TestReplayRefusedAcrossReplicas: two replicas, each with its own index,
// verifier and connection, share one Redis (real, 127.0.0.1:6379). A
// signed request accepted by one is NONCE_REPLAYED at the other.
func TestReplayRefusedAcrossReplicas(t *testing.T) {
	prefix := testPrefix(t)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := keyformat.NewID()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := latchkey.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	k := &latchkey.AccessKey{ID: id, Account: "acme", Application: "billing", Status: latchkey.StatusActive,
		KeyType: latchkey.KeyTypeSigning, PublicKey: pub, SecretDigest: latchkey.SigningDigest(id)}
	replica := func() *verify.Verifier {
		ix := verify.NewIndex()
		ix.Put(k)
		v := verify.New(ix, nil)
		v.Signatures = &httpsig.Policy{Nonces: newLimiter(t, redislimit.Options{Prefix: prefix})}
		return v
	}
	a, b := replica(), replica()

	m := httpsig.Message{Method: "GET", Scheme: "https", Authority: "api.example.com", Path: "/shipments", Header: http.Header{}}
	s := httpsig.Signer{KeyID: id, Key: priv, Now: func() time.Time { return now }}
	if err := s.Sign(&m, nil); err != nil {
		t.Fatal(err)
	}
	req := func() *verify.SignedRequest {
		return &verify.SignedRequest{SignatureInput: m.Header.Values("Signature-Input"), Signature: m.Header.Values("Signature"),
			HTTP: httpsig.Request{Message: m}}
	}
	if res := a.VerifySigned(t.Context(), req()); res.Code != latchkey.CodeValid {
		t.Fatalf("replica A, first use: %s (%v)", res.Code, res.Err)
	}
	if res := b.VerifySigned(t.Context(), req()); res.Code != latchkey.CodeNonceReplayed {
		t.Fatalf("replica B, the same request: %s, want NONCE_REPLAYED", res.Code)
	}
	if res := a.VerifySigned(t.Context(), req()); res.Code != latchkey.CodeNonceReplayed {
		t.Fatalf("replica A, again: %s, want NONCE_REPLAYED", res.Code)
	}
}

// TestNonceFailsClosed: with Redis unreachable, a signed request is
// refused, never accepted unchecked.
func TestNonceFailsClosed(t *testing.T) {
	l, err := redislimit.Open("redis://127.0.0.1:1/0", redislimit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ok, err := l.Claim(t.Context(), "k n", time.Minute)
	if ok || err == nil {
		t.Fatalf("Claim with Redis down = %v, %v; want false and an error", ok, err)
	}
}
