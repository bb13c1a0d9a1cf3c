package latchkey

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"unicode/utf8"
)

// Metadata bounds. The metadata travels upstream in one header (base64url
// of the compact JSON, MetadataHeader), and nginx keeps an auth_request
// answer's headers in proxy_buffer_size (4 KiB by default): 2 KiB of JSON is
// 2,731 characters of header, which leaves room for the others.
const (
	MaxMetadataBytes = 2048 // the compact JSON, in bytes
	MaxMetadataDepth = 4    // the top object is depth 1
	MaxExternalIDLen = 128
)

// NormalizeMetadata checks a metadata document and returns its compact
// form. It must be a JSON object of valid UTF-8, with no key repeated in
// any object, at most MaxMetadataDepth levels of objects and arrays deep,
// and at most MaxMetadataBytes once compacted. An empty object or null
// returns nil: no metadata. Returns EMALFORMED for a value that is not an
// object, EINVALID otherwise.
func NormalizeMetadata(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] != '{' {
		// A wrong JSON type, as the API's decoder answers one.
		return nil, Errorf(EMALFORMED, "metadata must be a JSON object")
	}
	if !utf8.Valid(raw) {
		return nil, Errorf(EINVALID, "metadata must be valid UTF-8")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, Errorf(EINVALID, "metadata is not valid JSON")
	}
	if buf.Len() > MaxMetadataBytes {
		return nil, Errorf(EINVALID, "metadata must be at most %d bytes of compact JSON, not %d", MaxMetadataBytes, buf.Len())
	}
	if err := checkMetadataShape(buf.Bytes()); err != nil {
		return nil, err
	}
	if buf.String() == "{}" {
		return nil, nil
	}
	return json.RawMessage(buf.Bytes()), nil
}

// checkMetadataShape walks the document's tokens: depth and repeated keys.
func checkMetadataShape(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	type level struct {
		keys     map[string]struct{} // nil for an array
		wantsKey bool
	}
	var stack []level
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return Errorf(EINVALID, "metadata is not valid JSON")
		}
		top := len(stack) - 1
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if top >= 0 && stack[top].keys != nil {
					stack[top].wantsKey = true
				}
				if len(stack) == MaxMetadataDepth {
					return Errorf(EINVALID, "metadata may nest objects and arrays at most %d levels deep", MaxMetadataDepth)
				}
				l := level{}
				if d == '{' {
					l = level{keys: map[string]struct{}{}, wantsKey: true}
				}
				stack = append(stack, l)
			default:
				stack = stack[:top]
			}
			continue
		}
		if top < 0 || stack[top].keys == nil {
			continue // an array element
		}
		if !stack[top].wantsKey {
			stack[top].wantsKey = true // a value
			continue
		}
		k := tok.(string)
		if _, dup := stack[top].keys[k]; dup {
			return Errorf(EINVALID, "metadata repeats the key %q in one object", CleanText(k, 64))
		}
		stack[top].keys[k] = struct{}{}
		stack[top].wantsKey = false
	}
}

// MetadataHeader is how metadata travels in one HTTP header
// (X-Latchkey-Metadata): the compact JSON in base64url without padding
// (RFC 4648 section 5), so that no byte of it needs quoting in a header.
// "" for no metadata.
func MetadataHeader(m json.RawMessage) string {
	if len(m) == 0 {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(m)
}

// ValidateExternalID checks a key's external ID, the API provider's own
// name for its customer: 1 to MaxExternalIDLen characters of letters,
// digits and "-_.:@/", so that it travels in a header and a URL query
// unchanged.
func ValidateExternalID(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > MaxExternalIDLen {
		return Errorf(EINVALID, "external_id must be at most %d characters", MaxExternalIDLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':' || c == '@' || c == '/'
		if !ok {
			return Errorf(EINVALID, "external_id may hold only letters, digits and '-', '_', '.', ':', '@', '/'")
		}
	}
	return nil
}
