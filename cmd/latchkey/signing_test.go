package main

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	lkclient "github.com/latchkey/latchkey/client"
)

// TestSignedRequestsOverHTTP signs requests with the Go SDK's
// SigningTransport, captures them at a stand-in API, and has a real
// server process judge them through POST /v1/verify: valid once, a replay
// refused, a changed body refused, a key deactivated mid-stream refused.
func TestSignedRequestsOverHTTP(t *testing.T) {
	_, c := adminClient(t)
	c.do("POST", "/v1/applications", map[string]any{"name": "signer"}, 201)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	k := c.do("POST", "/v1/applications/signer/access-keys", map[string]any{
		"public_key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}, 201)
	if k["key_type"] != "signing" || k["secret_access_key"] != nil {
		t.Fatalf("created: %v", k)
	}
	id := k["access_key_id"].(string)

	// The stand-in API keeps what it received, as a gateway would see it.
	type seen struct {
		r    *http.Request
		body []byte
	}
	got := make(chan seen, 1)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r, b}
	}))
	t.Cleanup(api.Close)
	hc := &http.Client{Transport: &lkclient.SigningTransport{KeyID: id, Key: crypto.Signer(priv)}}
	send := func(body string) seen {
		t.Helper()
		resp, err := hc.Post(api.URL+"/shipments?page=2", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return <-got
	}
	verifyOf := func(s seen, body []byte) map[string]any {
		t.Helper()
		return c.do("POST", "/v1/verify", map[string]any{
			"signature_input": s.r.Header.Get("Signature-Input"),
			"signature":       s.r.Header.Get("Signature"),
			"method":          s.r.Method,
			"path":            s.r.URL.RequestURI(),
			"authority":       s.r.Host,
			"scheme":          "http",
			"headers":         map[string]string{"content-digest": s.r.Header.Get("Content-Digest")},
			"body_base64":     base64.StdEncoding.EncodeToString(body),
			"ip":              "192.0.2.10",
		}, 200)
	}
	first := send(`{"parcel":1}`)
	if v := verifyOf(first, first.body); v["code"] != "VALID" || v["access_key_id"] != id || v["application"] != "signer" {
		t.Fatalf("signed request: %v", v)
	}
	if v := verifyOf(first, first.body); v["code"] != "NONCE_REPLAYED" {
		t.Fatalf("replayed: %v", v)
	}
	second := send(`{"parcel":2}`)
	if v := verifyOf(second, bytes.Replace(second.body, []byte("2"), []byte("9"), 1)); v["code"] != "DIGEST_MISMATCH" {
		t.Fatalf("changed body: %v", v)
	}
	c.do("PATCH", "/v1/access-keys/"+id, map[string]string{"status": "Inactive"}, 200)
	third := send(`{"parcel":3}`)
	if v := verifyOf(third, third.body); v["code"] != "INACTIVE" {
		t.Fatalf("after deactivation: %v", v)
	}
	key := c.do("GET", "/v1/access-keys/"+id, nil, 200)
	if pk, _ := key["public_key"].(map[string]any); pk["algorithm"] != "ed25519" || !strings.HasPrefix(pk["fingerprint"].(string), "SHA256:") {
		t.Fatalf("key: %v", key)
	}
	audit := c.do("GET", "/v1/audit-events?access_key_id="+id, nil, 200)
	if n := len(audit["audit_events"].([]any)); n != 2 {
		t.Errorf("audit events for the key = %d, want 2 (create, deactivate)", n)
	}
}
