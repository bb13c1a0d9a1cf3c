package latchkey

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestNormalizeMetadata(t *testing.T) {
	big := `{"a":"` + strings.Repeat("x", MaxMetadataBytes-8) + `"}` // MaxMetadataBytes exactly
	tests := []struct {
		name, in, want string
		code           string // "" = accepted
	}{
		{name: "absent", in: "", want: ""},
		{name: "null", in: "null", want: ""},
		{name: "empty object", in: " { } ", want: ""},
		{name: "compacted", in: "{ \"plan\" : \"pro\",\n \"seats\": 5 }", want: `{"plan":"pro","seats":5}`},
		{name: "order kept", in: `{"b":1,"a":2}`, want: `{"b":1,"a":2}`},
		{name: "depth 4", in: `{"a":{"b":[{"c":1}]}}`, want: `{"a":{"b":[{"c":1}]}}`},
		{name: "at the size bound", in: big, want: big},
		{name: "depth 5", in: `{"a":{"b":[{"c":[1]}]}}`, code: EINVALID},
		{name: "array depth 5", in: `{"a":[[[[1]]]]}`, code: EINVALID},
		{name: "over the size bound", in: `{"a":"` + strings.Repeat("x", MaxMetadataBytes-7) + `"}`, code: EINVALID},
		{name: "not an object", in: `["a"]`, code: EMALFORMED},
		{name: "a string", in: `"a"`, code: EMALFORMED},
		{name: "a number", in: `1`, code: EMALFORMED},
		{name: "broken", in: `{"a":`, code: EINVALID},
		{name: "trailing data", in: `{"a":1}{"b":2}`, code: EINVALID},
		{name: "repeated key", in: `{"a":1,"a":2}`, code: EINVALID},
		{name: "repeated nested key", in: `{"a":{"b":1,"b":1}}`, code: EINVALID},
		{name: "same key in two objects", in: `{"a":{"b":1},"c":{"b":1}}`, want: `{"a":{"b":1},"c":{"b":1}}`},
		{name: "invalid UTF-8", in: "{\"a\":\"\xff\"}", code: EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeMetadata(json.RawMessage(tt.in))
			if tt.code != "" {
				if ErrorCode(err) != tt.code {
					t.Fatalf("NormalizeMetadata(%.60q) = %s, %v; want %s", tt.in, got, err, tt.code)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("NormalizeMetadata(%.60q) = %.60s, %v; want %.60s", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestMetadataHeader(t *testing.T) {
	if h := MetadataHeader(nil); h != "" {
		t.Errorf("no metadata: header %q", h)
	}
	m := json.RawMessage(`{"plan":"pro","note":"ü/?+"}`)
	h := MetadataHeader(m)
	if strings.ContainsAny(h, "+/=") {
		t.Errorf("header %q is not unpadded base64url", h)
	}
	// An independent decoder, as an upstream would use.
	b, err := base64.URLEncoding.WithPadding(base64.NoPadding).Strict().DecodeString(h)
	if err != nil || string(b) != string(m) {
		t.Errorf("decoded %q, %v; want %s", b, err, m)
	}
	max := `{"a":"` + strings.Repeat("x", MaxMetadataBytes-8) + `"}`
	if n := len(MetadataHeader(json.RawMessage(max))); n != 2731 {
		t.Errorf("the largest metadata makes a header of %d characters; the docs say 2,731", n)
	}
}

func TestValidateExternalID(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"empty is none", "", true},
		{"plain", "cus_42", true},
		{"every allowed character", "Tenant-9_a.b:c@d/e", true},
		{"longest", strings.Repeat("a", MaxExternalIDLen), true},
		{"too long", strings.Repeat("a", MaxExternalIDLen+1), false},
		{"space", "cus 42", false},
		{"newline", "cus\n42", false},
		{"comma", "a,b", false},
		{"non-ASCII", "cüs", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateExternalID(tt.in)
			if (err == nil) != tt.ok || (err != nil && ErrorCode(err) != EINVALID) {
				t.Errorf("ValidateExternalID(%q) = %v, want ok=%v", tt.in, err, tt.ok)
			}
		})
	}
}

func FuzzNormalizeMetadata(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":{"b":[1,2,{"c":null}]}}`, `{"a":1,"a":2}`, `[]`, `{`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := NormalizeMetadata(json.RawMessage(in))
		if err != nil {
			if c := ErrorCode(err); c != EINVALID && c != EMALFORMED {
				t.Fatalf("error %v is neither EINVALID nor EMALFORMED", err)
			}
			return
		}
		if got == nil {
			return
		}
		if len(got) > MaxMetadataBytes || got[0] != '{' || !json.Valid(got) {
			t.Fatalf("accepted %q as %q", in, got)
		}
		again, err := NormalizeMetadata(got)
		if err != nil || string(again) != string(got) {
			t.Fatalf("not idempotent: %q -> %q, %v", got, again, err)
		}
	})
}
