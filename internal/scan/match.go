package scan

import (
	"bytes"
	"io"

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
	secret    string // the whole secret
	keyID     string // the nearest access key ID, if any
	credValue bool   // the secret is the value of latchkey_secret_access_key
}

// matcher finds secrets in a stream. It owns a read buffer and is reused by
// one worker at a time; it is not safe for concurrent use.
type matcher struct {
	buf []byte
}

func newMatcher() *matcher { return newMatcherSize(bufSize) }

// minBufSize keeps room for a candidate, its look-ahead and the context
// kept behind it when the window slides.
const minBufSize = 2*(keyformat.SecretLen+nearBytes) + 64

// newMatcherSize returns a matcher with a read window of size bytes; tests
// use small windows to put secrets across window edges.
func newMatcherSize(size int) *matcher {
	if size < minBufSize {
		panic("scan: matcher window too small")
	}
	return &matcher{buf: make([]byte, size)}
}

// scan reads r to the end and calls emit for every checksum-valid secret, in
// order. It returns the number of bytes read. When skipBinary is set and the
// first 8 KiB hold a NUL byte, it stops there and reports binary.
func (m *matcher) scan(r io.Reader, skipBinary bool, emit func(match)) (total int64, binary bool, err error) {
	buf := m.buf
	var (
		n          int   // valid bytes in buf
		base       int64 // offset in the stream of buf[0]
		from       int   // where the next prefix search starts
		lineAt     int   // newlines are counted up to here
		line       = 1   // line number at lineAt
		lineStart  int64 // stream offset where that line starts
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
			limit = n - (keyformat.SecretLen + nearBytes)
		}
		for from < limit {
			j := bytes.Index(buf[from:min(n, limit+len(secretPrefix)-1)], secretPrefix)
			if j < 0 {
				from = limit
				break
			}
			i := from + j
			from = i + 1
			if i+keyformat.SecretLen > n || !validSecret(buf[i:i+keyformat.SecretLen]) {
				continue
			}
			// "lksk_" cannot start inside a secret's base62 body.
			from = i + keyformat.SecretLen
			advance(i)
			emit(match{
				line:      line,
				col:       int(base+int64(i)-lineStart) + 1,
				secret:    string(buf[i : i+keyformat.SecretLen]),
				keyID:     nearestID(buf[:n], i),
				credValue: isCredValue(buf[:i]),
			})
		}
		if eof {
			return base + int64(n), false, nil
		}
		// Slide the window, keeping nearBytes of context behind the next
		// candidate for nearestID.
		keep := max(limit-nearBytes, 0)
		advance(max(keep, lineAt))
		copy(buf, buf[keep:n])
		n -= keep
		base += int64(keep)
		from -= keep
		lineAt -= keep
	}
}

// validSecret checks the shape cheaply before keyformat.ValidSecret checks
// the checksum, so look-alikes cost no allocation.
func validSecret(b []byte) bool {
	for _, c := range b[len(secretPrefix):] {
		if !keyformat.IsBase62(c) {
			return false
		}
	}
	return keyformat.ValidSecret(string(b))
}

// nearestID returns the access key ID closest to the secret at b[at:], within
// nearBytes and nearLines on either side, or "".
func nearestID(b []byte, at int) string {
	lo := max(at-nearBytes, 0)
	for i, lines := at-1, 0; i >= lo; i-- {
		if b[i] == '\n' {
			if lines++; lines > nearLines {
				lo = i + 1
				break
			}
		}
	}
	end := at + keyformat.SecretLen
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
