// Package httpsig verifies HTTP Message Signatures (RFC 9421) made with a
// signing key's private half, and the Content-Digest (RFC 9530) of a
// request body.
//
// It is split in two layers. Parse, Signature.Base and VerifyBytes are
// RFC 9421 as written (the RFC's Appendix B test vectors pass through
// them). Policy.Check adds what latchkey requires of a signature on top:
// which components it must cover, how fresh it must be, that its nonce is
// new and that the algorithm is the key's. Every refusal carries its own
// decision code (latchkey.Code), so a client can tell an expired signature
// from a replay or a body that does not match its digest.
//
// Structured fields (RFC 8941) are parsed and serialized by
// github.com/dunglas/httpsfv, never by hand.
package httpsig

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"

	"github.com/dunglas/httpsfv"
	"github.com/latchkey/latchkey"
)

// Error is a refused signature: the decision code, and a reason for the
// client that never holds a secret.
type Error struct {
	Code   latchkey.Code
	Reason string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Reason }

func refuse(c latchkey.Code, format string, args ...any) *Error {
	return &Error{Code: c, Reason: fmt.Sprintf(format, args...)}
}

// CodeOf returns the decision code of err: its Error's code, or MALFORMED.
func CodeOf(err error) latchkey.Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return latchkey.CodeMalformed
}

// Message is what a signature may cover: the parts of a request (or, for
// the RFC's response test vector, a status) that components name.
type Message struct {
	Method    string
	Scheme    string // "https" or "http"
	Authority string // host[:port] as the client addressed it
	Path      string // the canonical path (latchkey.CanonicalizePath)
	Query     string // without the leading "?"; "" when there is none
	Status    int    // responses only; 0 for a request
	Header    http.Header
}

// Signature is one signature of a message, with its parameters.
type Signature struct {
	Label   string
	Covered []string // component identifiers, in the order signed
	KeyID   string
	Alg     string // "" when the signer did not say
	Nonce   string // "" when absent
	Created int64  // Unix seconds; 0 when absent
	Expires int64  // Unix seconds; 0 when absent
	Value   []byte

	params string // the serialized inner list, for @signature-params
}

// MaxHeaderLen bounds Signature-Input and Signature, which are parsed
// before anything is known of the caller.
const MaxHeaderLen = 8192

// Parse reads the signature labelled label ("" = the only one, or the
// first one) from the Signature-Input and Signature field values. It
// returns a MALFORMED Error when either field is not a structured-field
// dictionary of the expected shape, when the label is in one and not the
// other, or when keyid is missing; MISSING when there is no signature.
func Parse(input, signature []string, label string) (*Signature, error) {
	if len(input) == 0 && len(signature) == 0 {
		return nil, refuse(latchkey.CodeMissing, "no Signature-Input and Signature")
	}
	if n := totalLen(input) + totalLen(signature); n > MaxHeaderLen {
		return nil, refuse(latchkey.CodeMalformed, "Signature-Input and Signature are longer than %d bytes", MaxHeaderLen)
	}
	in, err := httpsfv.UnmarshalDictionary(input)
	if err != nil {
		return nil, refuse(latchkey.CodeMalformed, "Signature-Input is not a structured-field dictionary")
	}
	sig, err := httpsfv.UnmarshalDictionary(signature)
	if err != nil {
		return nil, refuse(latchkey.CodeMalformed, "Signature is not a structured-field dictionary")
	}
	if label == "" {
		names := in.Names()
		if len(names) == 0 {
			return nil, refuse(latchkey.CodeMissing, "Signature-Input names no signature")
		}
		label = names[0]
	}
	m, ok := in.Get(label)
	if !ok {
		return nil, refuse(latchkey.CodeMalformed, "Signature-Input has no signature labelled %q", label)
	}
	il, ok := m.(httpsfv.InnerList)
	if !ok {
		return nil, refuse(latchkey.CodeMalformed, "Signature-Input %q is not an inner list", label)
	}
	sm, ok := sig.Get(label)
	if !ok {
		return nil, refuse(latchkey.CodeMalformed, "Signature has no value labelled %q", label)
	}
	si, ok := sm.(httpsfv.Item)
	if !ok {
		return nil, refuse(latchkey.CodeMalformed, "Signature %q is not a byte sequence", label)
	}
	v, ok := si.Value.([]byte)
	if !ok {
		return nil, refuse(latchkey.CodeMalformed, "Signature %q is not a byte sequence", label)
	}
	s := &Signature{Label: label, Value: v}
	seen := map[string]bool{}
	for _, it := range il.Items {
		name, ok := it.Value.(string)
		if !ok || name == "" {
			return nil, refuse(latchkey.CodeMalformed, "a covered component is not a string")
		}
		if len(it.Params.Names()) > 0 {
			return nil, refuse(latchkey.CodeMalformed, "component %q has parameters; latchkey accepts none", name)
		}
		if name != strings.ToLower(name) || seen[name] {
			return nil, refuse(latchkey.CodeMalformed, "component %q is repeated or not lower case", name)
		}
		seen[name] = true
		s.Covered = append(s.Covered, name)
	}
	for _, p := range il.Params.Names() {
		pv, _ := il.Params.Get(p)
		var ok bool
		switch p {
		case "keyid":
			s.KeyID, ok = pv.(string)
		case "alg":
			s.Alg, ok = pv.(string)
		case "nonce":
			s.Nonce, ok = pv.(string)
		case "created":
			s.Created, ok = pv.(int64)
		case "expires":
			s.Expires, ok = pv.(int64)
		default: // tag and others: signed, not judged
			ok = true
		}
		if !ok {
			return nil, refuse(latchkey.CodeMalformed, "signature parameter %q has the wrong type", p)
		}
	}
	if s.KeyID == "" {
		return nil, refuse(latchkey.CodeMalformed, "the signature has no keyid")
	}
	if s.params, err = httpsfv.Marshal(il); err != nil {
		return nil, refuse(latchkey.CodeMalformed, "Signature-Input %q cannot be serialized", label)
	}
	return s, nil
}

func totalLen(v []string) int {
	n := 0
	for _, s := range v {
		n += len(s)
	}
	return n
}

// Base returns the signature base (RFC 9421 section 2.5) of m for s. A
// component m does not have is COMPONENT_MISSING; one latchkey does not
// derive is MALFORMED.
func (s *Signature) Base(m *Message) ([]byte, error) {
	var b strings.Builder
	for _, c := range s.Covered {
		v, err := componentValue(m, c)
		if err != nil {
			return nil, err
		}
		b.WriteString(strconv.Quote(c))
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteByte('\n')
	}
	b.WriteString(`"@signature-params": `)
	b.WriteString(s.params)
	return []byte(b.String()), nil
}

func componentValue(m *Message, c string) (string, error) {
	switch c {
	case "@method":
		return m.Method, nil
	case "@scheme":
		return strings.ToLower(m.Scheme), nil
	case "@authority":
		return strings.ToLower(m.Authority), nil
	case "@path":
		return m.Path, nil
	case "@query":
		return "?" + m.Query, nil
	case "@target-uri":
		u := strings.ToLower(m.Scheme) + "://" + strings.ToLower(m.Authority) + m.Path
		if m.Query != "" {
			u += "?" + m.Query
		}
		return u, nil
	case "@request-target":
		if m.Query != "" {
			return m.Path + "?" + m.Query, nil
		}
		return m.Path, nil
	case "@status":
		if m.Status == 0 {
			return "", refuse(latchkey.CodeComponentMissing, "@status is covered but a request has no status")
		}
		return strconv.Itoa(m.Status), nil
	}
	if strings.HasPrefix(c, "@") {
		return "", refuse(latchkey.CodeMalformed, "component %q is not one latchkey derives", c)
	}
	vs := m.Header.Values(c)
	if len(vs) == 0 {
		return "", refuse(latchkey.CodeComponentMissing, "component %q is covered but the request has no %s field", c, c)
	}
	for i, v := range vs {
		vs[i] = strings.Trim(v, " \t")
	}
	return strings.Join(vs, ", "), nil
}

// VerifyBytes reports whether sig is pub's signature of base, by pub's
// algorithm (RFC 9421 sections 3.3.4 and 3.3.6).
func VerifyBytes(pub *latchkey.PublicKey, base, sig []byte) bool {
	switch k := pub.Key.(type) {
	case ed25519.PublicKey:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k, base, sig)
	case *ecdsa.PublicKey:
		if len(sig) != 64 {
			return false
		}
		h := sha256.Sum256(base)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k, h[:], r, s)
	}
	return false
}
