package verify_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/hashformat"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
)

// foreignSecret is a key as another system makes it (not latchkey-shaped),
// made at run time.
func foreignSecret(t testing.TB) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "5e3d1c0a9b8f7e6d5c4b3a29" + hex.EncodeToString(b[:])
}

// importedKey is a key imported in format f with the given secret, its
// digest computed as the other system stored it.
func importedKey(t testing.TB, f latchkey.HashFormat, secret string) testKey {
	t.Helper()
	k := newKey(t, "acme", "imported")
	k.secret = secret
	k.Imported = &latchkey.Import{Origin: "test", HashFormat: f}
	if f == latchkey.HashSHA256Salted {
		k.Salt = []byte("per-key-salt-" + k.ID)
		k.SecretDigest = hashformat.Salted(k.Salt, secret)
	} else {
		k.SecretDigest = hashformat.Lookup(f, secret)
	}
	return k
}

func TestVerifyImported(t *testing.T) {
	ix := verify.NewIndex()
	v := verify.New(ix, verify.NewRecorder(&memSink{}, 0, nil))
	v.Now = func() time.Time { return t0 }
	native := newKey(t, "acme", "native")
	ix.Put(native.AccessKey)
	stranger := foreignSecret(t)
	req := func(secret, id string) *verify.Request {
		return &verify.Request{Secret: secret, AccessKeyID: id, IP: netip.MustParseAddr("192.0.2.1")}
	}

	// With no imported key, a foreign secret is MALFORMED, as before.
	if got := v.Verify(req(stranger, "")).Code; got != latchkey.CodeMalformed {
		t.Fatalf("foreign secret with no imported key: %s, want MALFORMED", got)
	}
	if len(ix.HashFormats()) != 0 {
		t.Fatalf("formats in use with no imported key: %v", ix.HashFormats())
	}

	keys := map[latchkey.HashFormat]testKey{}
	for _, f := range latchkey.HashFormats() {
		k := importedKey(t, f, foreignSecret(t))
		keys[f] = k
		ix.Put(k.AccessKey)
	}
	if got := len(ix.HashFormats()); got != len(latchkey.HashFormats()) {
		t.Fatalf("formats in use: %v", ix.HashFormats())
	}
	for _, f := range latchkey.HashFormats() {
		k := keys[f]
		t.Run(string(f), func(t *testing.T) {
			id := ""
			if f == latchkey.HashSHA256Salted {
				// no lookup by secret alone: the key must be named
				if got := v.Verify(req(k.secret, "")).Code; got != latchkey.CodeNotFound {
					t.Fatalf("salted key without its ID: %s, want NOT_FOUND", got)
				}
				id = k.ID
			}
			res := v.Verify(req(k.secret, id))
			if res.Code != latchkey.CodeValid || res.Entry.ID != k.ID {
				t.Fatalf("imported %s key: %s (%v), want VALID for %s", f, res.Code, res.Entry, k.ID)
			}
			if got := v.Verify(req(k.secret+"x", id)).Code; got != latchkey.CodeNotFound {
				t.Fatalf("wrong secret: %s, want NOT_FOUND", got)
			}
			// another key's ID with this secret is refused
			if got := v.Verify(req(k.secret, native.ID)).Code; got != latchkey.CodeNotFound {
				t.Fatalf("with another key's ID: %s, want NOT_FOUND", got)
			}
		})
	}
	if got := v.Verify(req(stranger, "")).Code; got != latchkey.CodeNotFound {
		t.Fatalf("unknown foreign secret with imported keys: %s, want NOT_FOUND", got)
	}
	if got := v.Verify(req(native.secret, "")).Code; got != latchkey.CodeValid {
		t.Fatalf("native key beside imported ones: %s", got)
	}
	// A murmur digest equal to the native key's first bytes is another
	// format: the tag keeps them apart.
	if got := v.Verify(req(keys[latchkey.HashMurmur64].secret, keys[latchkey.HashMurmur32].ID)).Code; got != latchkey.CodeNotFound {
		t.Fatalf("murmur64 secret named as the murmur32 key: %s", got)
	}

	// Deleting the last key of a format stops its lookup.
	for _, f := range latchkey.HashFormats() {
		ix.Delete(keys[f].ID)
	}
	if len(ix.HashFormats()) != 0 {
		t.Fatalf("formats in use after deleting every imported key: %v", ix.HashFormats())
	}
	if got := v.Verify(req(keys[latchkey.HashMurmur64].secret, "")).Code; got != latchkey.CodeMalformed {
		t.Fatalf("deleted imported key: %s, want MALFORMED", got)
	}
}

// BenchmarkVerifyImported compares, in one run, a native key's
// verification with no imported key in the index and with imported keys of
// every format beside it, and an imported key's verification in each
// format (one lookup per format in use before it).
func BenchmarkVerifyImported(b *testing.B) {
	ix, secrets := benchKeys(b, 1000, 1000)
	run := func(b *testing.B, ix *verify.Index, secrets, ids []string) {
		v := served(ix)
		req := verify.Request{IP: netip.MustParseAddr("192.0.2.1"), UserAgent: "bench"}
		for i := range secrets {
			req.Secret = secrets[i]
			req.AccessKeyID = ids[i]
			v.Verify(&req)
		}
		runtime.GC()
		b.ReportAllocs()
		i := 0
		cpu := startCPU(b)
		for b.Loop() {
			req.Secret, req.AccessKeyID = secrets[i], ids[i]
			if !v.Verify(&req).Valid() {
				b.Fatal("not valid")
			}
			if i++; i == len(secrets) {
				i = 0
			}
		}
		cpu.stop()
	}
	noIDs := make([]string, len(secrets))
	b.Run("native/imports=none", func(b *testing.B) { run(b, ix, secrets, noIDs) })

	imp, nat := buildKeys(b, 1000, 1000)
	byFormat := map[latchkey.HashFormat][2][]string{}
	for _, f := range latchkey.HashFormats() {
		var ss, ids []string
		for range 200 {
			k := importedKey(b, f, foreignSecret(b))
			k.Application = fmt.Sprintf("imp-%s-%s", f, k.ID)
			imp.Put(k.AccessKey)
			ss = append(ss, k.secret)
			if f == latchkey.HashSHA256Salted {
				ids = append(ids, k.ID)
			} else {
				ids = append(ids, "")
			}
		}
		byFormat[f] = [2][]string{ss, ids}
	}
	b.Run("native/imports=all", func(b *testing.B) { run(b, imp, nat, noIDs) })
	for _, f := range latchkey.HashFormats() {
		b.Run("imported/"+string(f), func(b *testing.B) { run(b, imp, byFormat[f][0], byFormat[f][1]) })
	}
	_ = keyformat.SecretLen
}
