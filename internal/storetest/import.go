package storetest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
)

// testKeyImported: an imported key keeps its hash format, salt, origin,
// original ID, import time and last use, in Find, ScanAccessKeys and
// ScanKeyIndex (which the index loads from); a native key has none.
func testKeyImported(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "billing")
	k := newKey(t, "acme", "billing", at(1))
	k.Imported = &latchkey.Import{Origin: "tyk", OriginalID: "key_9f8e", HashFormat: latchkey.HashSHA256Salted, ImportedAt: at(5)}
	k.Salt = []byte("salt\x00bytes")
	k.LastUsed = &latchkey.Use{At: at(3)}
	createKey(t, s, k)
	native := createKey(t, s, newKey(t, "acme", "billing", at(2)))

	got := mustFindKey(t, s, k.ID)
	if diff := cmp.Diff(k.Imported, got.Imported); diff != "" {
		t.Errorf("Imported after Find (-want +got):\n%s", diff)
	}
	if string(got.Salt) != string(k.Salt) || got.LastUsed == nil || !got.LastUsed.At.Equal(at(3)) {
		t.Errorf("salt %q, last used %v", got.Salt, got.LastUsed)
	}
	if n := mustFindKey(t, s, native.ID); n.Imported != nil || n.Salt != nil || n.LastUsed != nil {
		t.Errorf("native key: imported %+v, salt %q, last used %v", n.Imported, n.Salt, n.LastUsed)
	}
	if all := allKeys(t, s); all[k.ID].Imported == nil || all[native.ID].Imported != nil {
		t.Errorf("ScanAccessKeys: imported %+v / %+v", all[k.ID].Imported, all[native.ID].Imported)
	}
	idx := map[string]*latchkey.AccessKey{}
	err := s.ScanKeyIndex(context.Background(), func(k *latchkey.AccessKey) error { idx[k.ID] = k; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if ik := idx[k.ID]; ik == nil || ik.Imported == nil || ik.Imported.HashFormat != latchkey.HashSHA256Salted || string(ik.Salt) != string(k.Salt) || ik.SecretDigest != k.SecretDigest {
		t.Errorf("ScanKeyIndex: %+v", ik)
	}
	if idx[native.ID].Imported != nil {
		t.Errorf("ScanKeyIndex: native key imported %+v", idx[native.ID].Imported)
	}
}
