package latchkey_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
)

func pemOf(t *testing.T, typ string, der []byte, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func TestParsePublicKey(t *testing.T) {
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	spki := func(k any) string {
		der, err := x509.MarshalPKIXPublicKey(k)
		return pemOf(t, "PUBLIC KEY", der, err)
	}
	pkcs8 := func(k any) string {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		return pemOf(t, "PRIVATE KEY", der, err)
	}
	tests := []struct {
		name, in, alg, errHas string
	}{
		{"ed25519", spki(edPub), latchkey.AlgEd25519, ""},
		{"p-256", spki(p256.Public()), latchkey.AlgECDSAP256SHA, ""},
		{"p-256 with spaces around", "\n  " + spki(p256.Public()) + "\n\n", latchkey.AlgECDSAP256SHA, ""},
		{"ed25519 private key", pkcs8(edPriv), "", "holds a private key"},
		{"p-256 private key", pkcs8(p256), "", "holds a private key"},
		{"p-384", spki(p384.Public()), "", "only P-256"},
		{"rsa", spki(rsaKey.Public()), "", "Ed25519 or ECDSA P-256"},
		{"not pem", "ssh-ed25519 AAAA", "", "not PEM"},
		{"two blocks", spki(edPub) + spki(edPub), "", "exactly one"},
		{"certificate", pemOf(t, "CERTIFICATE", []byte{1}, nil), "", "exactly one PEM PUBLIC KEY"},
		{"garbage in the block", pemOf(t, "PUBLIC KEY", []byte("nope"), nil), "", "not a valid SubjectPublicKeyInfo"},
		{"too long", strings.Repeat("A", latchkey.MaxPublicKeyLen+1), "", "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := latchkey.ParsePublicKey(tt.in)
			if tt.errHas != "" {
				if latchkey.ErrorCode(err) != latchkey.EINVALID || !strings.Contains(latchkey.ErrorMessage(err), tt.errHas) {
					t.Fatalf("err = %v, want EINVALID saying %q", err, tt.errHas)
				}
				if strings.Contains(err.Error(), "PRIVATE KEY-----") {
					t.Fatal("the error repeats the private key")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Algorithm != tt.alg || !strings.HasPrefix(k.Fingerprint, "SHA256:") || len(k.Fingerprint) != 7+43 {
				t.Fatalf("got %s %s", k.Algorithm, k.Fingerprint)
			}
			again, err := latchkey.ParsePublicKey(k.PEM)
			if err != nil || again.Fingerprint != k.Fingerprint {
				t.Fatalf("PEM does not round-trip: %v", err)
			}
		})
	}
}
