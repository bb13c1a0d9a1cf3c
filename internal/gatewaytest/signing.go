package gatewaytest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpsig"
)

// SigningKey is a signing key as its client holds it: the private half
// never leaves the test.
type SigningKey struct {
	ID, Application, Algorithm string
	Key                        crypto.Signer
}

// SigningKey registers application app (once) and creates an Active
// signing key for it, of algorithm alg (latchkey.AlgEd25519 or
// latchkey.AlgECDSAP256SHA), from a key pair made now.
func (e *Env) SigningKey(t testing.TB, app, alg string) SigningKey {
	t.Helper()
	ctx := context.Background()
	if _, err := e.Service.GetApplication(ctx, e.Operator, latchkey.DefaultAccount, app); latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
		if _, err := e.Service.CreateApplication(ctx, e.Operator, latchkey.DefaultAccount, app, "", nil); err != nil {
			t.Fatalf("creating application %s: %v", app, err)
		}
	}
	priv := NewKeyPair(t, alg)
	k, err := e.Service.CreateAccessKey(ctx, e.Operator, latchkey.DefaultAccount, app, latchkey.NewAccessKey{
		PublicKey: PublicKeyPEM(t, priv.Public())})
	if err != nil {
		t.Fatalf("creating a signing key for %s: %v", app, err)
	}
	return SigningKey{ID: k.ID, Application: app, Algorithm: alg, Key: priv}
}

// NewKeyPair makes a key pair of algorithm alg from crypto/rand.
func NewKeyPair(t testing.TB, alg string) crypto.Signer {
	t.Helper()
	switch alg {
	case latchkey.AlgEd25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	case latchkey.AlgECDSAP256SHA:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	t.Fatalf("no key pair of algorithm %q", alg)
	return nil
}

// Signing says how Sign signs, including the ways a test gets it wrong.
// Zero fields sign as the Go SDK does.
type Signing struct {
	// Covered components; nil means @method, @target-uri and, with a
	// body, content-digest.
	Covered []string
	// Created is the created parameter; zero means now.
	Created time.Time
	// Nonce is the nonce; "" means 16 random bytes, "-" none.
	Nonce string
	// Alg is the alg parameter; "" means the key's, "-" none.
	Alg string
}

// Sign signs r for k (RFC 9421) and, when body is not nil, sets its
// Content-Digest. r's URL must be absolute: its scheme, host, path and
// query are what @target-uri covers.
func Sign(t testing.TB, r *http.Request, body []byte, k SigningKey, o Signing) {
	t.Helper()
	covered := o.Covered
	if covered == nil {
		covered = []string{"@method", "@target-uri"}
		if body != nil {
			covered = append(covered, "content-digest")
		}
	}
	if body != nil {
		r.Header.Set("Content-Digest", httpsig.ContentDigest(body))
	}
	created := o.Created
	if created.IsZero() {
		created = time.Now()
	}
	nonce := o.Nonce
	if nonce == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		nonce = base64.RawURLEncoding.EncodeToString(b)
	}
	alg := o.Alg
	if alg == "" {
		alg = k.Algorithm
	}
	var in strings.Builder
	in.WriteString("sig1=(")
	for i, c := range covered {
		if i > 0 {
			in.WriteByte(' ')
		}
		in.WriteString(strconv.Quote(c))
	}
	in.WriteString(");created=" + strconv.FormatInt(created.Unix(), 10))
	if nonce != "-" {
		in.WriteString(";nonce=" + strconv.Quote(nonce))
	}
	in.WriteString(";keyid=" + strconv.Quote(k.ID))
	if alg != "-" {
		in.WriteString(";alg=" + strconv.Quote(alg))
	}
	s, err := httpsig.Parse([]string{in.String()}, []string{"sig1=:AA==:"}, "sig1")
	if err != nil {
		t.Fatalf("Signature-Input %s: %v", in.String(), err)
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	base, err := s.Base(&httpsig.Message{Method: r.Method, Scheme: r.URL.Scheme, Authority: host, Path: path, Query: r.URL.RawQuery, Header: r.Header})
	if err != nil {
		t.Fatalf("signature base: %v", err)
	}
	var sig []byte
	switch key := k.Key.(type) {
	case ed25519.PrivateKey:
		sig = ed25519.Sign(key, base)
	case *ecdsa.PrivateKey:
		h := sha256.Sum256(base)
		rr, ss, err := ecdsa.Sign(rand.Reader, key, h[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = make([]byte, 64)
		rr.FillBytes(sig[:32])
		ss.FillBytes(sig[32:])
	default:
		t.Fatalf("cannot sign with %T", k.Key)
	}
	r.Header.Set("Signature-Input", in.String())
	r.Header.Set("Signature", "sig1=:"+base64.StdEncoding.EncodeToString(sig)+":")
}

// SignedCase is a signed call and the decision every surface must reach
// on it.
type SignedCase struct {
	Name   string
	Method string // GET when ""
	Path   string // with any query
	Body   []byte
	// Header is set before the call is signed.
	Header map[string]string
	Sign   Signing
	// Tamper changes the call after it was signed: a middlebox, or an
	// attacker.
	Tamper func(r *http.Request, body *[]byte)
	// Want is the decision; WantBlind replaces it on a surface that does
	// not see the body (forward auth), when set.
	Want, WantBlind latchkey.Code
	// Replay sends the same call again: it must be NONCE_REPLAYED.
	Replay bool
}

// SignedCases are the signed calls every surface is tested with: valid
// ones (with and without a body, a clock a little fast, a header a
// middlebox added), and each way one is refused.
func SignedCases() []SignedCase {
	body := []byte(`{"parcel":42}`)
	return []SignedCase{
		{Name: "valid GET", Path: "/orders/7?page=2", Want: latchkey.CodeValid},
		{Name: "valid POST with a body", Method: "POST", Path: "/orders", Body: body, Want: latchkey.CodeValid},
		{Name: "replayed", Path: "/orders/7", Want: latchkey.CodeValid, Replay: true},
		{Name: "replayed POST", Method: "POST", Path: "/orders", Body: body, Want: latchkey.CodeValid, Replay: true},
		{Name: "expired", Path: "/orders/7", Sign: Signing{Created: time.Now().Add(-2 * time.Minute)}, Want: latchkey.CodeSignatureExpired},
		{Name: "clock 3s fast, within the skew", Path: "/orders/7", Sign: Signing{Created: time.Now().Add(3 * time.Second)}, Want: latchkey.CodeValid},
		{Name: "clock a minute fast", Path: "/orders/7", Sign: Signing{Created: time.Now().Add(time.Minute)}, Want: latchkey.CodeSignatureFromFuture},
		{Name: "body changed, digest kept", Method: "POST", Path: "/orders", Body: body,
			Tamper:    func(_ *http.Request, b *[]byte) { *b = []byte(`{"parcel":43}`) },
			Want:      latchkey.CodeDigestMismatch,
			WantBlind: latchkey.CodeValid},
		{Name: "body and digest changed", Method: "POST", Path: "/orders", Body: body,
			Tamper: func(r *http.Request, b *[]byte) {
				*b = []byte(`{"parcel":43}`)
				r.Header.Set("Content-Digest", httpsig.ContentDigest(*b))
			},
			Want: latchkey.CodeSignatureInvalid},
		{Name: "body not covered", Method: "POST", Path: "/orders", Body: body, Sign: Signing{Covered: []string{"@method", "@target-uri"}},
			Want: latchkey.CodeComponentMissing},
		{Name: "body without Content-Digest, not covered", Method: "POST", Path: "/orders", Body: body,
			Sign:   Signing{Covered: []string{"@method", "@target-uri"}},
			Tamper: func(r *http.Request, _ *[]byte) { r.Header.Del("Content-Digest") },
			Want:   latchkey.CodeComponentMissing},
		{Name: "method not covered", Path: "/orders/7", Sign: Signing{Covered: []string{"@target-uri"}}, Want: latchkey.CodeComponentMissing},
		{Name: "no nonce", Path: "/orders/7", Sign: Signing{Nonce: "-"}, Want: latchkey.CodeComponentMissing},
		{Name: "covered header removed", Path: "/orders/7", Header: map[string]string{"X-Request-Tag": "a"},
			Sign:   Signing{Covered: []string{"@method", "@target-uri", "x-request-tag"}},
			Tamper: func(r *http.Request, _ *[]byte) { r.Header.Del("X-Request-Tag") },
			Want:   latchkey.CodeComponentMissing},
		{Name: "middlebox adds a header not covered", Path: "/orders/7",
			Tamper: func(r *http.Request, _ *[]byte) {
				r.Header.Set("Via", "1.1 middlebox")
				r.Header.Set("X-Request-Tag", "mb")
			},
			Want: latchkey.CodeValid},
		{Name: "middlebox adds a value to a covered header", Path: "/orders/7", Header: map[string]string{"Accept": "application/json"},
			Sign: Signing{Covered: []string{"@method", "@target-uri", "accept"}},
			Tamper: func(r *http.Request, _ *[]byte) {
				r.Header.Add("Accept", "text/html")
			},
			Want: latchkey.CodeSignatureInvalid},
		{Name: "path changed", Path: "/orders/7",
			Tamper: func(r *http.Request, _ *[]byte) { r.URL.Path = "/orders/8" }, Want: latchkey.CodeSignatureInvalid},
		{Name: "query changed", Path: "/orders/7?page=2",
			Tamper: func(r *http.Request, _ *[]byte) { r.URL.RawQuery = "page=3" }, Want: latchkey.CodeSignatureInvalid},
		{Name: "method changed", Path: "/orders/7",
			Tamper: func(r *http.Request, _ *[]byte) { r.Method = "DELETE" }, Want: latchkey.CodeSignatureInvalid},
		{Name: "wrong algorithm", Path: "/orders/7", Sign: Signing{Alg: "hmac-sha256"}, Want: latchkey.CodeAlgorithmMismatch},
	}
}

// Surface sends a call to the surface under test and returns its
// decision. The request's URL is absolute, addressed to the surface.
type Surface func(t *testing.T, r *http.Request, body []byte) latchkey.Code

// RunSigned runs SignedCases through send, with an Ed25519 and an ECDSA
// P-256 key, then deactivates each key between two calls (a key
// deactivated mid-stream), and checks a signed call whose key was
// deleted is NOT_FOUND. base is the surface's URL ("http://host:port");
// blind says the surface does not see bodies.
func (e *Env) RunSigned(t *testing.T, base string, blind bool, send Surface) {
	RunSigned(t, e, base, blind, send)
}

// Keys makes signing keys and changes their status: an Env, or a test's
// client of a latchkey server process.
type Keys interface {
	SigningKey(t testing.TB, app, alg string) SigningKey
	SetStatus(t testing.TB, id string, s latchkey.Status)
}

// RunSigned is Env.RunSigned with the keys of ks.
func RunSigned(t *testing.T, ks Keys, base string, blind bool, send Surface) {
	for _, alg := range []string{latchkey.AlgEd25519, latchkey.AlgECDSAP256SHA} {
		t.Run(alg, func(t *testing.T) {
			k := ks.SigningKey(t, "signer-"+alg, alg)
			call := func(t *testing.T, c SignedCase) latchkey.Code {
				t.Helper()
				r, err := http.NewRequest(cmpOr(c.Method, "GET"), base+c.Path, nil)
				if err != nil {
					t.Fatal(err)
				}
				for h, v := range c.Header {
					r.Header.Set(h, v)
				}
				Sign(t, r, c.Body, k, c.Sign)
				body := c.Body
				if c.Tamper != nil {
					c.Tamper(r, &body)
				}
				got := send(t, r, body)
				if c.Replay && got == latchkey.CodeValid {
					if again := send(t, r, body); again != latchkey.CodeNonceReplayed {
						t.Errorf("replayed: %s, want NONCE_REPLAYED", again)
					}
				}
				return got
			}
			for _, c := range SignedCases() {
				t.Run(c.Name, func(t *testing.T) {
					want := c.Want
					if blind && c.WantBlind != "" {
						want = c.WantBlind
					}
					if got := call(t, c); got != want {
						t.Errorf("%s, want %s", got, want)
					}
				})
			}
			t.Run("key deactivated mid-stream", func(t *testing.T) {
				ok := SignedCase{Path: "/orders/1"}
				if got := call(t, ok); got != latchkey.CodeValid {
					t.Fatalf("before: %s", got)
				}
				ks.SetStatus(t, k.ID, latchkey.StatusInactive)
				if got := call(t, ok); got != latchkey.CodeInactive {
					t.Errorf("after deactivation: %s, want INACTIVE", got)
				}
				ks.SetStatus(t, k.ID, latchkey.StatusActive)
				if got := call(t, ok); got != latchkey.CodeValid {
					t.Errorf("active again: %s", got)
				}
			})
		})
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// PublicKeyPEM is pub as a PEM PUBLIC KEY block, as create-access-key
// --public-key-file takes it.
func PublicKeyPEM(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// Refusal is the decision code of a gateway's refusal: the code of its
// JSON error ({"error":{"code":...}}), which X-Latchkey-Code must repeat
// when the answer has one.
func Refusal(t testing.TB, resp *http.Response, body []byte) latchkey.Code {
	t.Helper()
	var e struct {
		Error struct{ Code latchkey.Code } `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if h := resp.Header.Get("X-Latchkey-Code"); h != "" && h != string(e.Error.Code) {
		t.Errorf("X-Latchkey-Code %q, body code %s", h, e.Error.Code)
	}
	return e.Error.Code
}
