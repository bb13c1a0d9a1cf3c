package proxy_test

import (
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/gatewaytest"
	"github.com/latchkey/latchkey/internal/proxy"
	"github.com/latchkey/latchkey/internal/testcert"
)

// TestCertificateBinding: the proxy with TLS client authentication and
// real client certificates made at run time. A key bound to a
// certificate passes only with it; an unbound key is unaffected; an
// X-Client-Cert header from an untrusted peer is ignored and never
// reaches the upstream.
func TestCertificateBinding(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{}) // no trusted proxy
	ca := testcert.NewCA(t, "clients")
	right, wrong := ca.Issue(t, "billing-batch"), ca.Issue(t, "someone-else")

	bound := env.Key(t, "billing", nil)
	pemCert := string(right.PEM)
	if _, err := env.Service.UpdateAccessKey(t.Context(), env.Operator, bound.ID, latchkey.AccessKeyUpdate{Certificate: &pemCert}); err != nil {
		t.Fatal(err)
	}
	unbound := env.Key(t, "billing", nil)

	up := newEchoUpstream(t)
	p, err := proxy.New(proxy.Config{Upstream: mustURL(t, up.srv.URL), API: env.API})
	if err != nil {
		t.Fatal(err)
	}
	ps := httptest.NewUnstartedServer(p)
	ps.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.Pool()}
	ps.StartTLS()
	t.Cleanup(ps.Close)

	client := func(c *testcert.ClientCert) *http.Client {
		tr := ps.Client().Transport.(*http.Transport).Clone()
		if c != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{c.TLS}
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	escaped := url.PathEscape(string(right.PEM))
	tests := []struct {
		name   string
		cert   *testcert.ClientCert
		secret string
		header string // X-Client-Cert, sent by an untrusted client
		status int
		code   latchkey.Code
	}{
		{"bound key, its certificate", &right, bound.Secret, "", 200, latchkey.CodeValid},
		{"bound key, another certificate", &wrong, bound.Secret, "", 401, latchkey.CodeCertificateMismatch},
		{"bound key, no certificate", nil, bound.Secret, "", 401, latchkey.CodeCertificateMismatch},
		{"bound key, spoofed header", nil, bound.Secret, escaped, 401, latchkey.CodeCertificateMismatch},
		{"bound key, spoofed header beside another certificate", &wrong, bound.Secret, escaped, 401, latchkey.CodeCertificateMismatch},
		{"unbound key, no certificate", nil, unbound.Secret, "", 200, latchkey.CodeValid},
		{"unbound key, a certificate", &wrong, unbound.Secret, "", 200, latchkey.CodeValid},
		{"unbound key, spoofed header stripped", nil, unbound.Secret, escaped, 200, latchkey.CodeValid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := up.count()
			req, _ := http.NewRequest(http.MethodGet, ps.URL+"/orders", nil)
			req.Header.Set("Authorization", "Bearer "+tc.secret)
			if tc.header != "" {
				req.Header.Set("X-Client-Cert", tc.header)
				req.Header.Set("X-Forwarded-Client-Cert", "Hash="+hexOf(right.DER))
			}
			resp, err := client(tc.cert).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got := latchkey.Code(resp.Header.Get("X-Latchkey-Code")); resp.StatusCode != tc.status || (tc.status != 200 && got != tc.code) {
				t.Fatalf("status %d code %q, want %d %s", resp.StatusCode, resp.Header.Get("X-Latchkey-Code"), tc.status, tc.code)
			}
			if tc.status != 200 {
				if up.count() != before {
					t.Error("a refused call reached the upstream")
				}
				return
			}
			var s seen
			if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
				t.Fatal(err)
			}
			for _, h := range []string{"X-Client-Cert", "X-Forwarded-Client-Cert"} {
				if v := s.Header.Get(h); v != "" {
					t.Errorf("the upstream got %s from an untrusted client", h)
				}
			}
		})
	}
}

func hexOf(der []byte) string {
	t := latchkey.ThumbprintOf(der)
	return hex.EncodeToString(t[:])
}
