package keyformat

import (
	"encoding/base64"
	"strings"
	"testing"
)

// maskCase is an input and the masked text it must give. In both, {S} is
// a secret made at run time, {B} its part after the prefix, {B4} the first
// four characters of that, {M} Mask of it, and {b64...} base64 encodings
// of it, alone and after one or more bytes.
type maskCase struct {
	name, in, want string
}

func runMaskCases(t *testing.T, mask func(string) string, cases []maskCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSecret()
			if err != nil {
				t.Fatal(err)
			}
			r := strings.NewReplacer("{S}", s, "{B}", s[len(SecretPrefix):], "{B4}", s[len(SecretPrefix):len(SecretPrefix)+maskKeep], "{M}", Mask(s),
				"{b64}", base64.StdEncoding.EncodeToString([]byte(s)),
				"{b64:}", base64.StdEncoding.EncodeToString([]byte(":"+s)),
				"{b64x:}", base64.StdEncoding.EncodeToString([]byte("x:"+s)),
				"{b64id}", base64.StdEncoding.EncodeToString([]byte("LKIAAAAAAAAAAAAAAAAA:"+s)))
			in, want := r.Replace(tc.in), r.Replace(tc.want)
			got := mask(in)
			if got != want {
				// s stands for the secret, so that the failure does not print it
				hide := strings.NewReplacer(s, "{S}", s[len(SecretPrefix):], "{B}")
				t.Errorf("mask(%q)\n got %q\nwant %q", tc.in, hide.Replace(got), tc.want)
			}
			if strings.Contains(got, s[len(SecretPrefix)+maskKeep:]) {
				t.Errorf("mask(%q) shows more of the secret than its first %d characters", tc.in, maskKeep)
			}
		})
	}
}

func TestMaskSecrets(t *testing.T) {
	runMaskCases(t, MaskSecrets, []maskCase{
		{"nothing to mask", "application \"billing\" not found", "application \"billing\" not found"},
		{"a secret", "found {S} in a gist", "found {M} in a gist"},
		{"prefix in capitals", "LKSK_{B}", "LKSK_{B4}..."},
		{"prefix in mixed case", "see lKsK_{B}.", "see lKsK_{B4}...."},
		{"two secrets back to back", "{S}{S}", "{M}_{B4}..."},
		{"a prefix inside the prefix of a secret", "lksk_lksk_{B}", "lksk_lksk_{B4}..."},
		{"a look-alike with a wrong checksum is masked too", "{S}x", "{M}"},
		{"short runs are left", "lksk_ab and lksk_[masked] and lksk_", "lksk_ab and lksk_[masked] and lksk_"},
		{"base64", "data: {b64}", "data: bGtza1..."},
		{"base64 of :secret (curl -u :SECRET)", "{b64:}", "Omxrc2tf..."},
		{"base64 of x:secret", "{b64x:}", "eDpsa3NrX..."},
		{"base64 of ID:secret", "{b64id}", base64.StdEncoding.EncodeToString([]byte("LKIAAAAAAAAAAAAAAAAA:")) + "bGtza1..."},
		{"other credentials are not MaskSecrets' business", "password=hunter2", "password=hunter2"},
	})
}

// The {S} cases of TestMaskSecrets hold for MaskCredentials too; these
// are the other shapes it masks, and what it leaves.
func TestMaskCredentials(t *testing.T) {
	whsec := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	runMaskCases(t, MaskCredentials, []maskCase{
		{"a location", "https://github.com/acme/app/blob/0123456789abcdef0123456789abcdef01234567/config.env#L3",
			"https://github.com/acme/app/blob/0123456789abcdef0123456789abcdef01234567/config.env#L3"},
		{"a secret", "found {S} in a gist", "found {M} in a gist"},
		{"access key IDs, UUIDs, digests and words stay", "LKIAABCDEFGHIJKLMNOP 0f8fad5b-d9cb-469f-a165-70867728950e " +
			"9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08 AbstractSingletonProxyFactoryBean",
			"LKIAABCDEFGHIJKLMNOP 0f8fad5b-d9cb-469f-a165-70867728950e " +
				"9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08 AbstractSingletonProxyFactoryBean"},
		{"Bearer", "Authorization: Bearer abc.def-ghi_jkl", "Authorization: Bearer ..."},
		{"Basic", "curl -H 'authorization: basic dXNlcjpodW50ZXIy'", "curl -H 'authorization: basic ...'"},
		{"the word bearer in prose", "a bearer token was pasted", "a bearer token was pasted"},
		{"another scheme", "Authorization: Token abc123", "Authorization: Token ..."},
		{"no scheme", "authorization=abc123&page=2", "authorization=...&page=2"},
		{"password=", "password=hunter2 in .env", "password=... in .env"},
		{"a variable", "export DB_PASSWORD=hunter2; export PWD=/home/me", "export DB_PASSWORD=...; export PWD=/home/me"},
		{"JSON", `{"client_secret": "hunter 2", "user": "bob"}`, `{"client_secret": "...", "user": "bob"}`},
		{"YAML", "api_key: hunter2\nname: billing", "api_key: ...\nname: billing"},
		{"a query string", "https://x.example/a?api-key=abc&sig=def&page=2", "https://x.example/a?api-key=...&sig=...&page=2"},
		{"URL user information", "postgres://app:hunter2@db.example:5432/x", "postgres://app:...@db.example:5432/x"},
		{"a user without password", "ssh://git@github.com/acme/app", "ssh://git@github.com/acme/app"},
		{"names that only look like credentials", "author=alice keyboard=us", "author=alice keyboard=us"},
		{"a webhook signing secret", "hook " + whsec + " here", "hook whsec_... here"},
		{"a token of another service", "gh tok_Ab1dEfGhIjKlMnOpQrStUvWxYz and tok_short1", "gh tok_Ab1d... and tok_short1"},
		{"a secret as a parameter", "?key={S}&x=1", "?key=...&x=1"},
		{"a secret after Bearer", "Bearer {S}", "Bearer ..."},
		{"Bearer twice", "Authorization: Bearer Bearer abcdefghij", "Authorization: Bearer ... ..."},
	})
}

// validSecrets returns each checksum-valid secret in s, with its prefix
// in any case.
func validSecrets(s string) []string {
	var out []string
	for i := 0; i+SecretLen <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(SecretPrefix)], SecretPrefix) && ValidSecret(SecretPrefix+s[i+len(SecretPrefix):i+SecretLen]) {
			out = append(out, s[i:i+SecretLen])
		}
	}
	return out
}

// FuzzMaskCredentials puts a secret made from the fuzzer's bytes, its
// prefix in a case the fuzzer picks, into the fuzzer's text. Neither mask
// may leave a checksum-valid secret in its output, nor more than the first
// four characters of the random part of one that was in the input; and
// MaskSecrets of its own output changes nothing. (MaskCredentials'
// guesses at other credentials may read masked text differently from the
// original, so it is not held to that.)
func FuzzMaskCredentials(f *testing.F) {
	f.Add("found  in a gist", []byte("0123456789ABCDEFGHIJabcdefghij0123456789"), uint16(6), uint8(0))
	f.Add("token=&Authorization: Bearer x", []byte("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"), uint16(6), uint8(5))
	f.Add("lksk_lksk_", []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), uint16(10), uint8(15))
	f.Add("https://u:@h/?password=", []byte("0000000000000000000000000000000000000000"), uint16(10), uint8(2))
	f.Fuzz(func(t *testing.T, text string, raw []byte, pos uint16, variant uint8) {
		in := text
		if len(raw) >= randomLen {
			body := make([]byte, randomLen)
			for i := range body {
				body[i] = Alphabet[int(raw[i])%len(Alphabet)]
			}
			prefix := []byte(SecretPrefix)
			for i := range 4 {
				if variant&(1<<i) != 0 {
					prefix[i] -= 'a' - 'A'
				}
			}
			secret := string(prefix) + string(body) + Checksum(string(body))
			at := int(pos) % (len(text) + 1)
			in = text[:at] + secret + text[at:]
		}
		for i, mask := range []func(string) string{MaskSecrets, MaskCredentials} {
			out := mask(in)
			if left := validSecrets(out); len(left) > 0 {
				t.Fatalf("mask(%q) = %q holds a valid secret", in, out)
			}
			for _, s := range validSecrets(in) {
				tail := s[len(SecretPrefix)+maskKeep:]
				if strings.Count(in, tail) == 1 && strings.Contains(out, tail) {
					t.Fatalf("mask(%q) = %q shows more of a secret than its first %d characters", in, out, maskKeep)
				}
			}
			if again := mask(out); i == 0 && again != out {
				t.Fatalf("masking twice changes the text: %q, then %q", out, again)
			}
		}
	})
}
