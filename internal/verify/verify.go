package verify

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/netip"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// Request is a credential presented for verification, with what is known of
// the call that carried it.
type Request struct {
	Secret      string
	AccessKeyID string // optional; when given it must be the secret's key
	IP          netip.Addr
	UserAgent   string
	Referrer    string

	// Account, when not empty, limits the answer to keys of that account:
	// a key of another account is NOT_FOUND.
	Account string
	// Principal asks for an admin principal's key instead of an
	// application's.
	Principal bool
}

// Result is the decision. Entry is set when the credential matched a key of
// the requested kind and account, whatever the code.
type Result struct {
	Code  latchkey.Code
	Entry *Entry
}

// Valid reports whether the decision lets the call through.
func (r Result) Valid() bool { return r.Code == latchkey.CodeValid }

// Verifier decides on credentials using the index only.
type Verifier struct {
	Index    *Index
	Recorder *Recorder
	Now      func() time.Time
}

// New returns a verifier over ix that records usage with rec.
func New(ix *Index, rec *Recorder) *Verifier {
	return &Verifier{Index: ix, Recorder: rec, Now: time.Now}
}

// Verify decides on a credential. It never touches the store and does not
// allocate. Unknown keys, keys of another account or kind, and a wrong
// access key ID all give NOT_FOUND: from outside they look the same.
func (v *Verifier) Verify(req *Request) Result {
	if req.Secret == "" {
		return Result{Code: latchkey.CodeMissing}
	}
	if !keyformat.ValidSecret(req.Secret) {
		return Result{Code: latchkey.CodeMalformed}
	}
	d := digest(req.Secret)
	e := v.Index.Lookup(&d)
	if e == nil {
		return Result{Code: latchkey.CodeNotFound}
	}
	if req.AccessKeyID != "" && subtle.ConstantTimeCompare([]byte(req.AccessKeyID), []byte(e.ID)) != 1 {
		return Result{Code: latchkey.CodeNotFound}
	}
	if req.Principal != e.IsPrincipal() || (req.Account != "" && req.Account != e.Account) {
		return Result{Code: latchkey.CodeNotFound}
	}
	now := v.Now()
	switch {
	case !e.Active:
		v.Recorder.reject(e.usage, now, req.IP, req.UserAgent, latchkey.CodeInactive)
		return Result{Code: latchkey.CodeInactive, Entry: e}
	case e.expired(now):
		v.Recorder.reject(e.usage, now, req.IP, req.UserAgent, latchkey.CodeExpired)
		return Result{Code: latchkey.CodeExpired, Entry: e}
	}
	v.Recorder.use(e.usage, now, req.IP, req.UserAgent)
	return Result{Code: latchkey.CodeValid, Entry: e}
}

// digest is keyformat.Sum of a string already checked to be a secret. It
// hashes a copy on the stack: converting a string longer than 32 bytes to
// []byte, as keyformat.Sum does, puts the copy on the heap.
func digest(secret string) keyformat.Digest {
	if len(secret) != keyformat.SecretLen {
		return keyformat.Sum(secret)
	}
	var b [keyformat.SecretLen]byte
	copy(b[:], secret)
	return sha256.Sum256(b[:])
}

// Find returns the entry whose secret this is, without deciding or
// recording anything. It is for the URL tripwire, which must flag a key
// whatever its state.
func (v *Verifier) Find(secret string) *Entry {
	if !keyformat.ValidSecret(secret) {
		return nil
	}
	d := keyformat.Sum(secret)
	return v.Index.Lookup(&d)
}
