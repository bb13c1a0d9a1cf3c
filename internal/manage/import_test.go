package manage_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
)

// foreignKey is a key as another system made it, made at run time.
func foreignKey(t *testing.T) string {
	t.Helper()
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "sk_" + hex.EncodeToString(b[:])
}

func sha256Hex(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

func outcomes(rep *latchkey.ImportReport) string {
	var out []string
	for _, r := range rep.Results {
		out = append(out, r.Outcome)
	}
	return strings.Join(out, ",")
}

func (e *env) verifies(t *testing.T, secret, id string) *verify.Entry {
	t.Helper()
	v := verify.New(e.ix, verify.NewRecorder(nil, 0, nil))
	res := v.Verify(&verify.Request{Secret: secret, AccessKeyID: id, IP: netip.MustParseAddr("192.0.2.1")})
	if !res.Valid() {
		t.Fatalf("imported key does not verify: %s", res.Code)
	}
	return &res.Entry
}

func TestImportKeys(t *testing.T) {
	e := newEnv(t)
	e.app(t, latchkey.DefaultAccount, "billing")
	created := t0.Add(-400 * 24 * time.Hour)
	used := t0.Add(-time.Hour)
	a, b := foreignKey(t), foreignKey(t)
	req := latchkey.ImportRequest{Account: latchkey.DefaultAccount, Application: "billing", Origin: "csv", Keys: []latchkey.ImportKey{
		{Row: 1, ID: "key_123", Digest: sha256Hex(a), Format: "sha256-hex", ExternalID: "acme", Metadata: json.RawMessage(`{"plan":"pro"}`),
			CreatedAt: &created, LastUsedAt: &used},
		{Row: 2, Secret: b, Status: latchkey.StatusInactive},
		{Row: 3, Digest: "nothex", Format: "sha256-hex"},
		{Row: 4, Secret: b + "2", Digest: sha256Hex(b)},
		{Row: 5, Digest: sha256Hex(a), Format: "tyk-murmur64"},
	}}
	rep, err := e.svc.ImportKeys(t.Context(), e.admin, req)
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(rep); got != "created,created,invalid,invalid,invalid" {
		t.Fatalf("outcomes %s: %+v", got, rep.Results)
	}
	if rep.Counts != (latchkey.ImportCounts{Created: 2, Invalid: 3}) {
		t.Fatalf("counts %+v", rep.Counts)
	}
	k := e.storedKey(t, rep.Results[0].AccessKeyID)
	if k.Imported == nil || k.Imported.Origin != "csv" || k.Imported.OriginalID != "key_123" || k.Imported.HashFormat != latchkey.HashSHA256 {
		t.Fatalf("imported %+v", k.Imported)
	}
	if !k.CreatedAt.Equal(created) || k.LastUsed == nil || !k.LastUsed.At.Equal(used) || k.ExternalID != "acme" || string(k.Metadata) != `{"plan":"pro"}` {
		t.Fatalf("stored key %+v", k)
	}
	if ent := e.verifies(t, a, ""); ent.ID != k.ID || ent.ExternalID() != "acme" {
		t.Fatalf("verified as %s", ent.ID)
	}
	v := verify.New(e.ix, verify.NewRecorder(nil, 0, nil))
	if got := v.Verify(&verify.Request{Secret: b}).Code; got != latchkey.CodeInactive {
		t.Fatalf("inactive imported key: %s", got)
	}

	// The same batch again changes nothing and reports exists.
	before, keysBefore := len(e.events(t)), e.keyCount(t)
	rep, err = e.svc.ImportKeys(t.Context(), e.admin, req)
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(rep); got != "exists,exists,invalid,invalid,invalid" {
		t.Fatalf("again: %s", got)
	}
	if n := e.keyCount(t); n != keysBefore {
		t.Fatalf("%d keys after the second run, %d before", n, keysBefore)
	}
	evs := e.events(t)
	if len(evs) != before+1 {
		t.Fatalf("%d events for the second run, want 1", len(evs)-before)
	}
	ev := evs[len(evs)-1]
	if ev.Action != latchkey.ActionAccessKeyImport || !strings.Contains(string(ev.After), `"exists":2`) {
		t.Fatalf("audit event %s %s", ev.Action, ev.After)
	}
	for _, ev := range evs {
		for _, s := range []string{a, b, sha256Hex(a), sha256Hex(b)} {
			if strings.Contains(string(ev.After)+string(ev.Before), s) {
				t.Fatalf("audit event %s holds a secret or digest", ev.Action)
			}
		}
	}

	// A third key breaks the two-keys rule: refused, nothing written.
	rep, err = e.svc.ImportKeys(t.Context(), e.admin, latchkey.ImportRequest{Account: latchkey.DefaultAccount, Application: "billing",
		Keys: []latchkey.ImportKey{{Row: 1, Secret: foreignKey(t)}}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Results[0].Outcome != latchkey.ImportRefused || !strings.Contains(rep.Results[0].Reason, "group_by") {
		t.Fatalf("third key: %+v", rep.Results[0])
	}

	// Another account's import of the same secret is refused.
	e.app(t, "other", "web")
	rep, err = e.svc.ImportKeys(t.Context(), e.otherAdmin, latchkey.ImportRequest{Account: "other", Application: "web",
		Keys: []latchkey.ImportKey{{Row: 1, Secret: a}}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Results[0].Outcome != latchkey.ImportRefused {
		t.Fatalf("another account's secret: %+v", rep.Results[0])
	}

	// A restart loads imported keys from the store.
	ix := verify.NewIndex()
	if _, err := ix.Sync(t.Context(), e.store); err != nil {
		t.Fatal(err)
	}
	e.ix = ix
	e.verifies(t, a, "")
}

func TestImportKeysGrouped(t *testing.T) {
	e := newEnv(t)
	var keys []latchkey.ImportKey
	var secrets []string
	for i := range 7 {
		s := foreignKey(t)
		secrets = append(secrets, s)
		keys = append(keys, latchkey.ImportKey{Row: i + 1, Secret: s, ExternalID: fmt.Sprintf("cust%d", i/2)})
	}
	// cust0..cust2 have two keys each, cust3 one.
	rep, err := e.svc.ImportKeys(t.Context(), e.admin, latchkey.ImportRequest{Account: latchkey.DefaultAccount, GroupBy: latchkey.GroupExternalID, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts.Created != 7 || rep.Counts.Applications != 4 {
		t.Fatalf("by external ID: %+v", rep.Counts)
	}
	if ent := e.verifies(t, secrets[6], ""); ent.Application() != "cust3" {
		t.Fatalf("key of cust3 in %s", ent.Application())
	}
	// A third key for cust0 is refused; one without an external ID invalid.
	rep, err = e.svc.ImportKeys(t.Context(), e.admin, latchkey.ImportRequest{Account: latchkey.DefaultAccount, GroupBy: latchkey.GroupExternalID,
		Keys: []latchkey.ImportKey{{Row: 1, Secret: foreignKey(t), ExternalID: "cust0"}, {Row: 2, Secret: foreignKey(t)}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(rep); got != "refused,invalid" {
		t.Fatalf("%s %+v", got, rep.Results)
	}
	// An application per key, named with a prefix.
	rep, err = e.svc.ImportKeys(t.Context(), e.admin, latchkey.ImportRequest{Account: latchkey.DefaultAccount, GroupBy: latchkey.GroupKey, Application: "legacy",
		Keys: []latchkey.ImportKey{{Row: 1, Secret: foreignKey(t), ExternalID: "cust0"}, {Row: 2, Secret: foreignKey(t), ExternalID: "cust0"}, {Row: 3, Secret: foreignKey(t), ExternalID: "cust0"}}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts.Created != 3 || rep.Counts.Applications != 3 || !strings.HasPrefix(rep.Results[0].Application, "legacy-LKIA") {
		t.Fatalf("per key: %+v %+v", rep.Counts, rep.Results[0])
	}
}

func TestImportKeysRefusesRequest(t *testing.T) {
	e := newEnv(t)
	e.app(t, latchkey.DefaultAccount, "billing")
	one := []latchkey.ImportKey{{Row: 1, Secret: "x"}}
	tests := []struct {
		name  string
		actor latchkey.Actor
		req   latchkey.ImportRequest
		code  string
	}{
		{"viewer", e.viewer, latchkey.ImportRequest{Account: latchkey.DefaultAccount, Application: "billing", Keys: one}, latchkey.EFORBIDDEN},
		{"other account", e.otherAdmin, latchkey.ImportRequest{Account: latchkey.DefaultAccount, Application: "billing", Keys: one}, latchkey.ENOTFOUND},
		{"no application", e.admin, latchkey.ImportRequest{Account: latchkey.DefaultAccount, Keys: one}, latchkey.EINVALID},
		{"unknown application", e.admin, latchkey.ImportRequest{Account: latchkey.DefaultAccount, Application: "nope", Keys: one}, latchkey.ENOTFOUND},
		{"bad group_by", e.admin, latchkey.ImportRequest{Account: latchkey.DefaultAccount, GroupBy: "team", Keys: one}, latchkey.EINVALID},
		{"bad origin", e.admin, latchkey.ImportRequest{Account: latchkey.DefaultAccount, Application: "billing", Origin: "a b", Keys: one}, latchkey.EINVALID},
		{"too many rows", e.admin, latchkey.ImportRequest{Account: latchkey.DefaultAccount, Application: "billing", Keys: make([]latchkey.ImportKey, latchkey.MaxImportBatch+1)}, latchkey.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.ImportKeys(t.Context(), tt.actor, tt.req)
			wantCode(t, err, tt.code)
		})
	}
}

func TestImportSaltedAndLatchkeyKeys(t *testing.T) {
	e := newEnv(t)
	e.app(t, latchkey.DefaultAccount, "billing")
	native, err := keyformat.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	nativeID, err := keyformat.NewID()
	if err != nil {
		t.Fatal(err)
	}
	salted := foreignKey(t)
	rep, err := e.svc.ImportKeys(t.Context(), e.admin, latchkey.ImportRequest{Account: latchkey.DefaultAccount, Application: "billing", Keys: []latchkey.ImportKey{
		{Row: 1, ID: nativeID, Digest: sha256Hex(native), Format: "sha256-hex"},
		{Row: 2, ID: "u-42", Digest: sha256Hex("pepper" + salted), Format: "sha256-salted-hex", Salt: "pepper"},
		{Row: 3, Digest: sha256Hex(salted), Format: "sha256-salted-hex"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(rep); got != "created,created,invalid" {
		t.Fatalf("%s %+v", got, rep.Results)
	}
	if rep.Results[0].AccessKeyID != nativeID {
		t.Fatalf("a latchkey ID was not kept: %s", rep.Results[0].AccessKeyID)
	}
	e.verifies(t, native, "")
	e.verifies(t, salted, rep.Results[1].AccessKeyID)
}
