package client

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpsig"
)

// DefaultSignedBodyBuffer is how much of a signed call's body Middleware
// holds to check its Content-Digest before the next handler runs.
const DefaultSignedBodyBuffer = 1 << 20

// signedCall reports whether r is signed with a signing key (RFC 9421)
// and carries no bearer credential, as latchkey's gateway surfaces read
// it. A signature with a credential header is two credentials.
func signedCall(r *http.Request) bool {
	h := r.Header
	return hasSignature(r) && h.Get("Authorization") == "" && h.Get("X-Api-Key") == ""
}

func hasSignature(r *http.Request) bool {
	return len(r.Header["Signature-Input"]) > 0 || len(r.Header["Signature"]) > 0
}

// serveSigned is serve for a signed call: latchkey checks the signature
// (POST /v1/verify with the call's method, path as sent, authority,
// scheme and the fields the signature covers), and the middleware checks
// the body against Content-Digest: a body of up to DefaultSignedBodyBuffer
// bytes before the next handler runs (a mismatch is 401
// DIGEST_MISMATCH), a longer one as the handler reads it (its last read
// then fails with an error instead of io.EOF). Decisions on signed calls
// are never cached: each nonce is used once.
func (m *middleware) serveSigned(next http.Handler, w http.ResponseWriter, r *http.Request, raw string, in VerifyInput) {
	in.SignatureInput = strings.Join(r.Header.Values("Signature-Input"), ", ")
	in.Signature = strings.Join(r.Header.Values("Signature"), ", ")
	in.Method, in.Path, in.Authority = r.Method, raw, r.Host
	if r.URL.RawQuery != "" {
		in.Path += "?" + r.URL.RawQuery
	}
	in.Scheme = m.o.Scheme
	if in.Scheme == "" {
		in.Scheme = "http"
		if r.TLS != nil {
			in.Scheme = "https"
		}
	}
	if m.o.Scope != nil {
		in.Scope = m.o.Scope(r)
	}
	if s, err := httpsig.Parse(r.Header.Values("Signature-Input"), r.Header.Values("Signature"), ""); err == nil {
		for _, c := range s.Covered {
			if vs := r.Header.Values(c); !strings.HasPrefix(c, "@") && len(vs) > 0 {
				if in.Headers == nil {
					in.Headers = map[string]string{}
				}
				in.Headers[c] = strings.Join(vs, ", ")
			}
		}
	}
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	in.HasBody = hasBody || len(r.Header["Content-Digest"]) > 0
	res, ok := m.ask(w, r, in)
	if !ok {
		return
	}
	if hasBody {
		field := r.Header.Values("Content-Digest")
		buf, err := io.ReadAll(io.LimitReader(r.Body, DefaultSignedBodyBuffer+1))
		if err != nil {
			refuseError(w, http.StatusBadRequest, latchkey.EINVALID, "the request body could not be read")
			return
		}
		if len(buf) <= DefaultSignedBodyBuffer {
			if err := httpsig.CheckDigest(field, buf); err != nil {
				c := httpsig.CodeOf(err)
				refuse(w, StatusForCode(c), c, "the request body does not match its Content-Digest", 0)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(buf))
		} else {
			dr, err := httpsig.NewDigestReader(field, io.MultiReader(bytes.NewReader(buf), r.Body))
			if err != nil {
				c := httpsig.CodeOf(err)
				refuse(w, StatusForCode(c), c, "the request body does not match its Content-Digest", 0)
				return
			}
			r.Body = io.NopCloser(dr)
		}
	}
	if res.RateLimit != nil {
		setRateLimit(w, res.RateLimit)
	}
	id := identityOf(res)
	next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
}
