// Package keyformat generates, parses and checks latchkey access key IDs and
// secret access keys, computes the digest under which a secret is stored,
// and masks secrets (and other credentials) in text (mask.go).
//
// The format is fixed; scanners and SDKs depend on it:
//
//	access key ID      LKIA + 16 characters of RFC 4648 base32 (A-Z, 2-7)
//	secret access key  lksk_ + 40 base62 random characters
//	                        + 6 base62 characters of the CRC32 (IEEE) of those 40
//	prefixed secret    an account's prefix (acme_live_) + 40 base62 random
//	                        + 6 base62 characters of the CRC32 of prefix and those 40
//
// Base62 uses the alphabet 0-9A-Za-z. The checksum is written most
// significant digit first and left-padded with '0'. It lets a scanner or SDK
// reject typos and look-alikes offline.
package keyformat

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"hash/crc32"
	"io"
)

const (
	// IDPrefix starts every access key ID.
	IDPrefix = "LKIA"
	// IDLen is the length of an access key ID.
	IDLen = len(IDPrefix) + 16
	// SecretPrefix starts every secret access key.
	SecretPrefix = "lksk_"
	// SecretLen is the length of a secret access key.
	SecretLen = len(SecretPrefix) + randomLen + checksumLen

	randomLen   = 40
	checksumLen = 6
)

// Alphabet is the base62 alphabet, in order.
const Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Digest is the SHA-256 of a secret: the only form in which secrets are
// stored or sent anywhere.
type Digest = [sha256.Size]byte

// Sum returns the digest of a secret.
// It does not allocate.
func Sum(secret string) Digest { return sha256.Sum256(stringBytes(secret)) }

// NewID returns a new random access key ID. An error from the random source
// is returned, never ignored.
func NewID() (string, error) { return newID(rand.Reader) }

func newID(r io.Reader) (string, error) {
	var b [10]byte // 80 bits = 16 base32 characters, no padding
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("keyformat: reading random bytes: %w", err)
	}
	return IDPrefix + base32.StdEncoding.EncodeToString(b[:]), nil
}

// NewSecret returns a new random secret access key with its checksum.
func NewSecret() (string, error) { return newSecret(rand.Reader) }

func newSecret(r io.Reader) (string, error) {
	buf := make([]byte, 0, SecretLen)
	buf = append(buf, SecretPrefix...)
	// Rejection sampling keeps every character uniform: bytes >= 248
	// (4*62) would favour the first characters of the alphabet.
	var pool [64]byte
	for len(buf) < len(SecretPrefix)+randomLen {
		if _, err := io.ReadFull(r, pool[:]); err != nil {
			return "", fmt.Errorf("keyformat: reading random bytes: %w", err)
		}
		for _, c := range pool {
			if c >= 248 {
				continue
			}
			buf = append(buf, Alphabet[c%62])
			if len(buf) == len(SecretPrefix)+randomLen {
				break
			}
		}
	}
	buf = appendChecksum(buf, buf[len(SecretPrefix):])
	return string(buf), nil
}

// appendChecksum appends the 6-character base62 CRC32 of body to dst.
func appendChecksum(dst, body []byte) []byte {
	sum := crc32.ChecksumIEEE(body)
	var c [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		c[i] = Alphabet[sum%62]
		sum /= 62
	}
	return append(dst, c[:]...)
}

// Checksum returns the 6-character checksum of a 40-character body.
func Checksum(body string) string {
	return string(appendChecksum(nil, []byte(body)))
}

var base62Index = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(Alphabet); i++ {
		t[Alphabet[i]] = int8(i)
	}
	return t
}()

var base32Valid = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" {
		t[c] = true
	}
	return t
}()

// IsBase62 reports whether c is in the base62 alphabet.
func IsBase62(c byte) bool { return base62Index[c] >= 0 }

// ValidSecret reports whether s has the shape of a secret access key and a
// correct checksum: a lksk_ secret, or a secret with an account's prefix
// (prefix.go). It does not allocate.
func ValidSecret(s string) bool {
	if !SecretShaped(s) {
		return false
	}
	n := len(s) - bodyLen
	if s[:n] == SecretPrefix {
		return checksumOK(s, s[n:n+randomLen])
	}
	return checksumOK(s, s[:n+randomLen])
}

// SecretShaped reports whether s has the shape of a secret access key,
// whatever its checksum: ValidSecret without the checksum, for a caller
// that looks the secret up first and checks the checksum only when
// nothing is found (a secret whose digest is a key's has that key's
// checksum). It does not allocate.
func SecretShaped(s string) bool {
	n := len(s) - bodyLen // the prefix's length
	if n < MinPrefixLen || n > MaxPrefixLen {
		return false
	}
	return base62Body(s[n:]) && (s[:n] == SecretPrefix || prefixShape(s[:n]))
}

// ValidID reports whether s has the shape of an access key ID.
func ValidID(s string) bool {
	if len(s) != IDLen || s[:len(IDPrefix)] != IDPrefix {
		return false
	}
	for i := len(IDPrefix); i < len(s); i++ {
		if !base32Valid[s[i]] {
			return false
		}
	}
	return true
}

// Mask returns a form of a secret that is safe to print: the prefix and the
// first four characters of the random part. It never reveals more, even for
// strings that are not valid secrets.
func Mask(s string) string {
	keep := len(SecretPrefix) + 4
	if p := SecretPrefixOf(s); p != SecretPrefix && len(p) <= MaxPrefixLen && prefixShape(p) {
		keep = len(p) + 4
	}
	if len(s) <= keep {
		return SecretPrefix + "..."
	}
	return s[:keep] + "..."
}
