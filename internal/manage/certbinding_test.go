package manage_test

import (
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/testcert"
)

// TestCertificateBinding: binding a key to a client certificate through
// create and update, validation (EINVALID, naming the field), the stored
// and indexed thumbprint, and the audit event of each change.
func TestCertificateBinding(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.app(t, "default", "web")
	ca := testcert.NewCA(t, "clients")
	c1, c2 := ca.Issue(t, "one"), ca.Issue(t, "two")
	t1, t2 := latchkey.ThumbprintOf(c1.DER).String(), latchkey.ThumbprintOf(c2.DER).String()

	for _, tc := range []struct {
		name string
		in   latchkey.NewAccessKey
		msg  string
	}{
		{"both", latchkey.NewAccessKey{CertificateThumbprint: t1, Certificate: string(c1.PEM)}, "not both"},
		{"short thumbprint", latchkey.NewAccessKey{CertificateThumbprint: t1[:40]}, "certificate_thumbprint"},
		{"not a certificate", latchkey.NewAccessKey{Certificate: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, "certificate"},
		{"no PEM", latchkey.NewAccessKey{Certificate: "hello"}, "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.CreateAccessKey(ctx, e.operator, "default", "web", tc.in)
			wantCode(t, err, latchkey.EINVALID)
			if err != nil && !strings.Contains(latchkey.ErrorMessage(err), tc.msg) {
				t.Errorf("message %q does not say %q", latchkey.ErrorMessage(err), tc.msg)
			}
		})
	}

	k, err := e.svc.CreateAccessKey(ctx, e.operator, "default", "web", latchkey.NewAccessKey{Certificate: string(c1.PEM)})
	if err != nil {
		t.Fatal(err)
	}
	if k.CertThumbprint != t1 {
		t.Fatalf("created thumbprint %q, want %q", k.CertThumbprint, t1)
	}
	stored, err := e.svc.GetAccessKey(ctx, e.operator, k.ID)
	if err != nil || stored.CertThumbprint != t1 {
		t.Fatalf("stored thumbprint %q (%v), want %q", stored.CertThumbprint, err, t1)
	}

	hexT2 := strings.ToUpper(hexOf(latchkey.ThumbprintOf(c2.DER)))
	none, empty, bad := "", "", "!!"+t1[2:]
	for _, tc := range []struct {
		name string
		u    latchkey.AccessKeyUpdate
		want string // thumbprint after; "!" for EINVALID
	}{
		{"rebind by hex thumbprint", latchkey.AccessKeyUpdate{CertificateThumbprint: &hexT2}, t2},
		{"both", latchkey.AccessKeyUpdate{CertificateThumbprint: &t1, Certificate: &empty}, "!"},
		{"empty certificate", latchkey.AccessKeyUpdate{Certificate: &empty}, "!"},
		{"bad thumbprint", latchkey.AccessKeyUpdate{CertificateThumbprint: &bad}, "!"},
		{"the same binding again", latchkey.AccessKeyUpdate{CertificateThumbprint: &hexT2}, t2}, // unchanged: no event
		{"unbind", latchkey.AccessKeyUpdate{CertificateThumbprint: &none}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.svc.UpdateAccessKey(ctx, e.operator, k.ID, tc.u)
			if tc.want == "!" {
				wantCode(t, err, latchkey.EINVALID)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.CertThumbprint != tc.want {
				t.Errorf("thumbprint %q, want %q", got.CertThumbprint, tc.want)
			}
		})
	}
	// Audited: the two changes, before and after.
	evs, _, err := e.svc.AuditChain(ctx, e.operator, "default", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, ev := range evs {
		if ev.Target == k.ID && ev.Action == latchkey.ActionAccessKeyUpdate {
			changes = append(changes, string(ev.After))
		}
	}
	if len(changes) != 2 || !strings.Contains(changes[0], t2) || strings.Contains(changes[1], "certificate_thumbprint") {
		t.Errorf("audited updates %d: %v", len(changes), changes)
	}

	// A principal's key cannot be bound.
	admin := e.principal(t, "default", "ops", latchkey.RoleAdmin)
	_, err = e.svc.UpdateAccessKey(ctx, e.operator, admin.AccessKeyID, latchkey.AccessKeyUpdate{CertificateThumbprint: &t1})
	wantCode(t, err, latchkey.EINVALID)
}

func hexOf(t latchkey.CertThumbprint) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for _, c := range t {
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&15])
	}
	return b.String()
}
