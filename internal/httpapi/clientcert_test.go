package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/testcert"
)

// TestClientCert: where a call's client certificate is read from, and
// that headers count from trusted proxies only.
func TestClientCert(t *testing.T) {
	ca := testcert.NewCA(t, "clients")
	a, b := ca.Issue(t, "a"), ca.Issue(t, "b")
	ta, tb := latchkey.ThumbprintOf(a.DER), latchkey.ThumbprintOf(b.DER)
	hexA := hex.EncodeToString(ta[:])
	parsedB, err := x509.ParseCertificate(b.DER)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}}
	tests := []struct {
		name   string
		from   string
		header map[string][]string
		tls    bool // the connection presented b
		ctx    bool // a surface recorded b (ext_authz)
		want   *latchkey.CertThumbprint
	}{
		{"nothing", "10.0.0.1", nil, false, false, nil},
		{"own TLS", "192.0.2.7", nil, true, false, &tb},
		{"X-Client-Cert from a trusted proxy", "10.0.0.1", map[string][]string{"X-Client-Cert": {url.PathEscape(string(a.PEM))}}, false, false, &ta},
		{"X-Client-Cert, query-escaped", "10.0.0.1", map[string][]string{"X-Client-Cert": {url.QueryEscape(string(a.PEM))}}, false, false, nil},
		{"X-Client-Cert from an untrusted peer", "192.0.2.7", map[string][]string{"X-Client-Cert": {url.PathEscape(string(a.PEM))}}, false, false, nil},
		{"X-Client-Cert from an untrusted peer, own TLS", "192.0.2.7", map[string][]string{"X-Client-Cert": {url.PathEscape(string(a.PEM))}}, true, false, &tb},
		{"X-Client-Cert twice", "10.0.0.1", map[string][]string{"X-Client-Cert": {url.PathEscape(string(a.PEM)), url.PathEscape(string(a.PEM))}}, false, false, nil},
		{"X-Client-Cert not a certificate", "10.0.0.1", map[string][]string{"X-Client-Cert": {"hello"}}, true, false, nil},
		{"trusted header wins over TLS", "10.0.0.1", map[string][]string{"X-Client-Cert": {url.PathEscape(string(a.PEM))}}, true, false, &ta},
		{"XFCC Hash", "10.0.0.1", map[string][]string{"X-Forwarded-Client-Cert": {`By=spiffe://x;Hash=` + hexA + `;Subject="CN=a,O=b;c"`}}, false, false, &ta},
		{"XFCC last element", "10.0.0.1", map[string][]string{"X-Forwarded-Client-Cert": {"Hash=" + hex.EncodeToString(tb[:]) + `;Subject="x,y",Hash=` + hexA}}, false, false, &ta},
		{"XFCC without Hash", "10.0.0.1", map[string][]string{"X-Forwarded-Client-Cert": {`By=spiffe://x;Subject="CN=a"`}}, false, false, nil},
		{"XFCC Hash in base64url", "10.0.0.1", map[string][]string{"X-Forwarded-Client-Cert": {"Hash=" + ta.String()}}, false, false, nil},
		{"XFCC from an untrusted peer", "192.0.2.7", map[string][]string{"X-Forwarded-Client-Cert": {"Hash=" + hexA}}, false, false, nil},
		{"both headers", "10.0.0.1", map[string][]string{"X-Client-Cert": {url.PathEscape(string(a.PEM))}, "X-Forwarded-Client-Cert": {"Hash=" + hex.EncodeToString(tb[:])}}, false, false, &ta},
		{"surface's own record wins", "10.0.0.1", map[string][]string{"X-Client-Cert": {url.PathEscape(string(a.PEM))}}, false, true, &tb},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/authorize", nil)
			r.RemoteAddr = tc.from + ":4000"
			for k, vs := range tc.header {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			if tc.tls {
				r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{parsedB}}
			}
			if tc.ctx {
				r = r.WithContext(WithClientCert(context.Background(), tb))
			}
			got, ok := s.ClientCert(r)
			if ok != (tc.want != nil) || (ok && got != *tc.want) {
				t.Errorf("ClientCert = %s, %v; want %v", got, ok, tc.want)
			}
			h := r.Header.Clone()
			s.DeleteUntrustedCertHeaders(r, h)
			stripped := h.Get("X-Client-Cert") == "" && h.Get("X-Forwarded-Client-Cert") == ""
			if trusted := tc.from == "10.0.0.1"; stripped == trusted && len(tc.header) > 0 {
				t.Errorf("headers from %s stripped: %v", tc.from, stripped)
			}
		})
	}
	if sha256.Size != len(ta) {
		t.Fatal("thumbprint size")
	}
}
