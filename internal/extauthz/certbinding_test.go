package extauthz_test

import (
	"encoding/hex"
	"net/url"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/gatewaytest"
	"github.com/latchkey/latchkey/internal/testcert"
	"google.golang.org/grpc/codes"
)

// TestCheckCertificateBinding: ext_authz judges a key bound to a client
// certificate by the attribute context's source certificate, or by
// x-forwarded-client-cert from a trusted peer only.
func TestCheckCertificateBinding(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{TrustedProxies: []string{"10.0.0.0/8"}})
	ca := testcert.NewCA(t, "clients")
	right, wrong := ca.Issue(t, "right"), ca.Issue(t, "wrong")
	bound := env.Key(t, "web", nil)
	tp := latchkey.ThumbprintOf(right.DER).String()
	if _, err := env.Service.UpdateAccessKey(t.Context(), env.Operator, bound.ID, latchkey.AccessKeyUpdate{CertificateThumbprint: &tp}); err != nil {
		t.Fatal(err)
	}
	unbound := env.Key(t, "web", nil)
	th := latchkey.ThumbprintOf(right.DER)
	xfcc := "Hash=" + hex.EncodeToString(th[:])
	c := dial(t, env)
	tests := []struct {
		name     string
		secret   string
		source   string
		cert     string // the source certificate Envoy reports
		headers  map[string]string
		wantCode string // "" = allowed
	}{
		{"source certificate matches", bound.Secret, "", url.PathEscape(string(right.PEM)), nil, ""},
		{"another source certificate", bound.Secret, "", url.PathEscape(string(wrong.PEM)), nil, "CERTIFICATE_MISMATCH"},
		{"no certificate", bound.Secret, "", "", nil, "CERTIFICATE_MISMATCH"},
		{"source certificate that does not parse", bound.Secret, "", "garbage", nil, "CERTIFICATE_MISMATCH"},
		{"xfcc from an untrusted peer", bound.Secret, "", "", map[string]string{"x-forwarded-client-cert": xfcc}, "CERTIFICATE_MISMATCH"},
		{"xfcc from a trusted peer", bound.Secret, "10.1.2.3", "", map[string]string{"x-forwarded-client-cert": xfcc}, ""},
		{"source certificate wins over xfcc", bound.Secret, "10.1.2.3", url.PathEscape(string(wrong.PEM)), map[string]string{"x-forwarded-client-cert": xfcc}, "CERTIFICATE_MISMATCH"},
		{"unbound key", unbound.Secret, "", "", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{"authorization": "Bearer " + tt.secret}
			for k, v := range tt.headers {
				h[k] = v
			}
			req := call{path: "/x", source: tt.source, headers: h}.checkRequest(false)
			req.Attributes.Source.Certificate = tt.cert
			resp, err := c.Check(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantCode == "" {
				if resp.GetStatus().GetCode() != int32(codes.OK) {
					t.Fatalf("refused: %v", resp)
				}
				return
			}
			d := resp.GetDeniedResponse()
			if d == nil || d.GetStatus().GetCode() != 401 || headerMap(t, d.GetHeaders())["x-latchkey-code"] != tt.wantCode {
				t.Errorf("got %v, want 401 %s", resp, tt.wantCode)
			}
		})
	}
}
