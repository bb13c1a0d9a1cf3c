package scan

import (
	"bytes"
	"encoding/base64"
	"io"
	"unicode/utf8"

	"github.com/latchkey/latchkey/keyformat"
)

const (
	// bufSize is the read window of a matcher. A line may be longer: the
	// window slides, so a minified file of many megabytes on one line is
	// read once, in pieces, and never held whole.
	bufSize = 256 << 10
	// sniffLen is how much of the start of a file is searched for a NUL
	// byte to tell binary content from text (the rule git uses).
	sniffLen = 8 << 10
	// An access key ID belongs to a secret when it is at most nearBytes
	// and at most nearLines lines away from it.
	nearBytes = 512
	nearLines = 3
	// credKeyLookback bounds how far back on its line a secret's
	// "latchkey_secret_access_key =" is looked for.
	credKeyLookback = 256
)

// Secrets are also found base64-encoded where the encoding starts with
// them: a Kubernetes Secret's data value (base64 of the secret) and an HTTP
// Basic credential (base64 of "ID:secret", which DESIGN.md allows).
const (
	b64SecretLen = 68 // base64 of a secret (51 bytes), no padding
	b64BasicLen  = 96 // base64 of "LKIA...:lksk_..." (72 bytes)
	// lookahead is what a candidate needs after it: the longest
	// encoding and the bytes searched for an access key ID.
	lookahead = b64BasicLen + nearBytes
)

// Kinds of candidates, in the order of defaultNeedles. Needles after
// these are the prefixes of Options.Prefixes, plain too.
const (
	plain = iota
	b64Secret
	b64Basic
)

// A needle starts a kind of candidate: full is what the candidate starts
// with, search the part of it looked for with bytes.Index, off bytes into
// full. bytes.Index is fastest when the first byte of what it looks for is
// rare: in source code "ksk_" is found three times faster than "lksk_" ('l'
// is everywhere) and "Gtza1" six times faster than "bGtza1".
type needle struct {
	full, search []byte
	off          int
	size         int // of a plain candidate: prefix and 46 characters
}

var defaultNeedles = [...]needle{
	plain:     {[]byte(keyformat.SecretPrefix), []byte("ksk_"), 1, keyformat.SecretLen},
	b64Secret: {[]byte("bGtza1"), []byte("Gtza1"), 1, 0}, // base64 of "lksk_", whatever follows
	b64Basic:  {[]byte("TEtJQ"), []byte("JQ"), 3, 0},     // base64 of "LKIA", whatever follows
}

// needlesFor returns the default needles and one for each account key
// prefix (acme_live_) that is not "lksk_", each once. Prefixed secrets are
// found as they are, not base64-encoded.
func needlesFor(prefixes []string) []needle {
	out := defaultNeedles[:]
	seen := map[string]bool{keyformat.SecretPrefix: true}
	for _, p := range prefixes {
		if seen[p] || len(p) < 2 {
			continue
		}
		seen[p] = true
		// As with "ksk_", skipping the first byte finds the rarer rest.
		out = append(out, needle{full: []byte(p), search: []byte(p[1:]), off: 1, size: len(p) + keyformat.SecretLen - len(keyformat.SecretPrefix)})
	}
	return out
}

// find returns the first position i in [from, limit) where nd.full starts
// in b, or -1.
func (nd needle) find(b []byte, from, limit int) int {
	for from < limit {
		lo, hi := from+nd.off, min(len(b), limit+nd.off+len(nd.search)-1)
		if lo >= hi {
			return -1
		}
		j := bytes.Index(b[lo:hi], nd.search)
		if j < 0 {
			return -1
		}
		i := lo + j - nd.off
		if i+len(nd.full) <= len(b) && bytes.Equal(b[i:i+len(nd.full)], nd.full) {
			return i
		}
		from = i + 1
	}
	return -1
}

var (
	secretPrefix = []byte(keyformat.SecretPrefix)
	idPrefix     = []byte(keyformat.IDPrefix)
	credKey      = []byte("latchkey_secret_access_key")
)

// match is one secret found in a stream. It holds the secret itself, so it
// never leaves the package: a Finding carries only the masked form and the
// digest.
type match struct {
	line, col int    // 1-based; col counts bytes
	col16     int    // col in UTF-16 code units, SARIF's default (see utf16Units)
	size      int    // bytes the secret takes as written: all ASCII
	secret    string // the whole secret
	keyID     string // the nearest access key ID, if any
	credValue bool   // the secret is the value of latchkey_secret_access_key
	encoding  string // "" (as is), "base64" or "basic" (base64 of ID:secret)
}

// matcher finds secrets in a stream. It owns a read buffer and is reused by
// one worker at a time; it is not safe for concurrent use.
type matcher struct {
	buf     []byte
	needles []needle
	next    []int // per needle: next position, -1 none, -2 not searched
}

func newMatcher() *matcher { return newMatcherSize(bufSize) }

// minBufSize keeps room for a candidate, its look-ahead and the context
// kept behind it when the window slides.
const minBufSize = 2*lookahead + 64

// newMatcherSize returns a matcher with a read window of size bytes; tests
// use small windows to put secrets across window edges.
func newMatcherSize(size int) *matcher {
	if size < minBufSize {
		panic("scan: matcher window too small")
	}
	return &matcher{buf: make([]byte, size), needles: defaultNeedles[:], next: make([]int, len(defaultNeedles))}
}

// withNeedles makes m look for nds.
func (m *matcher) withNeedles(nds []needle) *matcher {
	m.needles, m.next = nds, make([]int, len(nds))
	return m
}

// scan reads r to the end and calls emit for every checksum-valid secret, in
// order. It returns the number of bytes read. When skipBinary is set and the
// first 8 KiB hold a NUL byte, it stops there and reports binary.
func (m *matcher) scan(r io.Reader, skipBinary bool, emit func(match)) (total int64, binary bool, err error) {
	buf := m.buf
	var (
		n         int   // valid bytes in buf
		base      int64 // offset in the stream of buf[0]
		from      int   // where the next prefix search starts
		lineAt    int   // newlines are counted up to here
		line      = 1   // line number at lineAt
		lineStart int64 // stream offset where that line starts
		// UTF-16 code units of the current line before unitsAt, for a
		// line that started before the window: its start is gone.
		lineUnits  int
		unitsAt    int64
		eof, first = false, true
	)
	// advance counts the newlines in buf[lineAt:to].
	advance := func(to int) {
		seg := buf[lineAt:to]
		if c := bytes.Count(seg, []byte{'\n'}); c > 0 {
			line += c
			lineStart = base + int64(lineAt+bytes.LastIndexByte(seg, '\n')+1)
		}
		lineAt = to
	}
	for {
		for n < len(buf) && !eof {
			k, rerr := r.Read(buf[n:])
			n += k
			if rerr == io.EOF {
				eof = true
			} else if rerr != nil {
				return base + int64(n), false, rerr
			}
		}
		if first {
			first = false
			if skipBinary && bytes.IndexByte(buf[:min(n, sniffLen)], 0) >= 0 {
				return int64(n), true, nil
			}
		}
		// A candidate starting before limit has all the look-ahead it
		// needs (the secret and the bytes after it) in the buffer.
		limit := n
		if !eof {
			limit = n - lookahead
		}
		next := m.next
		for k := range next {
			next[k] = -2
		}
		for from < limit {
			best := -1
			for k, nd := range m.needles {
				if next[k] == -2 || next[k] >= 0 && next[k] < from {
					next[k] = nd.find(buf[:n], from, limit)
				}
				if next[k] >= 0 && (best < 0 || next[k] < next[best]) {
					best = k
				}
			}
			if best < 0 {
				from = limit
				break
			}
			i := next[best]
			from = i + 1
			kind := best
			if kind > b64Basic {
				kind = plain // an account's prefix
			}
			mt, size, ok := decodeAt(buf[:n], i, kind, m.needles[best].size, base == 0)
			if !ok {
				continue
			}
			// No needle can start inside what was matched.
			from = i + size
			advance(i)
			mt.line, mt.col, mt.size = line, int(base+int64(i)-lineStart)+1, size
			if unitsAt < lineStart {
				unitsAt, lineUnits = lineStart, 0
			}
			u, _ := utf16Units(buf[:n], int(unitsAt-base), i)
			mt.col16 = lineUnits + u + 1
			if mt.keyID == "" {
				mt.keyID = nearestID(buf[:n], i, i+size)
			}
			emit(mt)
		}
		if eof {
			return base + int64(n), false, nil
		}
		// Slide the window, keeping nearBytes of context behind the next
		// candidate for nearestID.
		keep := max(limit-nearBytes, 0)
		advance(max(keep, lineAt))
		// What leaves the window of the current line is counted now.
		if unitsAt < lineStart {
			unitsAt, lineUnits = lineStart, 0
		}
		if unitsAt < base+int64(keep) {
			u, end := utf16Units(buf[:n], int(unitsAt-base), keep)
			lineUnits += u
			unitsAt = base + int64(end)
		}
		copy(buf, buf[keep:n])
		n -= keep
		base += int64(keep)
		from -= keep
		lineAt -= keep
	}
}

// utf16Units counts the UTF-16 code units of b[from:to] read as UTF-8,
// an invalid byte counting as one (U+FFFD), as editors and SARIF viewers
// count columns. A character that starts before to and continues past it
// is read whole from b; end is where counting stopped.
func utf16Units(b []byte, from, to int) (units, end int) {
	i := from
	for i < to {
		if b[i] < utf8.RuneSelf {
			units++
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		units++
		if r > 0xFFFF {
			units++ // a surrogate pair
		}
		i += size
	}
	return units, i
}

// decodeAt checks the candidate of kind at b[i:] and returns the match
// (without its position) and how many bytes it covers. An encoded candidate
// must start a base64 word: inside one its alignment is unknown. atStart
// says b[0] is the start of the stream. plainSize is the length of a plain
// candidate's secret (its prefix and 46 characters).
func decodeAt(b []byte, i, kind, plainSize int, atStart bool) (match, int, bool) {
	if kind == plain {
		if i+plainSize > len(b) || !validSecret(b[i:i+plainSize]) {
			return match{}, 0, false
		}
		return match{secret: string(b[i : i+plainSize]), credValue: isCredValue(b[:i])}, plainSize, true
	}
	if i > 0 && isBase64(b[i-1]) || i == 0 && !atStart {
		return match{}, 0, false
	}
	size := b64SecretLen
	if kind == b64Basic {
		size = b64BasicLen
	}
	if i+size > len(b) {
		return match{}, 0, false
	}
	var d [b64BasicLen / 4 * 3]byte
	n, err := base64.StdEncoding.Decode(d[:], b[i:i+size])
	if err != nil {
		return match{}, 0, false
	}
	dec := d[:n]
	if kind == b64Secret {
		if !validSecret(dec) {
			return match{}, 0, false
		}
		return match{secret: string(dec), encoding: "base64"}, size, true
	}
	id, sec := dec[:keyformat.IDLen], dec[keyformat.IDLen+1:]
	if dec[keyformat.IDLen] != ':' || !keyformat.ValidID(string(id)) || !validSecret(sec) {
		return match{}, 0, false
	}
	return match{secret: string(sec), keyID: string(id), encoding: "basic"}, size, true
}

func isBase64(c byte) bool { return isAlnum(c) || c == '+' || c == '/' }

// validSecret checks the shape cheaply before keyformat.ValidSecret checks
// the checksum, so look-alikes cost no allocation.
func validSecret(b []byte) bool {
	if len(b) < keyformat.SecretLen-len(secretPrefix) {
		return false
	}
	for _, c := range b[len(b)-(keyformat.SecretLen-len(secretPrefix)):] {
		if !keyformat.IsBase62(c) {
			return false
		}
	}
	return keyformat.ValidSecret(string(b))
}

// nearestID returns the access key ID closest to the secret at b[at:end],
// within nearBytes and nearLines on either side, or "".
func nearestID(b []byte, at, end int) string {
	lo := max(at-nearBytes, 0)
	for i, lines := at-1, 0; i >= lo; i-- {
		if b[i] == '\n' {
			if lines++; lines > nearLines {
				lo = i + 1
				break
			}
		}
	}
	hi := min(end+nearBytes, len(b))
	for i, lines := end, 0; i < hi; i++ {
		if b[i] == '\n' {
			if lines++; lines > nearLines {
				hi = i
				break
			}
		}
	}
	best, bestDist := "", -1
	for i := lo; i < hi; {
		j := bytes.Index(b[i:hi], idPrefix)
		if j < 0 {
			break
		}
		k := i + j
		i = k + 1
		if k+keyformat.IDLen > hi || !isIDAt(b, k) {
			continue
		}
		d := at - (k + keyformat.IDLen)
		if k > at {
			d = k - end
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = string(b[k:k+keyformat.IDLen]), d
		}
	}
	return best
}

// isIDAt reports whether an access key ID stands alone at b[k:]: an ID has
// no checksum, so it must not be part of a longer word.
func isIDAt(b []byte, k int) bool {
	end := k + keyformat.IDLen
	if k > 0 && isAlnum(b[k-1]) || end < len(b) && isAlnum(b[end]) {
		return false
	}
	return keyformat.ValidID(string(b[k:end]))
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

// isCredValue reports whether before (the bytes that precede a secret) ends
// with "latchkey_secret_access_key =", as in a credentials file.
func isCredValue(before []byte) bool {
	if len(before) > credKeyLookback {
		before = before[len(before)-credKeyLookback:]
	}
	if i := bytes.LastIndexByte(before, '\n'); i >= 0 {
		before = before[i+1:]
	}
	t := bytes.TrimRight(before, " \t\"'")
	if !bytes.HasSuffix(t, []byte{'='}) {
		return false
	}
	t = bytes.TrimRight(t[:len(t)-1], " \t")
	return bytes.HasSuffix(t, credKey)
}
