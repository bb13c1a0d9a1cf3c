package hashformat_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/hashformat"
	"github.com/spaolacci/murmur3"
)

// tykHash is how Tyk's gateway writes a key's digest (storage.HashStr):
// the hash.Hash of the algorithm, hex of Sum(nil).
func tykHash(h hash.Hash, key string) string {
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))
}

// tykKey makes a key at run time in the shape of a Tyk legacy key: 48
// lower-case hex characters.
func tykKey(t testing.TB) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func TestParseMatchesLookup(t *testing.T) {
	key := tykKey(t) // made at run time, in a Tyk legacy key's shape
	sum := sha256.Sum256([]byte(key))
	tests := []struct {
		name, input, digest string
		format              latchkey.HashFormat
	}{
		{"tyk murmur32 (legacy keys)", "tyk-murmur32", tykHash(murmur3.New32(), key), latchkey.HashMurmur32},
		{"tyk murmur64 (the default)", "tyk-murmur64", tykHash(murmur3.New64(), key), latchkey.HashMurmur64},
		{"tyk murmur128", "tyk-murmur128", tykHash(murmur3.New128(), key), latchkey.HashMurmur128},
		{"tyk sha256", "tyk-sha256", tykHash(sha256.New(), key), latchkey.HashSHA256},
		{"sha256 hex", "sha256-hex", hex.EncodeToString(sum[:]), latchkey.HashSHA256},
		{"sha256 hex with spaces", "sha256-hex", "  " + hex.EncodeToString(sum[:]) + " ", latchkey.HashSHA256},
		{"sha256 base64", "sha256-base64", base64.StdEncoding.EncodeToString(sum[:]), latchkey.HashSHA256},
		{"sha256 base64url unpadded", "sha256-base64", base64.RawURLEncoding.EncodeToString(sum[:]), latchkey.HashSHA256},
		{"unkey", "unkey-sha256", base64.StdEncoding.EncodeToString(sum[:]), latchkey.HashSHA256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, d, err := hashformat.Parse(tt.input, tt.digest)
			if err != nil {
				t.Fatal(err)
			}
			if f != tt.format {
				t.Fatalf("format %s, want %s", f, tt.format)
			}
			if d != hashformat.Lookup(f, key) {
				t.Fatalf("parsed digest differs from the lookup digest of the key")
			}
			if d == hashformat.Lookup(f, key+"x") {
				t.Fatalf("another key has the same lookup digest")
			}
		})
	}
	// The formats never meet: the same key in each gives four digests.
	seen := map[[32]byte]latchkey.HashFormat{}
	for _, f := range []latchkey.HashFormat{latchkey.HashSHA256, latchkey.HashMurmur32, latchkey.HashMurmur64, latchkey.HashMurmur128} {
		d := hashformat.Lookup(f, key)
		if g, ok := seen[d]; ok {
			t.Fatalf("%s and %s share a lookup digest", f, g)
		}
		seen[d] = f
	}
}

func TestSalted(t *testing.T) {
	salt, secret := []byte("s4lt"), "the-secret"
	want := sha256.Sum256([]byte("s4ltthe-secret"))
	if hashformat.Salted(salt, secret) != want {
		t.Fatal("Salted is not sha256(salt || secret)")
	}
	f, d, err := hashformat.Parse("sha256-salted-hex", hex.EncodeToString(want[:]))
	if err != nil || f != latchkey.HashSHA256Salted || d != want {
		t.Fatalf("parse salted: %s %v", f, err)
	}
	long := string(make([]byte, 300))
	w2 := sha256.Sum256(append(append([]byte{}, salt...), long...))
	if hashformat.Salted(salt, long) != w2 {
		t.Fatal("Salted with a long secret")
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct{ name, input, digest string }{
		{"unknown format", "md5", "00"},
		{"not hex", "sha256-hex", "zz"},
		{"short sha256", "sha256-hex", "abcd"},
		{"murmur64 of the wrong size", "tyk-murmur64", "abcd"},
		{"bad base64", "unkey-sha256", "!!!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := hashformat.Parse(tt.input, tt.digest); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestTykInput(t *testing.T) {
	for hexLen, want := range map[int]string{8: "tyk-murmur32", 16: "tyk-murmur64", 32: "tyk-murmur128", 64: "tyk-sha256"} {
		got, ok := hashformat.TykInput(string(make([]byte, hexLen)))
		_ = got
		if ok {
			t.Fatalf("NUL bytes taken for hex")
		}
		h := ""
		for range hexLen {
			h += "a"
		}
		if got, ok := hashformat.TykInput(h); !ok || got != want {
			t.Fatalf("%d hex digits: %q %v, want %s", hexLen, got, ok, want)
		}
	}
	if _, ok := hashformat.TykInput("eyJvcmciOiJ4In0="); ok {
		t.Fatal("a raw key (hash_keys off) taken for a digest")
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	key := tykKey(t)
	for _, f := range latchkey.HashFormats() {
		if f == latchkey.HashSHA256Salted {
			continue
		}
		if n := testing.AllocsPerRun(100, func() { hashformat.Lookup(f, key) }); n != 0 {
			t.Errorf("%s: %v allocations", f, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { hashformat.Salted([]byte("salt"), key) }); n != 0 {
		t.Errorf("salted: %v allocations", n)
	}
}
