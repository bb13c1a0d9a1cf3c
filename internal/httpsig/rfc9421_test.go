package httpsig

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"testing"

	"github.com/latchkey/latchkey"
)

// The keys, messages and signatures below are RFC 9421's own public test
// vectors (Appendix B.1.3, B.1.4, B.2, B.2.4 and B.2.6): published test
// data, not secrets, embedded so that this package is checked against
// signatures its authors did not make.
const (
	// RFC 9421 B.1.4 test-key-ed25519, public half.
	rfcEd25519Public = `-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----`
	// RFC 9421 B.1.3 test-key-ecc-p256, public half.
	rfcP256Public = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lf
w0EkjqF7xB4FivAxzic30tMM4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==
-----END PUBLIC KEY-----`
)

// rfcRequest is RFC 9421 B.2's test-request.
func rfcRequest() *Message {
	h := http.Header{}
	h.Set("Host", "example.com")
	h.Set("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Digest", "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:")
	h.Set("Content-Length", "18")
	return &Message{Method: "POST", Scheme: "https", Authority: "example.com", Path: "/foo", Query: "param=Value&Pet=dog", Header: h}
}

// rfcResponse is RFC 9421 B.2's test-response.
func rfcResponse() *Message {
	h := http.Header{}
	h.Set("Date", "Tue, 20 Apr 2021 02:07:56 GMT")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Digest", "sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:")
	h.Set("Content-Length", "23")
	return &Message{Status: 200, Header: h}
}

var rfcVectors = []struct {
	name, pub, input, sig string
	msg                   func() *Message
	base                  string
}{
	{
		name:  "B.2.6 ed25519",
		pub:   rfcEd25519Public,
		msg:   rfcRequest,
		input: `sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`,
		sig:   `sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:`,
		base: `"date": Tue, 20 Apr 2021 02:07:55 GMT
"@method": POST
"@path": /foo
"@authority": example.com
"content-type": application/json
"content-length": 18
"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`,
	},
	{
		name:  "B.2.4 ecdsa-p256-sha256",
		pub:   rfcP256Public,
		msg:   rfcResponse,
		input: `sig-b24=("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256"`,
		sig:   `sig-b24=:wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw==:`,
		base: `"@status": 200
"content-type": application/json
"content-digest": sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:
"content-length": 23
"@signature-params": ("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256"`,
	},
}

func TestRFC9421Vectors(t *testing.T) {
	for _, v := range rfcVectors {
		t.Run(v.name, func(t *testing.T) {
			pub, err := latchkey.ParsePublicKey(v.pub)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Parse([]string{v.input}, []string{v.sig}, "")
			if err != nil {
				t.Fatal(err)
			}
			base, err := s.Base(v.msg())
			if err != nil {
				t.Fatal(err)
			}
			if string(base) != v.base {
				t.Fatalf("signature base:\n%s\nwant (RFC 9421):\n%s", base, v.base)
			}
			if !VerifyBytes(pub, base, s.Value) {
				t.Fatal("the RFC's signature does not verify")
			}
		})
	}
}

// TestRFC9421VectorsTampered changes one thing at a time in each vector;
// none may verify.
func TestRFC9421VectorsTampered(t *testing.T) {
	tampers := []struct {
		name string
		fn   func(m *Message, input, sig *string)
	}{
		{"header value", func(m *Message, _, _ *string) { m.Header.Set("Content-Type", "text/plain") }},
		{"created", func(_ *Message, input, _ *string) {
			*input = replace(*input, "created=1618884473", "created=1618884474")
		}},
		{"keyid", func(_ *Message, input, _ *string) { *input = replace(*input, `keyid="test-key-`, `keyid="test-kez-`) }},
		{"signature byte", func(_ *Message, _, sig *string) { *sig = replace(*sig, "=:w", "=:x") }},
		{"path or status", func(m *Message, _, _ *string) { m.Path = "/bar"; m.Status = 201 }},
	}
	for _, v := range rfcVectors {
		for _, tc := range tampers {
			t.Run(v.name+"/"+tc.name, func(t *testing.T) {
				pub, err := latchkey.ParsePublicKey(v.pub)
				if err != nil {
					t.Fatal(err)
				}
				m, input, sig := v.msg(), v.input, v.sig
				if m.Status != 0 && tc.name == "path or status" {
					m.Status = 201
				}
				tc.fn(m, &input, &sig)
				s, err := Parse([]string{input}, []string{sig}, "")
				if err != nil {
					t.Fatal(err)
				}
				base, err := s.Base(m)
				if err != nil {
					t.Fatal(err)
				}
				if VerifyBytes(pub, base, s.Value) {
					t.Fatal("a tampered vector verifies")
				}
			})
		}
	}
}

func replace(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	panic("test bug: " + old + " not in " + s)
}

// BenchmarkVerifyEd25519 is the cost of judging one signed request's
// signature: parse both fields, build the base, verify Ed25519.
func BenchmarkVerifyEd25519(b *testing.B) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	pub, err := latchkey.NewPublicKey(priv.Public())
	if err != nil {
		b.Fatal(err)
	}
	m := Message{Method: "GET", Scheme: "https", Authority: "api.example.com", Path: "/shipments", Query: "page=2", Header: http.Header{}}
	if err := (&Signer{KeyID: "LKIAAAAAAAAAAAAAAAAA", Key: priv}).Sign(&m, nil); err != nil {
		b.Fatal(err)
	}
	in, sig := m.Header.Values("Signature-Input"), m.Header.Values("Signature")
	b.ReportAllocs()
	for b.Loop() {
		s, err := Parse(in, sig, "")
		if err != nil {
			b.Fatal(err)
		}
		base, err := s.Base(&m)
		if err != nil || !VerifyBytes(pub, base, s.Value) {
			b.Fatal("does not verify")
		}
	}
}

// BenchmarkEd25519Bare is crypto/ed25519.Verify alone on a signature base of
// the same size: the floor BenchmarkVerifyEd25519 is compared with.
func BenchmarkEd25519Bare(b *testing.B) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	base := make([]byte, 200)
	sig := ed25519.Sign(priv, base)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, base, sig) {
			b.Fatal("does not verify")
		}
	}
}
