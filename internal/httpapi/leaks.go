package httpapi

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/keyformat"
	"golang.org/x/time/rate"
)

// MaxLeakFindings bounds one leak report.
const MaxLeakFindings = 1000

// LeakFinding is one leaked secret in a report: the secret itself or (for
// authenticated reporters) its SHA-256 digest in hex, and where it was found.
type LeakFinding struct {
	Secret string `json:"secret,omitempty"`
	Digest string `json:"digest,omitempty"`
	Where  string `json:"where,omitempty"`
}

// LeakConfig is how leak reports are handled.
type LeakConfig struct {
	// Action for a matched key: deactivate (default) or only flag.
	Action manage.LeakAction
	// GitHubKeys verify GitHub secret scanning partner requests, by key
	// identifier. Without keys, /v1/leaks/github answers 404.
	GitHubKeys map[string]*ecdsa.PublicKey
	// AnonymousPerMinute bounds unauthenticated reports per client address.
	AnonymousPerMinute int

	mu      sync.Mutex
	anonLim map[netip.Addr]*rate.Limiter
}

func (c *LeakConfig) action() manage.LeakAction {
	if c == nil || c.Action == "" {
		return manage.LeakDeactivate
	}
	return c.Action
}

// allowAnonymous takes a token from addr's bucket.
func (c *LeakConfig) allowAnonymous(addr netip.Addr, now time.Time) bool {
	per := 10
	if c != nil && c.AnonymousPerMinute > 0 {
		per = c.AnonymousPerMinute
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.anonLim == nil {
		c.anonLim = map[netip.Addr]*rate.Limiter{}
	}
	if len(c.anonLim) > 100000 {
		for a, l := range c.anonLim {
			if l.TokensAt(now) >= float64(per) {
				delete(c.anonLim, a)
			}
		}
	}
	l := c.anonLim[addr]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(float64(per)/60), per)
		c.anonLim[addr] = l
	}
	return l.AllowN(now, 1)
}

func parseDigest(f LeakFinding, allowDigest bool) (keyformat.Digest, bool, error) {
	var d keyformat.Digest
	switch {
	case f.Secret != "" && f.Digest != "":
		return d, false, latchkey.Errorf(latchkey.EINVALID, "give secret or digest in a finding, not both")
	case f.Secret != "":
		if !keyformat.ValidSecret(f.Secret) {
			return d, false, nil // not a latchkey secret: nothing to do
		}
		return keyformat.Sum(f.Secret), true, nil
	case f.Digest != "":
		if !allowDigest {
			return d, false, latchkey.Errorf(latchkey.EINVALID, "reports without a credential must carry the leaked secret, not its digest")
		}
		b, err := hex.DecodeString(f.Digest)
		if err != nil || len(b) != len(d) {
			return d, false, latchkey.Errorf(latchkey.EINVALID, "digest must be 64 hex digits (SHA-256 of the secret)")
		}
		copy(d[:], b)
		return d, true, nil
	}
	return d, false, latchkey.Errorf(latchkey.EINVALID, "each finding needs a secret or a digest")
}

// reportLeaks is POST /v1/leaks. With an admin credential it answers what
// it did per finding; without one (a member of the public, a scanner) it
// needs the raw secrets, is rate limited per address, and answers the same
// whatever matched. Which keys a finding reaches is manage.ReportLeak's
// rule: any key for a raw secret, of an application or a principal.
func (s *Server) reportLeaks(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Findings []LeakFinding `json:"findings"`
	}
	authed := CredentialFromRequest(r).Present
	var a latchkey.Actor
	if authed {
		var err error
		if a, err = s.Authenticate(r); err != nil {
			return err
		}
		if a.Role == latchkey.RoleVerifier || a.Role == latchkey.RoleViewer {
			return latchkey.Errorf(latchkey.EFORBIDDEN, "role %s may not report leaks; use an admin key or report without credentials", a.Role)
		}
	} else {
		ip := ClientIP(r, s.TrustedProxies)
		if !s.Leaks.allowAnonymous(ip, time.Now()) {
			w.Header().Set("Retry-After", "60")
			return latchkey.Errorf(latchkey.ERATELIMITED, "too many leak reports from this address; retry in a minute")
		}
		a = latchkey.Actor{Principal: "leak-report", SourceIP: addrString(ip), UserAgent: r.UserAgent()}
	}
	if err := decode(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	if len(in.Findings) == 0 || len(in.Findings) > MaxLeakFindings {
		return latchkey.Errorf(latchkey.EINVALID, "findings must hold 1 to %d entries", MaxLeakFindings)
	}
	results := make([]manage.LeakResult, len(in.Findings))
	for i, f := range in.Findings {
		d, ok, err := parseDigest(f, authed)
		if err != nil {
			return latchkey.Errorf(latchkey.EINVALID, "findings[%d]: %s", i, latchkey.ErrorMessage(err))
		}
		results[i] = manage.LeakResult{Status: "unknown"}
		if !ok {
			continue
		}
		where := "leak report"
		if f.Where != "" {
			where = "leak report: " + f.Where
		}
		res, err := s.Service.ReportLeak(r.Context(), a, manage.Leak{Digest: d, Secret: f.Secret != "", Where: where}, s.Leaks.action())
		if err != nil {
			return err
		}
		results[i] = res
	}
	if !authed {
		writeJSON(w, http.StatusAccepted, map[string]int{"received": len(in.Findings)})
		return nil
	}
	writeJSON(w, http.StatusOK, struct {
		Results []manage.LeakResult `json:"results"`
	}{results})
	return nil
}

// checkLeaks is POST /v1/leaks/check: whether digests are live keys, for
// `latchkey scan --verify`. The secrets never travel, only digests.
func (s *Server) checkLeaks(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Digests []string `json:"digests"`
	}
	if err := decode(w, r, MaxBodyBytes, &in); err != nil {
		return err
	}
	if len(in.Digests) == 0 || len(in.Digests) > MaxLeakFindings {
		return latchkey.Errorf(latchkey.EINVALID, "digests must hold 1 to %d entries", MaxLeakFindings)
	}
	type result struct {
		Digest      string `json:"digest"`
		Status      string `json:"status"`
		AccessKeyID string `json:"access_key_id,omitempty"`
	}
	out := make([]result, len(in.Digests))
	for i, h := range in.Digests {
		d, _, err := parseDigest(LeakFinding{Digest: h}, true)
		if err != nil {
			return latchkey.Errorf(latchkey.EINVALID, "digests[%d]: %s", i, latchkey.ErrorMessage(err))
		}
		st, id := s.Service.KeyStatus(actor(r), d)
		out[i] = result{Digest: strings.ToLower(h), Status: st, AccessKeyID: id}
	}
	writeJSON(w, http.StatusOK, struct {
		Results []result `json:"results"`
	}{out})
	return nil
}

// GitHubMatch is one entry of a GitHub secret scanning partner request.
type GitHubMatch struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// githubLeaks is POST /v1/leaks/github: GitHub's secret scanning partner
// program. The request is signed by GitHub (ECDSA P-256 over the raw body,
// headers Github-Public-Key-Identifier and Github-Public-Key-Signature);
// unsigned or badly signed requests are refused. Matched keys are handled as
// any leak report; the answer says nothing about which tokens matched.
func (s *Server) githubLeaks(w http.ResponseWriter, r *http.Request) error {
	if s.Leaks == nil || len(s.Leaks.GitHubKeys) == 0 {
		return latchkey.Errorf(latchkey.ENOTFOUND, "GitHub secret scanning is not configured on this server (--github-secret-scanning-keys)")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		return jsonError(err, MaxBodyBytes)
	}
	if err := VerifyGitHubSignature(s.Leaks.GitHubKeys, r.Header.Get("Github-Public-Key-Identifier"), r.Header.Get("Github-Public-Key-Signature"), body); err != nil {
		return latchkey.Errorf(latchkey.EUNAUTHORIZED, "the request is not signed by a known GitHub secret scanning key")
	}
	var matches []GitHubMatch
	if err := json.Unmarshal(body, &matches); err != nil {
		return latchkey.Errorf(latchkey.EMALFORMED, "request body must be a JSON array of {token, type, url, source}")
	}
	if len(matches) > MaxLeakFindings {
		return latchkey.Errorf(latchkey.EINVALID, "at most %d matches per request", MaxLeakFindings)
	}
	a := latchkey.Actor{Principal: "github-secret-scanning", SourceIP: addrString(ClientIP(r, s.TrustedProxies)), UserAgent: r.UserAgent()}
	for _, m := range matches {
		if !keyformat.ValidSecret(m.Token) {
			continue
		}
		where := fmt.Sprintf("GitHub secret scanning: %s %s", m.Source, m.URL)
		leak := manage.Leak{Digest: keyformat.Sum(m.Token), Secret: true, Where: where}
		if _, err := s.Service.ReportLeak(r.Context(), a, leak, s.Leaks.action()); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, []struct{}{})
	return nil
}

// VerifyGitHubSignature checks a GitHub secret scanning signature: base64
// ASN.1 ECDSA over SHA-256 of the body, by the key with the given ID.
func VerifyGitHubSignature(keys map[string]*ecdsa.PublicKey, keyID, sig string, body []byte) error {
	pub := keys[keyID]
	if pub == nil {
		return fmt.Errorf("unknown key identifier")
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("signature is not base64")
	}
	h := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(pub, h[:], raw) {
		return fmt.Errorf("bad signature")
	}
	return nil
}

// ParseGitHubKeys reads GitHub's public key document
// ({"public_keys":[{"key_identifier","key"}]}, as served at
// api.github.com/meta/public_keys/secret_scanning).
func ParseGitHubKeys(doc []byte) (map[string]*ecdsa.PublicKey, error) {
	var in struct {
		PublicKeys []struct {
			KeyIdentifier string `json:"key_identifier"`
			Key           string `json:"key"`
		} `json:"public_keys"`
	}
	if err := json.Unmarshal(doc, &in); err != nil {
		return nil, fmt.Errorf("not GitHub's public key document: %w", err)
	}
	out := map[string]*ecdsa.PublicKey{}
	for _, k := range in.PublicKeys {
		block, _ := pem.Decode([]byte(k.Key))
		if block == nil {
			return nil, fmt.Errorf("key %s is not PEM", k.KeyIdentifier)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k.KeyIdentifier, err)
		}
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("key %s is not an ECDSA key", k.KeyIdentifier)
		}
		out[k.KeyIdentifier] = ec
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no public keys in the document")
	}
	return out, nil
}
