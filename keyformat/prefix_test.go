package keyformat

import (
	"bytes"
	"hash/crc32"
	"regexp"
	"strings"
	"testing"
)

func TestValidatePrefix(t *testing.T) {
	tests := []struct {
		name, prefix string
		ok           bool
		says         string // part of the error message
	}{
		{"live", "acme_live_", true, ""},
		{"test", "acme_test_", true, ""},
		{"shortest", "ab_", true, ""},
		{"digits inside", "a1b2_", true, ""},
		{"longest", strings.Repeat("a", 19) + "_", true, ""},
		{"too short", "a_", false, "3 to 20"},
		{"empty", "", false, "3 to 20"},
		{"too long", strings.Repeat("a", 20) + "_", false, "3 to 20"},
		{"no trailing underscore", "acme", false, "ends with _"},
		{"capitals", "Acme_", false, "a-z, 0-9"},
		{"starts with a digit", "1acme_", false, "starts with a letter"},
		{"starts with underscore", "_acme_", false, "starts with a letter"},
		{"dash", "acme-live_", false, "a-z, 0-9"},
		{"non-ascii", "acmé_", false, "a-z, 0-9"},
		{"lksk_", "lksk_", false, "reserved"},
		{"lkak_", "lkak_", false, "reserved"},
		{"lk namespace", "lkfoo_", false, "reserved"},
		{"ends with lksk_", "mylksk_", false, "reserved"},
		{"ends with lkak_", "acme_lkak_", false, "reserved"},
		{"whsec_", "whsec_", false, "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePrefix(tt.prefix)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidatePrefix(%q) = %v, want ok=%v", tt.prefix, err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), tt.says) {
				t.Errorf("ValidatePrefix(%q) = %q, want it to say %q", tt.prefix, err, tt.says)
			}
		})
	}
}

// The checksum of a prefixed secret is checked against an independent
// computation: CRC32 of prefix and random part, six base62 digits.
func TestPrefixedSecretShapeAndChecksum(t *testing.T) {
	for _, prefix := range []string{"acme_live_", "ab_", "x1_y2_z3_", strings.Repeat("q", 19) + "_"} {
		t.Run(prefix, func(t *testing.T) {
			re := regexp.MustCompile(`^` + prefix + `[0-9A-Za-z]{46}$`)
			for range 200 {
				s, err := NewSecretWithPrefix(prefix)
				if err != nil {
					t.Fatal(err)
				}
				if !re.MatchString(s) || !ValidSecret(s) {
					t.Fatalf("secret %q does not match %v or is not valid", Mask(s), re)
				}
				covered := s[:len(prefix)+40]
				sum := crc32.ChecksumIEEE([]byte(covered))
				var want [6]byte
				for i := 5; i >= 0; i-- {
					want[i] = Alphabet[sum%62]
					sum /= 62
				}
				if got := s[len(s)-6:]; got != string(want[:]) {
					t.Fatalf("checksum %q, want %q (CRC32 of prefix and random part)", got, want)
				}
				if SecretPrefixOf(s) != prefix {
					t.Fatalf("SecretPrefixOf = %q, want %q", SecretPrefixOf(s), prefix)
				}
			}
		})
	}
}

func TestPrefixedSecretRejects(t *testing.T) {
	good, err := NewSecretWithPrefix("acme_live_")
	if err != nil {
		t.Fatal(err)
	}
	body := good[len("acme_live_"):]
	old, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   string
	}{
		{"prefix changed to test", "acme_test_" + body},
		{"prefix changed to lksk_", "lksk_" + body},
		{"prefix dropped", "live_" + body},
		{"lksk_ secret with a prefix added", "acme_" + old},
		{"lksk_ body under a prefix", "acme_live_" + old[5:]},
		{"capital prefix", "ACME_LIVE_" + body},
		{"prefix without underscore", "acmelive" + body},
		{"prefix too long", strings.Repeat("a", 20) + "_" + body},
		{"typo in body", good[:20] + string(Alphabet[(int(base62Index[good[20]])+1)%62]) + good[21:]},
		{"bad checksum", good[:len(good)-6] + "000000"},
		{"short", good[1:]},
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
	if !ValidSecret(good) || !ValidSecret(old) {
		t.Error("a prefixed or a lksk_ secret is not valid")
	}
}

func TestWithPrefix(t *testing.T) {
	old, err := newSecretFrom(bytes.NewReader(bytes.Repeat([]byte{1, 2, 3, 4}, 40)), "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(old, SecretPrefix) || !ValidSecret(old) {
		t.Fatalf("WithPrefix(\"\") = %q, want a lksk_ secret", Mask(old))
	}
	p, err := WithPrefix(old, "acme_live_")
	if err != nil {
		t.Fatal(err)
	}
	if p[len("acme_live_"):len("acme_live_")+40] != old[5:45] || !ValidSecret(p) {
		t.Errorf("WithPrefix keeps the random part and gives a valid secret")
	}
	back, err := WithPrefix(p, SecretPrefix)
	if err != nil || back != old {
		t.Errorf("WithPrefix back to lksk_ = %q, %v; want the original", Mask(back), err)
	}
	for _, tc := range []struct{ s, prefix string }{{old, "lksk"}, {old, "Acme_"}, {old, "lkak_"}, {old[1:], "acme_"}} {
		if got, err := WithPrefix(tc.s, tc.prefix); err == nil {
			t.Errorf("WithPrefix(%q, %q) = %q, want an error", Mask(tc.s), tc.prefix, Mask(got))
		}
	}
}

func TestIndexSecret(t *testing.T) {
	p, _ := NewSecretWithPrefix("acme_live_")
	q, _ := NewSecretWithPrefix("a_b_")
	old, _ := NewSecret()
	bad := p[:len(p)-6] + "000000"
	tests := []struct {
		name      string
		in        string
		want      string // the secret found, "" for none
		wantStart int
	}{
		{"none", "nothing here_at all", "", -1},
		{"prefixed alone", p, p, 0},
		{"prefixed in text", "key=" + p + "&x=1", p, 4},
		{"inside a longer word", "xx" + p, p, 2},
		{"prefix with underscores", "(" + q + ")", q, 1},
		{"lksk_", "token " + old, old, 6},
		{"lksk_ after a word", "my_" + old, old, 3},
		{"bad checksum", "key=" + bad, "", -1},
		{"first of two", bad + " " + p + " " + old, p, len(bad) + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, j := IndexSecret(tt.in)
			got := ""
			if i >= 0 {
				got = tt.in[i:j]
			}
			if got != tt.want || i != tt.wantStart {
				t.Errorf("IndexSecret = %d (%q), want %d (%q)", i, Mask(got), tt.wantStart, Mask(tt.want))
			}
			if ContainsSecret(tt.in) != (tt.want != "") {
				t.Errorf("ContainsSecret = %v", !(tt.want != ""))
			}
		})
	}
}

func TestPrefixedDoesNotAllocate(t *testing.T) {
	p, _ := NewSecretWithPrefix("acme_live_")
	text := "GET /x?api_key=" + p[:len(p)-1] + "&q=1 lorem_ipsum " + strings.Repeat("y", 50)
	for name, f := range map[string]func(){
		"ValidSecret": func() { ValidSecret(p) },
		"IndexSecret": func() { IndexSecret(text) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %v times", name, n)
		}
	}
}

func TestMaskPrefixed(t *testing.T) {
	p, _ := NewSecretWithPrefix("acme_live_")
	body := p[len("acme_live_"):]
	b4 := body[:maskKeep]
	tests := []struct{ name, in, want string }{
		{"Mask", p, "acme_live_" + b4 + "..."},
		{"in an error", "no key " + p + " here", "no key acme_live_" + b4 + "... here"},
		{"bad checksum is masked too", "acme_live_" + body[:40] + "000000", "acme_live_" + b4 + "..."},
		{"cut short", "acme_live_" + body[:41], "acme_live_" + b4 + "..."},
		{"in a query", "/v1/x?key=" + p + "&a=b", "/v1/x?key=acme_live_" + b4 + "...&a=b"},
		{"short words stay", "snake_case_name_abc", "snake_case_name_abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			if tt.name == "Mask" {
				got = Mask(tt.in)
			} else {
				got = MaskSecrets(tt.in)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", strings.ReplaceAll(got, body, "{B}"), strings.ReplaceAll(tt.want, body, "{B}"))
			}
			if strings.Contains(got, body[maskKeep:maskKeep+20]) || strings.Contains(MaskCredentials(tt.in), body[maskKeep:maskKeep+20]) {
				t.Error("masked text shows more of the secret than its first characters")
			}
		})
	}
}

// BenchmarkValidSecret is the parse on the verification hot path, for a
// lksk_ secret and a prefixed one.
func BenchmarkValidSecret(b *testing.B) {
	old, _ := NewSecret()
	p, _ := NewSecretWithPrefix("acme_live_")
	for _, bc := range []struct{ name, s string }{{"lksk", old}, {"prefixed", p}, {"bad_checksum", old[:45] + "000000"}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ValidSecret(bc.s)
			}
		})
	}
}

func FuzzIndexSecret(f *testing.F) {
	p, _ := NewSecretWithPrefix("acme_live_")
	f.Add("x " + p)
	f.Add("a_" + strings.Repeat("Z", 46))
	f.Fuzz(func(t *testing.T, s string) {
		i, j := IndexSecret(s)
		if i >= 0 && !ValidSecret(s[i:j]) {
			t.Fatalf("IndexSecret found an invalid secret at %d", i)
		}
		if strings.Contains(MaskSecrets(s), "_") && i >= 0 && strings.Contains(MaskSecrets(s), s[i:j]) {
			t.Fatalf("MaskSecrets leaves a valid secret whole")
		}
	})
}
