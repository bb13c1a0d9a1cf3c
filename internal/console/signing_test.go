package console

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
)

// TestCreateSigningKeyFromPastedPublicKey creates signing keys through the
// console's form from public keys made at run time: the key is a signing
// key with the pasted key's fingerprint, the page shows no secret and no
// credentials file, and a bad paste is refused with a message and no key.
func TestCreateSigningKeyFromPastedPublicKey(t *testing.T) {
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(pub any) string {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	cases := []struct {
		name, paste, alg string
		created          bool
	}{
		{"ed25519", pemOf(edPriv.Public()), "ed25519", true},
		{"ecdsa p-256, with blank lines around", "\n\n" + pemOf(&ecPriv.PublicKey) + "\n", "ecdsa-p256-sha256", true},
		{"not a key", "hello", "", false},
		{"a private key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(t, edPriv)})), "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			if _, err := e.svc.CreateApplication(ctx, e.op, "default", "web", "", nil); err != nil {
				t.Fatal(err)
			}
			b := e.browser()
			b.mustSignIn(e.opID, e.opSecret)
			page := b.get("/console/applications/web")
			if !strings.Contains(page.body, `name="public_key"`) {
				t.Fatal("the create-key form has no public key field")
			}
			form := url.Values{"csrf": {formValue(t, csrfRE, page.body)}, "once": {formValue(t, onceRE, page.body)},
				"description": {"signer"}, "public_key": {tc.paste}}
			p := b.post("/console/applications/web/keys", form)
			keys, _, err := e.svc.ListAccessKeys(ctx, e.op, latchkey.AccessKeyFilter{Account: "default", Application: "web"})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.created {
				if p.status != http.StatusSeeOther || len(keys) != 0 {
					t.Fatalf("a bad paste: status %d, %d keys; want 303 and none", p.status, len(keys))
				}
				if got := b.get(p.location()); !strings.Contains(strings.ToLower(got.body), "public key") {
					t.Errorf("the refusal does not name the public key:\n%s", got.body)
				}
				return
			}
			if p.status != http.StatusCreated || len(keys) != 1 {
				t.Fatalf("create: status %d, %d keys\n%s", p.status, len(keys), p.body)
			}
			k := keys[0]
			if k.PublicKey == nil || k.PublicKey.Algorithm != tc.alg {
				t.Fatalf("the key made is not a %s signing key: %+v", tc.alg, k.PublicKey)
			}
			for _, want := range []string{k.ID, k.PublicKey.Fingerprint, "has no secret"} {
				if !strings.Contains(html.UnescapeString(p.body), want) {
					t.Errorf("the page lacks %q", want)
				}
			}
			if regexp.MustCompile(`lksk_|latchkey_secret_access_key|LATCHKEY_SECRET_ACCESS_KEY|id="new-secret"`).MatchString(p.body) {
				t.Error("a signing key's page shows a secret or a credentials file")
			}
		})
	}
}

func mustPKCS8(t *testing.T, k any) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
