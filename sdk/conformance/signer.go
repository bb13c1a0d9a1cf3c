package conformance

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/httpsig"
)

// Sign is how a signed case's request is signed (request.sign in
// cases.json). The signer holds the private half of the fixture's signing
// key; runners never see it, and never sign themselves.
type Sign struct {
	// Key names the fixture key whose private half signs ("signing").
	Key string `json:"key"`
	// KeyIDOf, when set, names the fixture key whose access key ID goes
	// in keyid instead of Key's own (a bearer key: no signing key has it).
	KeyIDOf string `json:"keyid_of,omitempty"`
	// CreatedOffsetSeconds moves created from now (-3600: an hour ago,
	// outside latchkey's window).
	CreatedOffsetSeconds int `json:"created_offset_seconds,omitempty"`
	// Digest is the Content-Digest algorithm for a body: "sha-512" when
	// "", or "sha-256".
	Digest string `json:"digest,omitempty"`
	// DigestOf, when set, is digested (and signed) in place of the body
	// the request carries: a body that does not match its Content-Digest.
	DigestOf *string `json:"digest_of,omitempty"`
	// Replay has the signer send the signed request to /v1/verify once
	// itself, so that the runner's call repeats a nonce already used.
	Replay bool `json:"replay,omitempty"`
}

// SignRequest is what a runner posts to the fixture's sign_url for a
// signed case: the request as its harness will send it.
type SignRequest struct {
	Method string `json:"method"`
	// Target is the request target (path and query) after placeholders.
	Target string `json:"target"`
	// Authority is the Host the runner's harness sends (host[:port]),
	// and Scheme "http" or "https".
	Authority string `json:"authority"`
	Scheme    string `json:"scheme"`
	// Body is the request's body; nil when it has none.
	Body *string `json:"body"`
	Sign Sign    `json:"sign"`
}

// SignResponse holds the headers a runner adds to the case's request:
// Signature-Input, Signature and, with a body, Content-Digest.
type SignResponse struct {
	Headers map[string]string `json:"headers"`
}

// signingKey is the fixture's signing key, made by Prepare.
type signingKey struct {
	name string
	key  crypto.Signer
}

// newSigningKey generates an Ed25519 key pair at run time and returns it
// with its public half in PEM, as CreateAccessKey takes it.
func newSigningKey() (crypto.Signer, string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, "", err
	}
	return priv, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// Signer signs the signed cases' requests over HTTP on 127.0.0.1 (the
// fixture's sign_url, with sign_token as a Bearer credential), until
// Close.
type Signer struct {
	f   *Fixture
	srv *http.Server
}

// StartSigner starts the signer of f's signing key and sets f.SignURL
// and f.SignToken. f must come from Prepare in this process: the private
// half is never written to the fixture file.
func StartSigner(f *Fixture) (*Signer, error) {
	if f.signing == nil {
		return nil, errors.New("conformance: the fixture has no signing key (made by Prepare)")
	}
	tok := make([]byte, 32)
	if _, err := rand.Read(tok); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Signer{f: f}
	f.SignURL, f.SignToken = "http://"+ln.Addr().String()+"/sign", hex.EncodeToString(tok)
	want := sha256.Sum256([]byte("Bearer " + f.SignToken))
	s.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
		if r.Method != http.MethodPost || r.URL.Path != "/sign" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			http.Error(w, "POST /sign with the fixture's sign_token", http.StatusUnauthorized)
			return
		}
		var in SignRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&in); err != nil {
			http.Error(w, "the body is not a sign request: "+err.Error(), http.StatusBadRequest)
			return
		}
		h, err := s.sign(r.Context(), &in)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(SignResponse{Headers: h})
	})}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the signer.
func (s *Signer) Close() error { return s.srv.Close() }

// sign signs in, as Sign says, and returns the headers to add.
func (s *Signer) sign(ctx context.Context, in *SignRequest) (map[string]string, error) {
	sg := in.Sign
	if sg.Key != s.f.signing.name {
		return nil, fmt.Errorf("sign.key %q: the fixture's signing key is %q", sg.Key, s.f.signing.name)
	}
	keyid := s.f.Keys[sg.Key].AccessKeyID
	if sg.KeyIDOf != "" {
		k, ok := s.f.Keys[sg.KeyIDOf]
		if !ok || k.AccessKeyID == "" {
			return nil, fmt.Errorf("sign.keyid_of %q: no fixture key with an access key ID", sg.KeyIDOf)
		}
		keyid = k.AccessKeyID
	}
	if in.Scheme != "http" && in.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q: want http or https", in.Scheme)
	}
	if in.Authority == "" || !strings.HasPrefix(in.Target, "/") {
		return nil, errors.New("authority and an origin-form target (/path?query) are required")
	}
	digest := httpsig.ContentDigest
	switch sg.Digest {
	case "", "sha-512":
	case "sha-256":
		digest = func(b []byte) string {
			sum := sha256.Sum256(b)
			return "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
		}
	default:
		return nil, fmt.Errorf("sign.digest %q: want sha-256 or sha-512", sg.Digest)
	}
	var body []byte
	if in.Body != nil {
		body = []byte(*in.Body)
		if sg.DigestOf != nil {
			body = []byte(*sg.DigestOf)
		}
	}
	path, query, _ := strings.Cut(in.Target, "?")
	m := &httpsig.Message{Method: in.Method, Scheme: in.Scheme, Authority: in.Authority, Path: path, Query: query, Header: http.Header{}}
	off := time.Duration(sg.CreatedOffsetSeconds) * time.Second
	signer := httpsig.Signer{KeyID: keyid, Key: s.f.signing.key, Digest: digest, Now: func() time.Time { return time.Now().Add(off) }}
	if err := signer.Sign(m, body); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k := range m.Header {
		out[k] = m.Header.Get(k)
	}
	if sg.Replay {
		if err := s.spend(ctx, in, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// spend has latchkey verify the signed request once, as the verifier,
// so that its nonce is used.
func (s *Signer) spend(ctx context.Context, in *SignRequest, h map[string]string) error {
	v, err := client.New(s.f.LatchkeyURL, client.WithCredentials(s.f.Verifier.Client()))
	if err != nil {
		return err
	}
	vi := client.VerifyInput{SignatureInput: h["Signature-Input"], Signature: h["Signature"], Method: in.Method,
		Path: in.Target, Authority: in.Authority, Scheme: in.Scheme, HasBody: in.Body != nil}
	if d, ok := h["Content-Digest"]; ok {
		vi.Headers = map[string]string{"content-digest": d}
	}
	res, err := v.Verify(ctx, vi)
	if err != nil {
		return fmt.Errorf("spending the nonce: %w", err)
	}
	if !res.Valid {
		return fmt.Errorf("spending the nonce: latchkey answered %s", res.Code)
	}
	return nil
}

// SignFor asks f's signer (sign_url) to sign in, as every runner does,
// and returns the headers to add to the request.
func SignFor(ctx context.Context, f *Fixture, in *SignRequest) (map[string]string, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, f.SignURL, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	r.Header.Set("Authorization", "Bearer "+f.SignToken)
	r.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return nil, fmt.Errorf("the signer: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return nil, fmt.Errorf("the signer answered %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	var out SignResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("the signer's answer: %w", err)
	}
	return out.Headers, nil
}
