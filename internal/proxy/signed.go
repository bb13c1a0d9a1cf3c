package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/httpsig"
	"github.com/latchkey/latchkey/internal/verify"
)

// DefaultSignedBodyBuffer is how much of a signed call's body the proxy
// holds to check its Content-Digest before it forwards anything.
const DefaultSignedBodyBuffer = 1 << 20

// signedBody checks the body of an allowed signed call against its
// Content-Digest (RFC 9530), which the signature covers. A body of up to
// Config.SignedBodyBuffer bytes is read whole first: one that does not
// match is refused with DIGEST_MISMATCH and nothing is sent upstream. A
// longer one streams through an httpsig.DigestReader, which holds back its
// last byte until the digest is checked: on a mismatch the upstream
// request is aborted with the body cut short, and the caller gets
// DIGEST_MISMATCH (upstreamError). It returns the request to forward, or
// nil when it has answered.
func (p *Proxy) signedBody(w http.ResponseWriter, r *http.Request) *http.Request {
	if r.Body == nil || r.Body == http.NoBody || !httpapi.Signed(r) {
		return r
	}
	field := r.Header.Values("Content-Digest")
	buf, err := io.ReadAll(io.LimitReader(r.Body, int64(p.signedBuffer)+1))
	if err != nil {
		// bodyFailed answers a stalled body 408; a body that broke off
		// otherwise gets 400, if the caller is still there to read it.
		if !bodyFailed(w, r) && r.Context().Err() == nil {
			writeBodyError(w, http.StatusBadRequest, "the request body could not be read")
		}
		return nil
	}
	if len(buf) <= p.signedBuffer {
		if err := httpsig.CheckDigest(field, buf); err != nil {
			p.refuseDigest(w, r, err)
			return nil
		}
		r.Body = io.NopCloser(bytes.NewReader(buf))
		r.ContentLength = int64(len(buf))
		return r
	}
	dr, err := httpsig.NewDigestReader(field, io.MultiReader(bytes.NewReader(buf), r.Body))
	if err != nil {
		p.refuseDigest(w, r, err)
		return nil
	}
	db := &digestBody{DigestReader: dr, body: r.Body}
	// upstreamError gets the request with the body wrapped (see bodyOf)
	r = r.WithContext(context.WithValue(r.Context(), digestKey{}, db))
	r.Body = db
	return r
}

// refuseDigest answers a signed call whose body does not match its
// digest. The body is not read further.
func (p *Proxy) refuseDigest(w http.ResponseWriter, r *http.Request, err error) {
	p.log.Debug("proxy refused a signed call's body", "method", r.Method, "code", httpsig.CodeOf(err))
	w.Header().Set("Connection", "close")
	if b := bodyOf(r); b != nil && !b.eof.Load() {
		b.leave()
	}
	httpapi.WriteDecision(w, verify.Result{Code: httpsig.CodeOf(err)})
}

type digestKey struct{}

// digestBody is a signed call's body too long to hold, checked as it
// streams.
type digestBody struct {
	*httpsig.DigestReader
	body io.ReadCloser
}

func (d *digestBody) Close() error { return d.body.Close() }

// digestFailed reports whether the call r forwarded was cut short because
// its body did not match its digest, and if so answers DIGEST_MISMATCH.
func digestFailed(w http.ResponseWriter, r *http.Request) bool {
	d, ok := r.Context().Value(digestKey{}).(*digestBody)
	if !ok || d.Mismatch() == nil {
		return false
	}
	w.Header().Set("Connection", "close")
	httpapi.WriteDecision(w, verify.Result{Code: latchkey.CodeDigestMismatch})
	return true
}
