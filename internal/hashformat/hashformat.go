// Package hashformat turns the digests other systems store into the
// digests latchkey's index looks imported keys up by, and computes the
// same lookup digest from a presented secret.
//
// Every lookup digest is 32 bytes (keyformat.Digest), so one map holds
// native and imported keys alike:
//   - sha256: SHA-256(secret), exactly a native key's digest;
//   - sha256-salted: SHA-256(salt || secret), found through the key's ID;
//   - murmur32, murmur64, murmur128: the MurmurHash3 digest in its
//     big-endian bytes (as Tyk writes it in hex), zero-padded, with the
//     last byte tagging the format (1, 2, 3), so that digests of
//     different formats never meet.
//
// Input formats (what an import names) map onto these: see Inputs.
package hashformat

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
	"sync"
	"unsafe"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
	"github.com/spaolacci/murmur3"
)

// Tags of the murmur formats in a lookup digest's last byte.
const (
	tagMurmur32  = 1
	tagMurmur64  = 2
	tagMurmur128 = 3
)

var murmur32Pool = sync.Pool{New: func() any { return murmur3.New32() }}

// Lookup returns the lookup digest of secret in format f (not
// sha256-salted: see Salted). It does not allocate.
func Lookup(f latchkey.HashFormat, secret string) keyformat.Digest {
	b := unsafe.Slice(unsafe.StringData(secret), len(secret))
	var d keyformat.Digest
	switch f {
	case latchkey.HashMurmur32:
		// murmur3.Sum32 walks the input with uintptr arithmetic, which
		// the race detector's pointer checks refuse; the hash.Hash path
		// reads it through slice elements. Its hashes are pooled, as
		// making one allocates.
		h := murmur32Pool.Get().(hash.Hash32)
		h.Reset()
		h.Write(b)
		binary.BigEndian.PutUint32(d[:], h.Sum32())
		murmur32Pool.Put(h)
		d[31] = tagMurmur32
	case latchkey.HashMurmur64:
		binary.BigEndian.PutUint64(d[:], murmur3.Sum64(b))
		d[31] = tagMurmur64
	case latchkey.HashMurmur128:
		h1, h2 := murmur3.Sum128(b)
		binary.BigEndian.PutUint64(d[:], h1)
		binary.BigEndian.PutUint64(d[8:], h2)
		d[31] = tagMurmur128
	default:
		d = sha256.Sum256(b)
	}
	return d
}

// Salted returns SHA-256(salt || secret). It does not allocate for salts
// and secrets up to 256 bytes together.
func Salted(salt []byte, secret string) keyformat.Digest {
	var buf [256]byte
	in := buf[:0]
	if len(salt)+len(secret) > len(buf) {
		in = make([]byte, 0, len(salt)+len(secret))
	}
	in = append(append(in, salt...), secret...)
	return sha256.Sum256(in)
}

// Input is a digest format an import accepts.
type Input struct {
	Name   string
	Format latchkey.HashFormat
	// decode turns the text into the raw digest bytes.
	decode func(string) ([]byte, error)
	size   int
}

var inputs = []Input{
	{"sha256-hex", latchkey.HashSHA256, decodeHex, 32},
	{"sha256-base64", latchkey.HashSHA256, decodeBase64, 32},
	{"sha256-salted-hex", latchkey.HashSHA256Salted, decodeHex, 32},
	{"sha256-salted-base64", latchkey.HashSHA256Salted, decodeBase64, 32},
	{"tyk-sha256", latchkey.HashSHA256, decodeHex, 32},
	{"tyk-murmur32", latchkey.HashMurmur32, decodeHex, 4},
	{"tyk-murmur64", latchkey.HashMurmur64, decodeHex, 8},
	{"tyk-murmur128", latchkey.HashMurmur128, decodeHex, 16},
	{"unkey-sha256", latchkey.HashSHA256, decodeBase64, 32},
}

// Inputs lists the names of the input formats.
func Inputs() []string {
	out := make([]string, len(inputs))
	for i, in := range inputs {
		out[i] = in.Name
	}
	return out
}

// Parse decodes a digest written in the named input format into its
// stored format and lookup digest. Errors are plain messages for a row's
// report; they never repeat the digest.
func Parse(input, text string) (latchkey.HashFormat, keyformat.Digest, error) {
	var d keyformat.Digest
	for _, in := range inputs {
		if in.Name != input {
			continue
		}
		raw, err := in.decode(strings.TrimSpace(text))
		if err != nil {
			return "", d, fmt.Errorf("digest is not %s", in.Name)
		}
		if len(raw) != in.size {
			return "", d, fmt.Errorf("a %s digest has %d bytes, this one %d", in.Name, in.size, len(raw))
		}
		copy(d[:], raw)
		switch in.Format {
		case latchkey.HashMurmur32:
			d[31] = tagMurmur32
		case latchkey.HashMurmur64:
			d[31] = tagMurmur64
		case latchkey.HashMurmur128:
			d[31] = tagMurmur128
		}
		return in.Format, d, nil
	}
	return "", d, fmt.Errorf("unknown hash format %q; one of %s", input, strings.Join(Inputs(), ", "))
}

// TykInput returns the input format of a digest found in Tyk's Redis,
// told by its length in hex (Tyk writes every digest in hex): 8 murmur32,
// 16 murmur64, 32 murmur128, 64 sha256. ok is false for any other length:
// the Redis key then holds the raw key (hash_keys off).
func TykInput(hexDigest string) (input string, ok bool) {
	if _, err := hex.DecodeString(hexDigest); err != nil {
		return "", false
	}
	switch len(hexDigest) {
	case 8:
		return "tyk-murmur32", true
	case 16:
		return "tyk-murmur64", true
	case 32:
		return "tyk-murmur128", true
	case 64:
		return "tyk-sha256", true
	}
	return "", false
}

func decodeHex(s string) ([]byte, error) { return hex.DecodeString(s) }

// decodeBase64 takes standard or URL-safe base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}
