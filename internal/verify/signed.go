package verify

import (
	"context"
	"errors"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpsig"
	"github.com/latchkey/latchkey/keyformat"
)

// SignedRequest is a request signed with a signing key (RFC 9421).
type SignedRequest struct {
	// Request carries what restrictions judge (IP, referrer, scope,
	// account); its Secret and AccessKeyID are not used.
	Request
	SignatureInput []string
	Signature      []string
	// Label picks one signature when there are several ("" = the first).
	Label string
	HTTP  httpsig.Request
}

// VerifySigned decides on a signed request. The order: THROTTLED,
// MISSING and MALFORMED (the signature fields), NOT_FOUND (keyid names no
// signing key of the account), then the signature (httpsig.Policy.Check:
// COMPONENT_MISSING, ALGORITHM_MISMATCH, SIGNATURE_FROM_FUTURE,
// SIGNATURE_EXPIRED, SIGNATURE_INVALID, DIGEST_MISMATCH, NONCE_REPLAYED),
// and only then, as for a bearer key whose secret matched: INACTIVE,
// EXPIRED, restrictions and the rate limit. A key's status is never told
// to a caller that has not proved it holds the key.
//
// The bearer path (Verify) never comes here: bearer keys pay nothing for
// signing keys.
func (v *Verifier) VerifySigned(ctx context.Context, req *SignedRequest) Result {
	res := v.decideSigned(ctx, req)
	if o := v.Observer; o != nil {
		o.Decided(res.Code)
	}
	return res
}

func (v *Verifier) decideSigned(ctx context.Context, req *SignedRequest) Result {
	clk := clock{v: v}
	now := clk.now() // the signature's window needs it
	ip := req.IP
	if v.Guard != nil && ip.IsValid() {
		if wait := v.Guard.blocked(ip, &clk); wait > 0 {
			return Result{Code: latchkey.CodeThrottled, RetryAfter: wait}
		}
	}
	s, err := httpsig.Parse(req.SignatureInput, req.Signature, req.Label)
	if err != nil {
		c := httpsig.CodeOf(err)
		if c != latchkey.CodeMissing {
			v.Guard.fail(ip, &clk)
		}
		return Result{Code: c}
	}
	if !keyformat.ValidID(s.KeyID) {
		v.Guard.fail(ip, &clk)
		return Result{Code: latchkey.CodeNotFound}
	}
	d := keyformat.Digest(latchkey.SigningDigest(s.KeyID))
	var res Result
	e := &res.Entry
	if !v.Index.lookup(&d, e) || !e.signing || e.ID != s.KeyID || req.Principal != e.IsPrincipal() || (req.Account != "" && req.Account != e.Account) {
		v.Guard.fail(ip, &clk)
		return Result{Code: latchkey.CodeNotFound}
	}
	if err := v.signatures().Check(ctx, s, &req.HTTP, e.rules.pub, now); err != nil {
		code := httpsig.CodeOf(err)
		var he *httpsig.Error
		if !errors.As(err, &he) {
			// The nonce store could not answer: refuse, as a replay
			// would be refused, rather than accept unchecked.
			code = latchkey.CodeNonceReplayed
		}
		if code == latchkey.CodeSignatureInvalid {
			v.Guard.fail(ip, &clk)
		}
		v.Recorder.reject(v.Index, e, now, ip, req.UserAgent, code)
		res.Code, res.Err = code, err
		return res
	}
	v.judge(&req.Request, &res, &clk)
	return res
}

func (v *Verifier) signatures() *httpsig.Policy {
	if v.Signatures != nil {
		return v.Signatures
	}
	return &defaultSignatures
}

// defaultSignatures is the policy of a Verifier built without one: the
// default window and skew, and one in-process nonce cache.
var defaultSignatures = httpsig.Policy{Nonces: &httpsig.NonceCache{}}
