package main

import (
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/testcert"
)

// TestCertificateBindingNginx: real nginx terminates TLS with
// ssl_verify_client optional_no_ca and passes $ssl_client_escaped_cert to
// latchkey in X-Client-Cert (docs/integrations/nginx-mtls.conf). A key
// bound to a certificate passes with it, and is CERTIFICATE_MISMATCH with
// another certificate, none, or an X-Client-Cert the client wrote itself;
// an unbound key is unaffected. Straight to latchkey, X-Client-Cert is
// believed from the trusted proxy's address only.
func TestCertificateBindingNginx(t *testing.T) {
	srv, c := adminClient(t, "--trusted-proxies", "127.0.0.1")
	ca := testcert.NewCA(t, "clients")
	right, wrong := ca.Issue(t, "batch"), ca.Issue(t, "someone-else")
	c.do("POST", "/v1/applications", map[string]any{"name": "batch"}, 201)
	bound := c.do("POST", "/v1/applications/batch/access-keys", map[string]any{"certificate": string(right.PEM)}, 201)
	boundSecret := bound["secret_access_key"].(string)
	if got := bound["certificate_thumbprint"]; got == nil || got == "" {
		t.Fatalf("the created key shows no certificate_thumbprint: %v", bound)
	}
	unbound := c.do("POST", "/v1/applications/batch/access-keys", map[string]any{}, 201)["secret_access_key"].(string)

	// nginx's own server certificate, from the same run-time CA.
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	server := ca.Issue(t, "127.0.0.1")
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	if err := os.WriteFile(certFile, server.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, server.KeyPEM(t), 0o644); err != nil {
		t.Fatal(err)
	}
	api, calls := recordingAPI(t)
	listen := startNginxWith(t, "../../docs/integrations/nginx-mtls.conf", map[string]string{
		"LATCHKEY": strings.TrimPrefix(srv.endpoint, "http://"), "UPSTREAM": strings.TrimPrefix(api.URL, "http://"),
		"TLS_CERT": certFile, "TLS_KEY": keyFile})

	client := func(cert *testcert.ClientCert) *http.Client {
		cfg := &tls.Config{InsecureSkipVerify: true} // nginx's certificate is not what is tested
		if cert != nil {
			cfg.Certificates = []tls.Certificate{cert.TLS}
		}
		return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	}
	escaped := url.PathEscape(string(right.PEM))
	tests := []struct {
		name   string
		cert   *testcert.ClientCert
		secret string
		spoof  bool
		status int
		code   string
	}{
		{"bound key, its certificate", &right, boundSecret, false, 200, ""},
		{"bound key, another certificate", &wrong, boundSecret, false, 401, "CERTIFICATE_MISMATCH"},
		{"bound key, no certificate", nil, boundSecret, false, 401, "CERTIFICATE_MISMATCH"},
		{"bound key, spoofed X-Client-Cert", nil, boundSecret, true, 401, "CERTIFICATE_MISMATCH"},
		{"bound key, spoofed X-Client-Cert beside another certificate", &wrong, boundSecret, true, 401, "CERTIFICATE_MISMATCH"},
		{"unbound key, no certificate", nil, unbound, false, 200, ""},
		{"unbound key, a certificate", &wrong, unbound, false, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := calls()
			req, _ := http.NewRequest("GET", "https://"+listen+"/orders/7", nil)
			req.Header.Set("Authorization", "Bearer "+tc.secret)
			if tc.spoof {
				req.Header.Set("X-Client-Cert", escaped)
			}
			resp, err := client(tc.cert).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status != 200 {
				checkRefusal(t, resp, body, tc.code)
				if calls() != before {
					t.Error("a refused call reached the API")
				}
				return
			}
			var up upstreamCall
			if err := json.Unmarshal(body, &up); err != nil {
				t.Fatal(err)
			}
			if v := up.Header.Get("X-Client-Cert"); v != "" {
				t.Error("the API got the X-Client-Cert header")
			}
		})
	}

	// POST /v1/verify: the caller says which certificate the call had.
	tr := latchkey.ThumbprintOf(right.DER).String()
	tw := latchkey.ThumbprintOf(wrong.DER)
	for _, tc := range []struct {
		thumb, code string
	}{{tr, "VALID"}, {hex.EncodeToString(tw[:]), "CERTIFICATE_MISMATCH"}, {"", "CERTIFICATE_MISMATCH"}} {
		body := map[string]any{"key": boundSecret}
		if tc.thumb != "" {
			body["client_certificate_thumbprint"] = tc.thumb
		}
		if got := c.do("POST", "/v1/verify", body, 200)["code"]; got != tc.code {
			t.Errorf("/v1/verify with thumbprint %q: %v, want %s", tc.thumb, got, tc.code)
		}
	}
	c.do("POST", "/v1/verify", map[string]any{"key": boundSecret, "client_certificate_thumbprint": "abc"}, 400)
	c.do("POST", "/v1/applications/batch/access-keys", map[string]any{"certificate_thumbprint": "abc"}, 400)

	// Straight to latchkey's forward-auth endpoint: the header counts from
	// the trusted proxy's address, and not from any other.
	for _, tc := range []struct {
		from   string
		status int
	}{{"127.0.0.1", 200}, {"127.0.0.2", 401}} {
		req, _ := http.NewRequest("GET", srv.endpoint+"/v1/authorize", nil)
		req.Header.Set("Authorization", "Bearer "+boundSecret)
		req.Header.Set("X-Client-Cert", escaped)
		resp, err := clientFrom(tc.from).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("X-Client-Cert from %s: status %d, want %d: %s", tc.from, resp.StatusCode, tc.status, body)
		}
		if tc.status == 401 && resp.Header.Get("X-Latchkey-Code") != "CERTIFICATE_MISMATCH" {
			t.Errorf("X-Client-Cert from %s: code %q", tc.from, resp.Header.Get("X-Latchkey-Code"))
		}
	}
}
