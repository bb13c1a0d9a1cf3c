package keyformat

import (
	"strings"
	"testing"
)

// FuzzSecretEdit builds a secret from any 40 base62 characters and its
// checksum, then changes one character to another base62 character, as a
// typo does. The built secret must be valid and the edited one must not:
// the CRC32 catches every single-character change in the body, and the
// checksum's base62 digits encode it one to one.
func FuzzSecretEdit(f *testing.F) {
	f.Add([]byte("0123456789ABCDEFGHIJabcdefghij0123456789"), uint8(0), uint8(1))
	f.Add([]byte("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"), uint8(45), uint8(61))
	f.Fuzz(func(t *testing.T, raw []byte, pos, c uint8) {
		if len(raw) < randomLen {
			return
		}
		body := make([]byte, randomLen)
		for i := range body {
			body[i] = Alphabet[int(raw[i])%len(Alphabet)]
		}
		s := SecretPrefix + string(body) + Checksum(string(body))
		if !ValidSecret(s) || !secretRE.MatchString(s) {
			t.Fatalf("built secret %q is not valid", s)
		}
		i := len(SecretPrefix) + int(pos)%(randomLen+checksumLen)
		repl := Alphabet[int(c)%len(Alphabet)]
		if repl == s[i] {
			return
		}
		edited := s[:i] + string(repl) + s[i+1:]
		if ValidSecret(edited) {
			t.Fatalf("a one-character change at %d (%q to %q) keeps the checksum valid", i, s[i], repl)
		}
		if !strings.HasPrefix(Mask(edited), SecretPrefix) || len(Mask(edited)) > len(SecretPrefix)+7 {
			t.Fatalf("Mask reveals too much: %q", Mask(edited))
		}
	})
}
