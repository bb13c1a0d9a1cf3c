package keyformat

import (
	"crypto/rand"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

// Per-account prefixes. An account may choose its own prefix for the
// secrets of its applications' keys ("acme_live_", in the style of
// Stripe's "sk_live_"). Such a secret is
//
//	prefix + 40 base62 random characters + 6 base62 characters of the
//	CRC32 (IEEE) of prefix and those 40
//
// The checksum covers the prefix, so a secret whose prefix was changed
// fails it, and a scanner can find a prefixed secret offline without
// knowing the prefix: the prefix is what comes before the last 46
// characters. A "lksk_" secret keeps its fixed format: its checksum covers
// the 40 random characters only.
const (
	// MinPrefixLen and MaxPrefixLen bound the length of a prefix,
	// trailing '_' included.
	MinPrefixLen = 3
	MaxPrefixLen = 20
	// MaxSecretLen is the length of the longest secret.
	MaxSecretLen = MaxPrefixLen + bodyLen

	// bodyLen is what follows the prefix in every secret.
	bodyLen = randomLen + checksumLen
)

// ReservedPrefixes are latchkey's own: no account may choose one, or a
// prefix that starts with "lk" or ends with one of them (a rule looking for
// "lksk_" would find the secrets of "mylksk_" too).
var ReservedPrefixes = []string{SecretPrefix, "lkak_", "whsec_"}

// ValidatePrefix returns nil when p may be an account's key prefix, or an
// error that says why not (for a 4xx or a CLI message): 3 to 20 characters
// of a-z, 0-9 and '_', starting with a letter and ending with '_', and not
// latchkey's own (ReservedPrefixes).
func ValidatePrefix(p string) error {
	if len(p) < MinPrefixLen || len(p) > MaxPrefixLen {
		return fmt.Errorf("a key prefix has %d to %d characters (it has %d), such as acme_live_", MinPrefixLen, MaxPrefixLen, len(p))
	}
	if !prefixShape(p) {
		return fmt.Errorf("a key prefix is made of a-z, 0-9 and _, starts with a letter and ends with _, such as acme_live_")
	}
	if strings.HasPrefix(p, "lk") {
		return fmt.Errorf("key prefixes starting with lk are reserved for latchkey")
	}
	for _, r := range ReservedPrefixes {
		if strings.HasSuffix(p, r) {
			return fmt.Errorf("the key prefix %s is reserved for latchkey", r)
		}
	}
	return nil
}

var prefixChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['_'] = true
	return t
}()

// prefixShape reports whether p has the shape of a prefix, whatever its
// length: a-z first, '_' last, a-z, 0-9 and '_' between.
func prefixShape(p string) bool {
	if len(p) < 2 || p[0] < 'a' || p[0] > 'z' || p[len(p)-1] != '_' {
		return false
	}
	for i := 1; i < len(p)-1; i++ {
		if !prefixChar[p[i]] {
			return false
		}
	}
	return true
}

// NewSecretWithPrefix returns a new random secret with the given prefix
// ("" or SecretPrefix: a lksk_ secret). The prefix must pass
// ValidatePrefix.
func NewSecretWithPrefix(prefix string) (string, error) {
	s, err := newSecret(rand.Reader)
	if err != nil {
		return "", err
	}
	return WithPrefix(s, prefix)
}

// WithPrefix returns the secret that has the same 40 random characters as
// the secret s but prefix instead of its own, with the checksum that prefix
// calls for. "" means SecretPrefix. It returns an error, and no secret, for
// an invalid s or prefix.
func WithPrefix(s, prefix string) (string, error) {
	if !ValidSecret(s) {
		return "", fmt.Errorf("keyformat: not a valid secret")
	}
	if prefix == "" {
		prefix = SecretPrefix
	}
	if prefix != SecretPrefix {
		if err := ValidatePrefix(prefix); err != nil {
			return "", fmt.Errorf("keyformat: %w", err)
		}
	}
	random := s[len(s)-bodyLen : len(s)-checksumLen]
	buf := make([]byte, 0, len(prefix)+bodyLen)
	buf = append(buf, prefix...)
	buf = append(buf, random...)
	if prefix == SecretPrefix {
		buf = appendChecksum(buf, buf[len(prefix):])
	} else {
		buf = appendChecksum(buf, buf)
	}
	return string(buf), nil
}

// SecretPrefixOf returns the prefix of a secret: everything before its last
// 46 characters. It does not check the secret.
func SecretPrefixOf(s string) string {
	if len(s) < bodyLen {
		return ""
	}
	return s[:len(s)-bodyLen]
}

// newSecretFrom is used by tests: a secret with prefix built from r.
func newSecretFrom(r io.Reader, prefix string) (string, error) {
	s, err := newSecret(r)
	if err != nil {
		return "", err
	}
	return WithPrefix(s, prefix)
}

// checksumOK reports whether the last six characters of s are the checksum
// of covered.
func checksumOK(s, covered string) bool {
	sum := crc32.ChecksumIEEE(stringBytes(covered))
	for i := len(s) - 1; i >= len(s)-checksumLen; i-- {
		if s[i] != Alphabet[sum%62] {
			return false
		}
		sum /= 62
	}
	return true // a CRC32 always fits in six base62 digits
}

// IndexSecret returns the start and end of the first checksum-valid secret
// in s, with any prefix, or -1, -1. It needs no list of prefixes: the
// checksum of a prefixed secret covers its prefix, so each prefix-shaped
// word before a '_' and 46 base62 characters is tried. It does not
// allocate.
func IndexSecret(s string) (start, end int) {
	for off := 0; ; {
		k := strings.IndexByte(s[off:], '_')
		if k < 0 {
			return -1, -1
		}
		u := off + k // the '_' that ends a candidate prefix
		off = u + 1
		if len(s)-off < bodyLen || !base62Body(s[off:]) {
			continue
		}
		end := off + bodyLen
		// The longest candidate first: "xacme_" before "acme_" would be
		// wrong only once in four billion, and the longest is what a
		// masker must hide from.
		lo := max(0, u+1-MaxPrefixLen)
		for st := lo; st+MinPrefixLen <= u+1; st++ {
			if ValidSecret(s[st:end]) {
				return st, end
			}
		}
	}
}

// ContainsSecret reports whether s holds a checksum-valid secret with any
// prefix (IndexSecret). It does not allocate.
func ContainsSecret(s string) bool {
	i, _ := IndexSecret(s)
	return i >= 0
}
