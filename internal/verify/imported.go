package verify

import (
	"crypto/subtle"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/hashformat"
	"github.com/latchkey/latchkey/keyformat"
)

// Hash formats of index entries. formatNative is latchkey's own key,
// reached by the parse-and-checksum path; the others are imported keys'
// (latchkey.HashFormat), each with its own lookup.
const (
	formatNative uint8 = iota
	formatSHA256
	formatSalted
	formatMurmur32
	formatMurmur64
	formatMurmur128
	formatCount
)

var formatNames = [formatCount]latchkey.HashFormat{
	formatSHA256: latchkey.HashSHA256, formatSalted: latchkey.HashSHA256Salted,
	formatMurmur32: latchkey.HashMurmur32, formatMurmur64: latchkey.HashMurmur64, formatMurmur128: latchkey.HashMurmur128,
}

// formatOf is the entry format of k.
func formatOf(k *latchkey.AccessKey) uint8 {
	if k.Imported == nil {
		return formatNative
	}
	for f, name := range formatNames {
		if name != "" && name == k.Imported.HashFormat {
			return uint8(f)
		}
	}
	// An unknown format (written by a newer version) is found by no
	// lookup: fail closed.
	return formatCount
}

// countFormat adds n to the count of format f and keeps inUse current.
// Called under ix.mu.
func (ix *Index) countFormat(f uint8, n int) {
	if f == formatNative || f >= formatCount {
		return
	}
	ix.formats[f] += n
	bit := uint32(1) << f
	if ix.formats[f] > 0 {
		ix.inUse.Or(bit)
	} else {
		ix.inUse.And(^bit)
	}
}

// HashFormats returns the imported hash formats that have at least one key.
func (ix *Index) HashFormats() []latchkey.HashFormat {
	use := ix.inUse.Load()
	var out []latchkey.HashFormat
	for f := formatSHA256; f < formatCount; f++ {
		if use&(1<<f) != 0 {
			out = append(out, formatNames[f])
		}
	}
	return out
}

// lookupImported finds the imported key whose secret this is: a secret
// that is not latchkey-shaped, and copies its entry into e. It makes one
// lookup per hash format in use (for sha256-salted, only when the caller
// named the key by id: a salt per key leaves nothing else to look up by).
// ok is false when no imported key exists at all, which costs one atomic
// load.
func (ix *Index) lookupImported(secret, id string, e *Entry) (found, ok bool) {
	use := ix.inUse.Load()
	if use == 0 {
		return false, false
	}
	for f := formatSHA256; f < formatCount; f++ {
		if use&(1<<f) == 0 {
			continue
		}
		if f == formatSalted {
			if id != "" && ix.lookupSalted(secret, id, e) {
				return true, true
			}
			continue
		}
		d := hashformat.Lookup(formatNames[f], secret)
		if ix.lookup(&d, e) && e.format == f {
			return true, true
		}
	}
	*e = Entry{}
	return false, true
}

// lookupSalted copies key id's entry into e and returns true when it is a
// sha256-salted key and SHA-256(salt || secret) is its digest.
func (ix *Index) lookupSalted(secret, id string, e *Entry) bool {
	ix.mu.Lock()
	num := ix.numOf(id)
	var stored keyformat.Digest
	if num != 0 {
		stored = ix.rec(num).digest
	}
	ix.mu.Unlock()
	if num == 0 {
		return false
	}
	if !ix.lookup(&stored, e) || e.format != formatSalted || e.rules == nil {
		return false
	}
	d := hashformat.Salted([]byte(e.rules.salt), secret)
	return subtle.ConstantTimeCompare(d[:], stored[:]) == 1
}
