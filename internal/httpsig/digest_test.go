package httpsig_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpsig"
)

// TestDigestReader reads bodies through a DigestReader, whole and one
// byte at a time: a matching body comes out whole, then io.EOF; one that
// does not match never comes out whole, and ends in DIGEST_MISMATCH.
func TestDigestReader(t *testing.T) {
	body := bytes.Repeat([]byte("signed body "), 1000)
	s256 := sha256.Sum256(body)
	tests := []struct {
		name   string
		field  string
		body   []byte
		want   latchkey.Code // "" = matches
		newErr latchkey.Code // NewDigestReader's refusal
	}{
		{name: "sha-512 matches", field: httpsig.ContentDigest(body), body: body},
		{name: "sha-256 matches", field: "sha-256=:" + base64.StdEncoding.EncodeToString(s256[:]) + ":", body: body},
		{name: "empty body matches", field: httpsig.ContentDigest(nil), body: []byte{}},
		{name: "last byte changed", field: httpsig.ContentDigest(body), body: append(bytes.Clone(body[:len(body)-1]), 'X'), want: latchkey.CodeDigestMismatch},
		{name: "a byte more", field: httpsig.ContentDigest(body), body: append(bytes.Clone(body), 'X'), want: latchkey.CodeDigestMismatch},
		{name: "a byte less", field: httpsig.ContentDigest(body), body: body[:len(body)-1], want: latchkey.CodeDigestMismatch},
		{name: "no known algorithm", field: "md5=:AAAA:", body: body, newErr: latchkey.CodeDigestMismatch},
		{name: "not a dictionary", field: "sha-512=:AAAA", body: body, newErr: latchkey.CodeMalformed},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			name := tt.name
			if oneByte {
				name += ", one byte a read"
			}
			t.Run(name, func(t *testing.T) {
				var src io.Reader = bytes.NewReader(tt.body)
				if oneByte {
					src = iotest.OneByteReader(src)
				}
				dr, err := httpsig.NewDigestReader([]string{tt.field}, src)
				if tt.newErr != "" {
					if httpsig.CodeOf(err) != tt.newErr {
						t.Fatalf("NewDigestReader: %v, want %s", err, tt.newErr)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(dr)
				if tt.want == "" {
					if err != nil || !bytes.Equal(got, tt.body) || dr.Mismatch() != nil {
						t.Fatalf("read %d of %d bytes, err %v", len(got), len(tt.body), err)
					}
					return
				}
				var he *httpsig.Error
				if !errors.As(err, &he) || he.Code != tt.want || httpsig.CodeOf(dr.Mismatch()) != tt.want {
					t.Fatalf("err %v, Mismatch %v; want %s", err, dr.Mismatch(), tt.want)
				}
				if len(got) >= len(tt.body) {
					t.Errorf("%d bytes of a %d-byte body that does not match came out", len(got), len(tt.body))
				}
			})
		}
	}
}
