package keyformat

import (
	"bytes"
	"errors"
	"hash/crc32"
	"math/big"
	"regexp"
	"strings"
	"testing"
)

var (
	secretRE = regexp.MustCompile(`^lksk_[0-9A-Za-z]{46}$`)
	idRE     = regexp.MustCompile(`^LKIA[A-Z2-7]{16}$`)
)

func TestNewSecretShapeAndChecksum(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		s, err := NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		if !secretRE.MatchString(s) {
			t.Fatalf("secret %q does not match %v", Mask(s), secretRE)
		}
		if !ValidSecret(s) {
			t.Fatalf("ValidSecret(new secret) = false")
		}
		if seen[s] {
			t.Fatal("duplicate secret")
		}
		seen[s] = true
	}
}

func TestNewIDShape(t *testing.T) {
	for range 1000 {
		id, err := NewID()
		if err != nil {
			t.Fatal(err)
		}
		if !idRE.MatchString(id) || !ValidID(id) {
			t.Fatalf("bad id %q", id)
		}
	}
}

// The checksum is checked against an independent computation with math/big,
// so the test does not restate the code under test.
func TestChecksumMatchesSpec(t *testing.T) {
	bodies := []string{
		strings.Repeat("0", 40),
		strings.Repeat("z", 40),
		"abcdefghijABCDEFGHIJ0123456789klmnopqrst",
	}
	for _, body := range bodies {
		n := big.NewInt(int64(crc32.ChecksumIEEE([]byte(body))))
		digits := n.Text(62) // math/big uses 0-9a-zA-Z; map to 0-9A-Za-z
		var want strings.Builder
		for _, c := range digits {
			switch {
			case c >= 'a' && c <= 'z':
				want.WriteRune(c - 'a' + 'A')
			case c >= 'A' && c <= 'Z':
				want.WriteRune(c - 'A' + 'a')
			default:
				want.WriteRune(c)
			}
		}
		w := strings.Repeat("0", 6-want.Len()) + want.String()
		if got := Checksum(body); got != w {
			t.Errorf("Checksum(%q) = %q, want %q", body, got, w)
		}
		if !ValidSecret("lksk_" + body + w) {
			t.Errorf("ValidSecret with correct checksum = false for %q", body)
		}
	}
}

func TestValidSecretRejects(t *testing.T) {
	good, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	flip := []byte(good)
	if flip[10] == 'a' {
		flip[10] = 'b'
	} else {
		flip[10] = 'a'
	}
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"short", good[:50]},
		{"long", good + "0"},
		{"prefix", "lksx_" + good[5:]},
		{"upper prefix", "LKSK_" + good[5:]},
		{"typo in body", string(flip)},
		{"bad char", good[:20] + "-" + good[21:]},
		{"bad checksum", good[:45] + "000000"},
		{"non-ascii", good[:49] + "é"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.in == good {
				t.Skip("input equals the good secret")
			}
			if ValidSecret(tt.in) {
				t.Errorf("ValidSecret(%q) = true", Mask(tt.in))
			}
		})
	}
}

func TestValidIDRejects(t *testing.T) {
	for _, in := range []string{"", "LKIA", "LKIAAAAAAAAAAAAAAAA1", "lkiaAAAAAAAAAAAAAAAA", "LKIAAAAAAAAAAAAAAAAAA", "AKIAAAAAAAAAAAAAAAAA"} {
		if ValidID(in) {
			t.Errorf("ValidID(%q) = true", in)
		}
	}
	if !ValidID("LKIAABCDEFGHIJ234567") {
		t.Error("ValidID of a well-formed ID = false")
	}
}

// Random 51-character look-alikes almost never pass the checksum: about one
// in 62^6 / 2^32 ... in practice one in 4 billion.
func TestRandomLookalikesFailChecksum(t *testing.T) {
	s, _ := NewSecret()
	body := []byte(s)
	passed := 0
	for i := range 100000 {
		// 100000 distinct values of the last three random characters
		body[44] = Alphabet[i%62]
		body[43] = Alphabet[(i/62)%62]
		body[42] = Alphabet[(i/3844)%62]
		if ValidSecret(string(body)) {
			passed++
		}
	}
	if passed > 1 { // the original string itself may come around once
		t.Errorf("%d of 100000 look-alikes passed the checksum", passed)
	}
}

func TestRandomErrorIsReturned(t *testing.T) {
	boom := errors.New("no entropy")
	if _, err := newSecret(errReader{boom}); !errors.Is(err, boom) {
		t.Errorf("newSecret error = %v, want %v", err, boom)
	}
	if _, err := newID(errReader{boom}); !errors.Is(err, boom) {
		t.Errorf("newID error = %v, want %v", err, boom)
	}
}

func TestSecretUniformUsesWholeAlphabet(t *testing.T) {
	s, err := newSecret(bytes.NewReader(bytes.Repeat([]byte{255, 247, 0, 61}, 100)))
	if err != nil {
		t.Fatal(err)
	}
	// 255 is rejected; 247%62 = 61 ('z'), 0 -> '0', 61 -> 'z'
	if got := s[5:11]; got != "z0zz0z" {
		t.Errorf("body starts %q, want z0zz0z", got)
	}
}

func TestMaskNeverRevealsSecret(t *testing.T) {
	s, _ := NewSecret()
	m := Mask(s)
	if strings.Contains(m, s[9:]) || len(m) > 12 {
		t.Errorf("Mask reveals too much: %q", m)
	}
	if Mask("x") != "lksk_..." {
		t.Errorf("Mask(short) = %q", Mask("x"))
	}
}

func TestValidSecretDoesNotAllocate(t *testing.T) {
	s, _ := NewSecret()
	if n := testing.AllocsPerRun(100, func() { ValidSecret(s) }); n != 0 {
		t.Errorf("ValidSecret allocates %v times", n)
	}
}

func FuzzValidSecret(f *testing.F) {
	s, _ := NewSecret()
	f.Add(s)
	f.Add("lksk_")
	f.Add(strings.Repeat("0", 51))
	f.Fuzz(func(t *testing.T, in string) {
		ok := ValidSecret(in)
		if ok && !secretRE.MatchString(in) {
			t.Fatalf("ValidSecret accepted %q which does not match the format", in)
		}
		if ok && Checksum(in[5:45]) != in[45:] {
			t.Fatalf("ValidSecret accepted a wrong checksum")
		}
		_ = Mask(in)
	})
}

func FuzzValidID(f *testing.F) {
	f.Add("LKIAABCDEFGHIJ234567")
	f.Fuzz(func(t *testing.T, in string) {
		if ValidID(in) && !idRE.MatchString(in) {
			t.Fatalf("ValidID accepted %q", in)
		}
	})
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
