package verify_test

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
)

func randomThumbprint(t *testing.T) latchkey.CertThumbprint {
	t.Helper()
	der := make([]byte, 64)
	if _, err := rand.Read(der); err != nil {
		t.Fatal(err)
	}
	return latchkey.ThumbprintOf(der)
}

// TestVerifyCertificateBinding: a key bound to a client certificate is
// valid only with that certificate, checked after status and expiry and
// before restrictions; unbound keys ignore whatever certificate is given.
func TestVerifyCertificateBinding(t *testing.T) {
	cert, other := randomThumbprint(t), randomThumbprint(t)
	bind := func(k *latchkey.AccessKey) { k.CertThumbprint = cert.String() }
	bound := newKey(t, "acme", "billing", bind)
	boundOff := newKey(t, "acme", "billing", bind, inactive)
	boundExpired := newKey(t, "acme", "billing", bind, expiresAt(t0.Add(-1)))
	boundScoped := newKey(t, "acme", "billing", bind, func(k *latchkey.AccessKey) {
		k.Restrictions = &latchkey.Restrictions{Scopes: []string{"read"}}
	})
	corrupt := newKey(t, "acme", "billing", func(k *latchkey.AccessKey) { k.CertThumbprint = "not a thumbprint" })
	unbound := newKey(t, "acme", "billing")
	ix := verify.NewIndex()
	for _, k := range []testKey{bound, boundOff, boundExpired, boundScoped, corrupt, unbound} {
		ix.Put(k.AccessKey)
	}
	var zero latchkey.CertThumbprint
	tests := []struct {
		name string
		req  verify.Request
		code latchkey.Code
	}{
		{"bound, its certificate", verify.Request{Secret: bound.secret, ClientCert: cert, HasClientCert: true}, latchkey.CodeValid},
		{"bound, no certificate", verify.Request{Secret: bound.secret}, latchkey.CodeCertificateMismatch},
		{"bound, another certificate", verify.Request{Secret: bound.secret, ClientCert: other, HasClientCert: true}, latchkey.CodeCertificateMismatch},
		{"bound, thumbprint without HasClientCert", verify.Request{Secret: bound.secret, ClientCert: cert}, latchkey.CodeCertificateMismatch},
		{"bound, zero thumbprint", verify.Request{Secret: bound.secret, ClientCert: zero, HasClientCert: true}, latchkey.CodeCertificateMismatch},
		{"inactive comes first", verify.Request{Secret: boundOff.secret}, latchkey.CodeInactive},
		{"expired comes first", verify.Request{Secret: boundExpired.secret}, latchkey.CodeExpired},
		{"mismatch before scope", verify.Request{Secret: boundScoped.secret, Scope: "write"}, latchkey.CodeCertificateMismatch},
		{"scope after a match", verify.Request{Secret: boundScoped.secret, Scope: "write", ClientCert: cert, HasClientCert: true}, latchkey.CodeScopeDenied},
		{"stored thumbprint unreadable: refused", verify.Request{Secret: corrupt.secret, ClientCert: zero, HasClientCert: true}, latchkey.CodeCertificateMismatch},
		{"unbound, no certificate", verify.Request{Secret: unbound.secret}, latchkey.CodeValid},
		{"unbound, any certificate", verify.Request{Secret: unbound.secret, ClientCert: other, HasClientCert: true}, latchkey.CodeValid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := verify.New(ix, nil)
			v.Now = func() time.Time { return t0 }
			if res := v.Verify(&tc.req); res.Code != tc.code {
				t.Errorf("code %s, want %s", res.Code, tc.code)
			}
		})
	}
	// A rebinding takes effect at once, and unbinding frees the key.
	bound.CertThumbprint = other.String()
	ix.Put(bound.AccessKey)
	v := verify.New(ix, nil)
	v.Now = func() time.Time { return t0 }
	if res := v.Verify(&verify.Request{Secret: bound.secret, ClientCert: cert, HasClientCert: true}); res.Code != latchkey.CodeCertificateMismatch {
		t.Errorf("old certificate after rebinding: %s", res.Code)
	}
	bound.CertThumbprint = ""
	ix.Put(bound.AccessKey)
	if res := v.Verify(&verify.Request{Secret: bound.secret}); res.Code != latchkey.CodeValid {
		t.Errorf("unbound key: %s", res.Code)
	}
	req := verify.Request{Secret: boundScoped.secret, ClientCert: cert, HasClientCert: true}
	if n := testing.AllocsPerRun(100, func() { v.Verify(&req) }); n != 0 {
		t.Errorf("a bound key's verification allocates %v times", n)
	}
}

func TestParseCertThumbprint(t *testing.T) {
	tp := randomThumbprint(t)
	hexs := ""
	for _, b := range tp {
		hexs += string("0123456789abcdef"[b>>4]) + string("0123456789abcdef"[b&15])
	}
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{tp.String(), true},
		{hexs, true},
		{strings.ToUpper(hexs), true},
		{"", false},
		{tp.String()[:42], false},
		{tp.String() + "=", false},
		{hexs[:62], false},
		{strings.Repeat("g", 64), false},
		{strings.Repeat("*", 43), false},
	} {
		got, err := latchkey.ParseCertThumbprint(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseCertThumbprint(%q) error %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && got != tp {
			t.Errorf("ParseCertThumbprint(%q) = %s, want %s", tc.in, got, tp)
		}
		if !tc.ok && latchkey.ErrorCode(err) != latchkey.EINVALID {
			t.Errorf("ParseCertThumbprint(%q): %v is not EINVALID", tc.in, err)
		}
	}
}
