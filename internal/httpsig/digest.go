package httpsig

import (
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"io"
)

// DigestReader checks a body against its Content-Digest as the body is
// read, for a surface that streams a body it cannot hold in memory (the
// reverse proxy, the Go middleware). It passes the body on with its last
// byte held back until the end has been read and the digest checked: a
// body that does not match ends in an *Error (DIGEST_MISMATCH) instead of
// io.EOF, and whoever reads it (an upstream request being written, a
// handler) never gets the whole of it. A transport that gets an error from
// a request body aborts the request, so the upstream sees a body cut short
// (a Content-Length not reached, a chunked body with no last chunk), never
// a complete body that does not match.
type DigestReader struct {
	r          io.Reader
	d          *digests
	h256, h512 hash.Hash
	held       byte
	hasHeld    bool
	done       bool
	err        error
}

// NewDigestReader returns a DigestReader of r against field, the
// Content-Digest field values. Like CheckDigest, it refuses a field that
// is missing (COMPONENT_MISSING), is not a dictionary (MALFORMED) or has
// neither sha-256 nor sha-512 (DIGEST_MISMATCH).
func NewDigestReader(field []string, r io.Reader) (*DigestReader, error) {
	d, err := parseDigest(field)
	if err != nil {
		return nil, err
	}
	dr := &DigestReader{r: r, d: d}
	if d.sha256 != nil {
		dr.h256 = sha256.New()
	}
	if d.sha512 != nil {
		dr.h512 = sha512.New()
	}
	return dr, nil
}

// Read implements io.Reader.
func (d *DigestReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if d.done {
			if d.err != nil {
				return 0, d.err
			}
			if d.hasHeld {
				p[0], d.hasHeld = d.held, false
				return 1, nil
			}
			return 0, io.EOF
		}
		n, err := d.r.Read(p)
		out := 0
		if n > 0 {
			d.write(p[:n])
			last := p[n-1]
			if d.hasHeld {
				copy(p[1:n], p[:n-1])
				p[0] = d.held
				out = n
			} else {
				out = n - 1
			}
			d.held, d.hasHeld = last, true
		}
		switch {
		case err == io.EOF:
			d.done = true
			d.err = d.check()
		case err != nil:
			return out, err
		}
		if out > 0 {
			return out, nil
		}
	}
}

func (d *DigestReader) write(b []byte) {
	if d.h256 != nil {
		d.h256.Write(b)
	}
	if d.h512 != nil {
		d.h512.Write(b)
	}
}

func (d *DigestReader) check() error {
	var s256 [32]byte
	var s512 [64]byte
	if d.h256 != nil {
		d.h256.Sum(s256[:0])
	}
	if d.h512 != nil {
		d.h512.Sum(s512[:0])
	}
	return d.d.match(s256, s512)
}

// Mismatch is the refusal the body ended in, once it has been read to its
// end: nil when it matched or has not been read to its end.
func (d *DigestReader) Mismatch() error { return d.err }
