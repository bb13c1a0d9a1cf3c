package keyformat

import "testing"

// base62BodyBytewise is the byte-at-a-time check base62Body replaces.
func base62BodyBytewise(body string) bool {
	for i := 0; i < len(body); i++ {
		if base62Index[body[i]] < 0 {
			return false
		}
	}
	return true
}

// TestBase62BodyEveryByte puts each of the 256 byte values at each
// position of a valid body, and every pair of bytes into each word
// boundary's neighbours, and asks base62Body and the bytewise check: a
// word-wide check that carried between bytes, or missed a range's edge
// ('/' '0' '9' ':' '@' 'A' 'Z' '[' '`' 'a' 'z' '{', 0x7f, 0x80, 0xff),
// answers otherwise for some of them.
func TestBase62BodyEveryByte(t *testing.T) {
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	good := s[len(SecretPrefix):]
	if !base62Body(good) {
		t.Fatalf("base62Body refuses a new secret's body")
	}
	b := []byte(good)
	for i := range b {
		for c := range 256 {
			b[i] = byte(c)
			if got, want := base62Body(string(b)), base62BodyBytewise(string(b)); got != want {
				t.Fatalf("byte %#02x at %d: base62Body %v, bytewise %v", c, i, got, want)
			}
		}
		b[i] = good[i]
	}
	// Two bad or edge bytes side by side, across every boundary between
	// words and inside the overlapping last word.
	for _, i := range []int{6, 7, 8, 14, 15, 23, 31, 37, 38, 39, 44} {
		for c := range 256 {
			for d := range 256 {
				b[i], b[i+1] = byte(c), byte(d)
				if got, want := base62Body(string(b)), base62BodyBytewise(string(b)); got != want {
					t.Fatalf("bytes %#02x %#02x at %d: base62Body %v, bytewise %v", c, d, i, got, want)
				}
			}
		}
		b[i], b[i+1] = good[i], good[i+1]
	}
}

// BenchmarkSecretShaped is the shape check every verification makes
// before it looks the secret's digest up.
func BenchmarkSecretShaped(b *testing.B) {
	s, err := NewSecret()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !SecretShaped(s) {
			b.Fatal("not shaped")
		}
	}
}
