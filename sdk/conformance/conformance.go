// Package conformance holds the middleware conformance suite that the Go,
// TypeScript and Python SDKs all run: the cases (cases.json, embedded here),
// the fixture that a runner reads (the latchkey server, the admin and
// verifier credentials, and the keys the cases name), and Prepare, which
// creates that fixture's keys on a running latchkey server.
//
// The fixture holds secrets: it is made at run time and never committed,
// and runners never print a substituted value. README.md describes the
// format for the runners of other languages.
package conformance

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/keyformat"
)

//go:embed cases.json
var casesJSON []byte

// Version is the version of the cases and fixture formats.
const Version = 2

// DefaultTimeout is the fixture's TimeoutMS: how long a runner's middleware
// waits for latchkey before it answers 503. The slow endpoint never answers
// within it.
const DefaultTimeout = time.Second

// Suite is the content of cases.json.
type Suite struct {
	Version int    `json:"version"`
	About   string `json:"about"`
	Cases   []Case `json:"cases"`
}

// Case is one call through a protected route and the answer it must get.
type Case struct {
	Name  string `json:"name"`
	About string `json:"about"`
	// Key names the fixture key whose values fill the placeholders; ""
	// when the case needs none.
	Key string `json:"key"`
	// Latchkey is where the middleware sends its verify calls: "up",
	// "unreachable" or "slow".
	Latchkey string `json:"latchkey"`
	// Scope is the scope the protected route requires ("" for none).
	Scope   string  `json:"scope"`
	Request Request `json:"request"`
	Expect  Expect  `json:"expect"`
}

// Request is the call, with placeholders in Target and header values.
type Request struct {
	Method   string            `json:"method"`
	Target   string            `json:"target"`
	ClientIP string            `json:"client_ip"`
	Headers  map[string]string `json:"headers"`
	// Body is the request's body; nil (absent) when it has none.
	Body *string `json:"body,omitempty"`
	// Sign, when set, has the runner get the request signed by the
	// fixture's signer (sign_url) and add the headers it answers.
	Sign *Sign `json:"sign,omitempty"`
}

// Expect is the answer a case must get.
type Expect struct {
	Status int `json:"status"`
	// ErrorCode is the code in the {"error":{"code","message"}} body; ""
	// (null in the file) when the call passes.
	ErrorCode      string            `json:"error_code"`
	Headers        map[string]string `json:"headers"`
	HeadersPresent []string          `json:"headers_present"`
	HeadersAbsent  []string          `json:"headers_absent"`
	// Handler is what the protected handler saw; nil when it must not run.
	Handler *Handler `json:"handler"`
	// MaxMS, when set, bounds how long the answer may take.
	MaxMS int `json:"max_ms"`
}

// Handler is what the protected handler must have seen.
type Handler struct {
	Identity      Identity `json:"identity"`
	Method        string   `json:"method"`
	Path          string   `json:"path"`
	HeadersAbsent []string `json:"headers_absent"`
	// Body, when set, is the body the handler read, byte for byte.
	Body *string `json:"body,omitempty"`
}

// Identity is the caller as the protected handler sees it.
type Identity struct {
	AccessKeyID string `json:"access_key_id"`
	Application string `json:"application"`
	Account     string `json:"account"`
}

// Cases returns the suite embedded from cases.json.
func Cases() (*Suite, error) {
	var s Suite
	if err := json.Unmarshal(casesJSON, &s); err != nil {
		return nil, fmt.Errorf("cases.json: %w", err)
	}
	if s.Version != Version {
		return nil, fmt.Errorf("cases.json: version %d, want %d", s.Version, Version)
	}
	return &s, nil
}

// Fixture is what a runner needs: written by the setup program as JSON, or
// made in process by a Go test with Prepare.
type Fixture struct {
	Version int `json:"version"`
	// LatchkeyURL is a running latchkey server; UnreachableURL is an
	// address where nothing listens; SlowURL accepts calls and never
	// answers within TimeoutMS.
	LatchkeyURL    string `json:"latchkey_url"`
	UnreachableURL string `json:"unreachable_url"`
	SlowURL        string `json:"slow_url"`
	// TimeoutMS is the verify timeout a runner gives its middleware.
	TimeoutMS int `json:"timeout_ms"`
	// Admin is an operator's key, for lifecycle tests; Verifier is the
	// key the middleware verifies with (role verifier).
	Admin    Credentials    `json:"admin"`
	Verifier Credentials    `json:"verifier"`
	Keys     map[string]Key `json:"keys"`
	// SignURL is the signer of the signed cases (POST, see SignRequest),
	// with SignToken as its Bearer credential; the key it signs with is
	// Keys["signing"], a signing key whose private half only the signer
	// holds.
	SignURL   string `json:"sign_url"`
	SignToken string `json:"sign_token"`

	signing *signingKey
}

// Credentials are a principal's access key.
type Credentials struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
}

// Client returns them as the Go client's credentials.
func (c Credentials) Client() client.Credentials {
	return client.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey}
}

// Key is one key a case may name. AccessKeyID and Application are empty
// for a secret latchkey never issued.
type Key struct {
	AccessKeyID     string `json:"access_key_id,omitempty"`
	SecretAccessKey string `json:"secret_access_key"`
	Application     string `json:"application,omitempty"`
}

// keySpecs are the application keys Prepare creates, by fixture name.
var keySpecs = []struct {
	name     string
	inactive bool
	r        *latchkey.Restrictions
	quota    *latchkey.Quota
}{
	{name: "active"},
	{name: "other"},
	{name: "inactive", inactive: true},
	{name: "ip_restricted", r: &latchkey.Restrictions{AllowedIPs: []string{"192.0.2.0/24"}}},
	{name: "referrer_restricted", r: &latchkey.Restrictions{AllowedReferrers: []string{"https://shop.example.com/*"}}},
	{name: "app_restricted", r: &latchkey.Restrictions{IOSBundleIDs: []string{"com.example.shop"}}},
	{name: "scope_limited", r: &latchkey.Restrictions{Scopes: []string{"orders:read"}}},
	// One token, refilled every 10000 seconds: Prepare spends it, so
	// every call in the next hours is RATE_LIMITED.
	{name: "rate_limited", r: &latchkey.Restrictions{RateLimit: &latchkey.RateLimit{PerSecond: 0.0001, Burst: 1}}},
	{name: "metered", r: &latchkey.Restrictions{RateLimit: &latchkey.RateLimit{PerMinute: 100000}}},
	// A quota of one call, without refill: Prepare spends it, so every
	// later call is QUOTA_EXCEEDED.
	{name: "quota_spent", quota: &latchkey.Quota{Remaining: 1}},
}

// Prepare creates the fixture's verifier principal and keys on the
// latchkey server at url, as the operator admin. Each key has its own
// application, named "conformance-" and the key's name.
func Prepare(ctx context.Context, url string, admin client.Credentials) (*Fixture, error) {
	c, err := client.New(url, client.WithCredentials(admin), client.WithUserAgent("latchkey-conformance"))
	if err != nil {
		return nil, err
	}
	f := &Fixture{Version: Version, LatchkeyURL: url, TimeoutMS: int(DefaultTimeout / time.Millisecond),
		Admin: Credentials{admin.AccessKeyID, admin.SecretAccessKey}, Keys: map[string]Key{}}
	p, err := c.CreatePrincipal(ctx, client.CreatePrincipalInput{Name: "conformance-verifier", Role: latchkey.RoleVerifier})
	if err != nil {
		return nil, fmt.Errorf("creating the verifier principal: %w", err)
	}
	f.Verifier = Credentials{p.AccessKey.ID, p.AccessKey.SecretAccessKey}
	for _, s := range keySpecs {
		app := "conformance-" + strings.ReplaceAll(s.name, "_", "-")
		if _, err := c.CreateApplication(ctx, client.CreateApplicationInput{Name: app}); err != nil {
			return nil, fmt.Errorf("creating application %s: %w", app, err)
		}
		k, err := c.CreateAccessKey(ctx, client.CreateAccessKeyInput{Application: app, Restrictions: s.r, Quota: s.quota})
		if err != nil {
			return nil, fmt.Errorf("creating the key of %s: %w", app, err)
		}
		if s.inactive {
			st := latchkey.StatusInactive
			if _, err := c.UpdateAccessKey(ctx, k.ID, latchkey.AccessKeyUpdate{Status: &st}); err != nil {
				return nil, fmt.Errorf("deactivating the key of %s: %w", app, err)
			}
		}
		f.Keys[s.name] = Key{AccessKeyID: k.ID, SecretAccessKey: k.SecretAccessKey, Application: app}
	}
	v, err := client.New(url, client.WithCredentials(f.Verifier.Client()))
	if err != nil {
		return nil, err
	}
	res, err := v.Verify(ctx, client.VerifyInput{Key: f.Keys["rate_limited"].SecretAccessKey})
	if err != nil || !res.Valid {
		return nil, fmt.Errorf("spending the rate_limited key's token: %+v, %v", res, err)
	}
	res, err = v.Verify(ctx, client.VerifyInput{Key: f.Keys["quota_spent"].SecretAccessKey})
	if err != nil || !res.Valid {
		return nil, fmt.Errorf("spending the quota_spent key's quota: %+v, %v", res, err)
	}
	unknown, err := keyformat.NewSecret()
	if err != nil {
		return nil, err
	}
	f.Keys["unknown"] = Key{SecretAccessKey: unknown}
	bad, err := keyformat.NewSecret()
	if err != nil {
		return nil, err
	}
	f.Keys["bad_checksum"] = Key{SecretAccessKey: breakChecksum(bad)}
	// The signing key: an Ed25519 key pair made now; latchkey gets its
	// public half, the signer keeps the private half in memory.
	priv, pub, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	if _, err := c.CreateApplication(ctx, client.CreateApplicationInput{Name: "conformance-signing"}); err != nil {
		return nil, fmt.Errorf("creating application conformance-signing: %w", err)
	}
	sk, err := c.CreateAccessKey(ctx, client.CreateAccessKeyInput{Application: "conformance-signing", PublicKey: pub})
	if err != nil {
		return nil, fmt.Errorf("creating the signing key: %w", err)
	}
	f.Keys["signing"] = Key{AccessKeyID: sk.ID, Application: "conformance-signing"}
	f.signing = &signingKey{name: "signing", key: priv}
	return f, nil
}

// breakChecksum changes the last checksum character of a secret.
func breakChecksum(s string) string {
	last := s[len(s)-1]
	i := strings.IndexByte(keyformat.Alphabet, last)
	return s[:len(s)-1] + string(keyformat.Alphabet[(i+1)%len(keyformat.Alphabet)])
}

// Endpoints are the fixture's two failing latchkey endpoints, listening
// until Close.
type Endpoints struct {
	UnreachableURL string
	SlowURL        string
	slow           *http.Server
	done           chan struct{}
}

// StartEndpoints starts the slow endpoint on 127.0.0.1 and finds an
// address where nothing listens. The slow endpoint holds each call until
// the caller gives up, or for a minute at most.
func StartEndpoints() (*Endpoints, error) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &Endpoints{UnreachableURL: "http://" + dead.Addr().String(), done: make(chan struct{})}
	dead.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e.SlowURL = "http://" + ln.Addr().String()
	e.slow = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-e.done:
		case <-time.After(time.Minute):
		}
		http.Error(w, "too late", http.StatusGatewayTimeout)
	})}
	go func() { _ = e.slow.Serve(ln) }()
	return e, nil
}

// Close stops the slow endpoint.
func (e *Endpoints) Close() error {
	close(e.done)
	return e.slow.Close()
}

// Fill sets the fixture's failing endpoints from e.
func (f *Fixture) Fill(e *Endpoints) {
	f.UnreachableURL, f.SlowURL = e.UnreachableURL, e.SlowURL
}

// ReadFixture reads a fixture file written by the setup program.
func ReadFixture(path string) (*Fixture, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f Fixture
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.Version != Version {
		return nil, fmt.Errorf("%s: version %d, want %d", path, f.Version, Version)
	}
	return &f, nil
}

// Write writes the fixture to path, readable by its owner only (it holds
// secrets), through a temporary file so that a reader never sees half of
// it.
func (f *Fixture) Write(path string) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Endpoint returns the URL a case's middleware verifies with.
func (f *Fixture) Endpoint(c *Case) (string, error) {
	switch c.Latchkey {
	case "", "up":
		return f.LatchkeyURL, nil
	case "unreachable":
		return f.UnreachableURL, nil
	case "slow":
		return f.SlowURL, nil
	}
	return "", fmt.Errorf("case %q: latchkey %q: expected up, unreachable or slow", c.Name, c.Latchkey)
}

var placeholder = regexp.MustCompile(`\{\{([A-Z_]+)(?::([a-z_]+))?\}\}`)

// Substitute fills the placeholders of s for a case whose key is key
// (see README.md). An unknown placeholder or key is an error.
func (f *Fixture) Substitute(s, key string) (string, error) {
	var bad error
	out := placeholder.ReplaceAllStringFunc(s, func(m string) string {
		sub := placeholder.FindStringSubmatch(m)
		name, arg := sub[1], sub[2]
		k, ok := f.Keys[key]
		if arg != "" && name != "BASIC_WITH_ID" {
			k, ok = f.Keys[arg]
		}
		if !ok {
			bad = fmt.Errorf("placeholder %s: no fixture key %q", m, key)
			return ""
		}
		switch name {
		case "SECRET":
			return k.SecretAccessKey
		case "ACCESS_KEY_ID":
			return k.AccessKeyID
		case "APPLICATION":
			return k.Application
		case "BASIC":
			return base64.StdEncoding.EncodeToString([]byte(k.AccessKeyID + ":" + k.SecretAccessKey))
		case "BASIC_WITH_ID":
			other, ok := f.Keys[arg]
			if !ok {
				bad = fmt.Errorf("placeholder %s: no fixture key %q", m, arg)
				return ""
			}
			return base64.StdEncoding.EncodeToString([]byte(other.AccessKeyID + ":" + k.SecretAccessKey))
		}
		bad = fmt.Errorf("unknown placeholder %s", m)
		return ""
	})
	return out, bad
}

// Compact returns b as one line of JSON, for a failure message. It must
// never be given a substituted value.
func Compact(b []byte) string {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return string(b)
	}
	return out.String()
}
