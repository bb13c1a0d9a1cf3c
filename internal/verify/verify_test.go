package verify_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testKey is a key with its secret, made at run time.
type testKey struct {
	*latchkey.AccessKey
	secret string
}

func newKey(t testing.TB, account, app string, mod ...func(*latchkey.AccessKey)) testKey {
	t.Helper()
	secret, err := keyformat.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	id, err := keyformat.NewID()
	if err != nil {
		t.Fatal(err)
	}
	k := &latchkey.AccessKey{ID: id, Account: account, Application: app, Status: latchkey.StatusActive,
		CreatedAt: t0, UpdatedAt: t0, SecretDigest: keyformat.Sum(secret)}
	for _, m := range mod {
		m(k)
	}
	return testKey{k, secret}
}

func inactive(k *latchkey.AccessKey) { k.Status = latchkey.StatusInactive }

func expiresAt(at time.Time) func(*latchkey.AccessKey) {
	return func(k *latchkey.AccessKey) { k.ExpiresAt = &at }
}

func principal(name string, role latchkey.Role) func(*latchkey.AccessKey) {
	return func(k *latchkey.AccessKey) { k.Application, k.Principal, k.Role = "", name, role }
}

func newSecret(t testing.TB) string {
	t.Helper()
	s, err := keyformat.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// flipLast changes the last character, which breaks the checksum.
func flipLast(s string) string {
	c := byte('0')
	if s[len(s)-1] == '0' {
		c = '1'
	}
	return s[:len(s)-1] + string(c)
}

func TestVerifyDecisions(t *testing.T) {
	expiry := t0.Add(time.Hour)
	valid := newKey(t, "acme", "billing")
	off := newKey(t, "acme", "billing", inactive)
	offExpired := newKey(t, "acme", "billing", inactive, expiresAt(t0.Add(-time.Hour)))
	expiring := newKey(t, "acme", "orders", expiresAt(expiry))
	other := newKey(t, "globex", "ledger")
	admin := newKey(t, "acme", "", principal("alice", latchkey.RoleAdmin))
	ix := verify.NewIndex()
	for _, k := range []testKey{valid, off, offExpired, expiring, other, admin} {
		ix.Put(k.AccessKey)
	}
	unknown := newSecret(t)

	tests := []struct {
		name  string
		now   time.Time
		req   verify.Request
		code  latchkey.Code
		entry string // the matched key's ID, "" for none
	}{
		{"valid", t0, verify.Request{Secret: valid.secret}, latchkey.CodeValid, valid.ID},
		{"valid with its ID", t0, verify.Request{Secret: valid.secret, AccessKeyID: valid.ID}, latchkey.CodeValid, valid.ID},
		{"valid in its account", t0, verify.Request{Secret: valid.secret, Account: "acme"}, latchkey.CodeValid, valid.ID},
		{"missing", t0, verify.Request{}, latchkey.CodeMissing, ""},
		{"unknown", t0, verify.Request{Secret: unknown}, latchkey.CodeNotFound, ""},
		{"malformed: short", t0, verify.Request{Secret: "lksk_abc"}, latchkey.CodeMalformed, ""},
		{"malformed: checksum", t0, verify.Request{Secret: flipLast(valid.secret)}, latchkey.CodeMalformed, ""},
		{"malformed: prefix", t0, verify.Request{Secret: "LKSK_" + valid.secret[5:]}, latchkey.CodeMalformed, ""},
		{"malformed: trailing space", t0, verify.Request{Secret: valid.secret + " "}, latchkey.CodeMalformed, ""},
		{"malformed: not base62", t0, verify.Request{Secret: valid.secret[:10] + "-" + valid.secret[11:]}, latchkey.CodeMalformed, ""},
		{"malformed: an access key ID", t0, verify.Request{Secret: valid.ID}, latchkey.CodeMalformed, ""},
		{"wrong access key ID", t0, verify.Request{Secret: valid.secret, AccessKeyID: off.ID}, latchkey.CodeNotFound, ""},
		{"access key ID of another case", t0, verify.Request{Secret: valid.secret, AccessKeyID: "lkia" + valid.ID[4:]}, latchkey.CodeNotFound, ""},
		{"inactive", t0, verify.Request{Secret: off.secret}, latchkey.CodeInactive, off.ID},
		{"inactive wins over expired", t0, verify.Request{Secret: offExpired.secret}, latchkey.CodeInactive, offExpired.ID},
		{"inactive, wrong ID", t0, verify.Request{Secret: off.secret, AccessKeyID: valid.ID}, latchkey.CodeNotFound, ""},
		{"a nanosecond before expiry", expiry.Add(-time.Nanosecond), verify.Request{Secret: expiring.secret}, latchkey.CodeValid, expiring.ID},
		{"at expiry", expiry, verify.Request{Secret: expiring.secret}, latchkey.CodeExpired, expiring.ID},
		{"after expiry", expiry.Add(time.Nanosecond), verify.Request{Secret: expiring.secret}, latchkey.CodeExpired, expiring.ID},
		{"another account", t0, verify.Request{Secret: other.secret, Account: "acme"}, latchkey.CodeNotFound, ""},
		{"another account, inactive key", t0, verify.Request{Secret: off.secret, Account: "globex"}, latchkey.CodeNotFound, ""},
		{"any account", t0, verify.Request{Secret: other.secret}, latchkey.CodeValid, other.ID},
		{"principal key asked as application", t0, verify.Request{Secret: admin.secret}, latchkey.CodeNotFound, ""},
		{"application key asked as principal", t0, verify.Request{Secret: valid.secret, Principal: true}, latchkey.CodeNotFound, ""},
		{"principal key", t0, verify.Request{Secret: admin.secret, Principal: true}, latchkey.CodeValid, admin.ID},
		{"principal key in its account", t0, verify.Request{Secret: admin.secret, Principal: true, Account: "acme"}, latchkey.CodeValid, admin.ID},
		{"principal key, another account", t0, verify.Request{Secret: admin.secret, Principal: true, Account: "globex"}, latchkey.CodeNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := verify.New(ix, nil)
			v.Now = func() time.Time { return tc.now }
			res := v.Verify(&tc.req)
			if res.Code != tc.code {
				t.Errorf("code %s, want %s", res.Code, tc.code)
			}
			if res.Valid() != (tc.code == latchkey.CodeValid) {
				t.Errorf("Valid() = %v for %s", res.Valid(), res.Code)
			}
			got := ""
			if res.Entry.Found() {
				got = res.Entry.ID
			}
			if got != tc.entry {
				t.Errorf("entry %q, want %q", got, tc.entry)
			}
		})
	}
}

func TestVerifierFind(t *testing.T) {
	k := newKey(t, "acme", "billing", inactive)
	ix := verify.NewIndex()
	ix.Put(k.AccessKey)
	v := verify.New(ix, nil)
	if e := v.Find(k.secret); e == nil || e.ID != k.ID {
		t.Errorf("Find(inactive key) = %v", e)
	}
	for _, s := range []string{"", "lksk_x", flipLast(k.secret), newSecret(t)} {
		if e := v.Find(s); e != nil {
			t.Errorf("Find(%q) = %v, want nil", keyformat.Mask(s), e)
		}
	}
}

// TestVerifyDoesNotAllocate: the hot path allocates nothing, for a valid
// key with usage recorded as for any other outcome.
func TestVerifyDoesNotAllocate(t *testing.T) {
	valid := newKey(t, "acme", "billing")
	off := newKey(t, "acme", "billing", inactive)
	limited := newKey(t, "acme", "billing", func(k *latchkey.AccessKey) { k.Restrictions = restricted })
	ix := verify.NewIndex()
	ix.Put(valid.AccessKey)
	ix.Put(off.AccessKey)
	ix.Put(limited.AccessKey)
	rec := verify.NewRecorder(&memSink{}, time.Hour, nil)
	v := verify.New(ix, rec)
	v.Now = func() time.Time { return t0 }
	ip := netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		name string
		req  verify.Request
		want latchkey.Code
	}{
		{"valid", verify.Request{Secret: valid.secret, IP: ip, UserAgent: "ua", Account: "acme"}, latchkey.CodeValid},
		{"valid with ID", verify.Request{Secret: valid.secret, AccessKeyID: valid.ID}, latchkey.CodeValid},
		{"inactive", verify.Request{Secret: off.secret, IP: ip}, latchkey.CodeInactive},
		{"unknown", verify.Request{Secret: newSecret(t)}, latchkey.CodeNotFound},
		{"malformed", verify.Request{Secret: "lksk_abc"}, latchkey.CodeMalformed},
		// a refusal by a restriction (an allowed call of a restricted
		// key: TestRestrictedVerifyDoesNotAllocate)
		{"referrer not allowed", verify.Request{Secret: limited.secret, IP: netip.MustParseAddr("192.0.2.77"), UserAgent: "ua",
			Referrer: "https://api.example.net/", Scope: "orders:write"}, latchkey.CodeReferrerNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			if got := v.Verify(&req).Code; got != tc.want {
				t.Fatalf("code %s, want %s", got, tc.want)
			}
			if n := testing.AllocsPerRun(1000, func() { v.Verify(&req) }); n != 0 {
				t.Errorf("Verify allocates %v times per call", n)
			}
		})
	}
}
