package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	lkclient "github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/gatewaytest"
)

// interopDir holds the node project that runs the npm package
// http-message-signatures; .ci/run installs it with npm ci.
const interopDir = "../../.ci/httpsig-interop"

// npmSigner runs interop.mjs under node: requests signed and verified by
// code no one on this project wrote.
type npmSigner struct{ node, script string }

// requireInterop finds node and the installed npm package, or skips; with
// CI set, a missing one fails the test.
func requireInterop(t *testing.T) npmSigner {
	t.Helper()
	node, err := exec.LookPath("node")
	pkg := filepath.Join(interopDir, "node_modules", "http-message-signatures", "package.json")
	_, pkgErr := os.Stat(pkg)
	if err != nil || pkgErr != nil {
		msg := "node, or the npm package http-message-signatures (npm ci --prefix .ci/httpsig-interop), is missing"
		if os.Getenv("CI") != "" {
			t.Fatalf("%s: CI is set and .ci/run installs both", msg)
		}
		t.Skip(msg)
	}
	return npmSigner{node: node, script: filepath.Join(interopDir, "interop.mjs")}
}

func (n npmSigner) run(t *testing.T, in map[string]any, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), n.node, n.script)
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("node interop.mjs %s: %v\n%s", in["op"], err, stderr.String())
	}
	if err := json.Unmarshal(got, out); err != nil {
		t.Fatalf("node interop.mjs %s answered %s: %v", in["op"], got, err)
	}
}

func privatePEM(t *testing.T, k crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// sign has the npm package sign a request for k and returns it, ready to
// send (its body not yet set).
func (n npmSigner) sign(t *testing.T, k gatewaytest.SigningKey, method, url string, body *string) *http.Request {
	t.Helper()
	in := map[string]any{"op": "sign", "private_key_pem": privatePEM(t, k.Key), "alg": k.Algorithm, "keyid": k.ID,
		"method": method, "url": url, "headers": map[string]string{"accept": "application/json"}}
	if body != nil {
		in["body"] = *body
	}
	var out struct{ Headers map[string]any }
	n.run(t, in, &out)
	r, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for h, v := range out.Headers {
		switch v := v.(type) {
		case string:
			r.Header.Set(h, v)
		case []any:
			for _, s := range v {
				r.Header.Add(h, s.(string))
			}
		}
	}
	if r.Header.Get("Signature-Input") == "" || r.Header.Get("Signature") == "" {
		t.Fatalf("the npm package signed nothing: %v", out.Headers)
	}
	return r
}

// TestHTTPSigInterop shows interoperability with the npm package
// http-message-signatures, run under node: (a) requests it signs with
// Ed25519 and ECDSA P-256 keys made at run time are accepted through the
// reverse proxy and through nginx forward auth, and refused with the right
// code when tampered with or replayed; (b) requests the Go SDK's
// SigningTransport signs verify with the npm package's verifier, and a
// tampered one does not.
func TestHTTPSigInterop(t *testing.T) {
	npm := requireInterop(t)
	api, calls := recordingAPI(t)
	srv, c := adminClient(t, "--trusted-proxies", "127.0.0.1", "--proxy-upstream", api.URL, "--proxy-addr", "127.0.0.1:0")
	proxyURL := srv.waitFor(proxyRE)
	nginx := "http://" + startNginx(t, strings.TrimPrefix(srv.endpoint, "http://"), strings.TrimPrefix(api.URL, "http://"))
	keys := serverKeys{c}

	for _, alg := range []string{latchkey.AlgEd25519, latchkey.AlgECDSAP256SHA} {
		k := keys.SigningKey(t, "npm-"+alg, alg)
		t.Run("npm signs/"+alg, func(t *testing.T) {
			for _, gw := range []struct{ name, base, server string }{{"proxy", proxyURL, ""}, {"nginx", nginx, "nginx"}} {
				body := `{"parcel":42}`
				send := func(t *testing.T, r *http.Request, b *string) latchkey.Code {
					t.Helper()
					var raw []byte
					if b != nil {
						raw = []byte(*b)
					}
					return sendThrough(t, r, raw, calls, gw.server)
				}
				t.Run(gw.name, func(t *testing.T) {
					get := npm.sign(t, k, "GET", gw.base+"/orders/7?page=2", nil)
					if got := send(t, get, nil); got != latchkey.CodeValid {
						t.Errorf("GET signed by the npm package: %s", got)
					}
					if got := send(t, get, nil); got != latchkey.CodeNonceReplayed {
						t.Errorf("the same GET again: %s, want NONCE_REPLAYED", got)
					}
					post := npm.sign(t, k, "POST", gw.base+"/orders", &body)
					if got := send(t, post, &body); got != latchkey.CodeValid {
						t.Errorf("POST signed by the npm package: %s", got)
					}
					moved := npm.sign(t, k, "GET", gw.base+"/orders/7", nil)
					moved.URL.Path = "/orders/8"
					if got := send(t, moved, nil); got != latchkey.CodeSignatureInvalid {
						t.Errorf("path changed: %s, want SIGNATURE_INVALID", got)
					}
					changed := npm.sign(t, k, "POST", gw.base+"/orders", &body)
					other := `{"parcel":43}`
					want := latchkey.CodeDigestMismatch
					if gw.name == "nginx" { // forward auth does not see the body
						want = latchkey.CodeValid
					}
					if got := send(t, changed, &other); got != want {
						t.Errorf("body changed under its digest: %s, want %s", got, want)
					}
				})
			}
		})
	}

	t.Run("npm verifies the Go SDK", func(t *testing.T) {
		got := make(chan *http.Request, 1)
		stand := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			got <- r
		}))
		t.Cleanup(stand.Close)
		for _, alg := range []string{latchkey.AlgEd25519, latchkey.AlgECDSAP256SHA} {
			t.Run(alg, func(t *testing.T) {
				priv := gatewaytest.NewKeyPair(t, alg)
				hc := &http.Client{Transport: &lkclient.SigningTransport{KeyID: "LKIAINTEROPINTEROP00", Key: priv}}
				resp, err := hc.Post(stand.URL+"/shipments?page=2", "application/json", strings.NewReader(`{"parcel":1}`))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				r := <-got
				headers := map[string]string{}
				for h := range r.Header {
					headers[strings.ToLower(h)] = strings.Join(r.Header.Values(h), ", ")
				}
				verify := func(method, url string) bool {
					var out struct {
						Verified bool
						Error    string
					}
					npm.run(t, map[string]any{"op": "verify", "public_key_pem": gatewaytest.PublicKeyPEM(t, priv.Public()), "alg": alg,
						"keyid": "LKIAINTEROPINTEROP00", "method": method, "url": url, "headers": headers}, &out)
					return out.Verified
				}
				if !verify("POST", stand.URL+"/shipments?page=2") {
					t.Error("the npm package does not verify the Go SDK's signature")
				}
				if verify("POST", stand.URL+"/shipments?page=3") {
					t.Error("the npm package verifies the Go SDK's signature for another query")
				}
				if verify("PUT", stand.URL+"/shipments?page=2") {
					t.Error("the npm package verifies the Go SDK's signature for another method")
				}
			})
		}
	})
}
