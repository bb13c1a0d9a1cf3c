package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/latchkey/latchkey"
)

// VerifyInput is a credential presented to the protected API, with what is
// known of the call that carried it (recorded as the key's last use).
type VerifyInput struct {
	Key         string `json:"key"`                     // the secret access key
	AccessKeyID string `json:"access_key_id,omitempty"` // when given, it must be the secret's key
	IP          string `json:"ip,omitempty"`            // the caller's address
	Referrer    string `json:"referrer,omitempty"`
	UserAgent   string `json:"user_agent,omitempty"`
	// Scope the call needs, e.g. "shipments:read"; "" checks none.
	Scope string `json:"scope,omitempty"`
	// Method and Path describe the call instead of Scope, for the
	// server's scope rules (serve --scope-rule) to judge; Path is the
	// request target as sent (escaped, query allowed).
	Method string `json:"method,omitempty"`
	Path   string `json:"path,omitempty"`
	// Mobile app identity, as the app sent it (X-Android-Package,
	// X-Android-Cert, X-Ios-Bundle-Identifier).
	AndroidPackage string `json:"android_package,omitempty"`
	AndroidCert    string `json:"android_cert,omitempty"`
	IOSBundleID    string `json:"ios_bundle_id,omitempty"`

	// A call signed with a signing key (RFC 9421) instead of Key: its
	// Signature-Input and Signature, with Method and Path (required),
	// the Authority (host[:port]) and Scheme ("https" when "") it was
	// sent to, the fields its signature covers (Headers, e.g.
	// content-digest), and HasBody when it has a body whose
	// Content-Digest the caller checks itself. Scope, when given,
	// replaces what the server's scope rules say.
	SignatureInput string            `json:"signature_input,omitempty"`
	Signature      string            `json:"signature,omitempty"`
	Authority      string            `json:"authority,omitempty"`
	Scheme         string            `json:"scheme,omitempty"`
	Headers        map[string]string `json:"headers,omitempty"`
	HasBody        bool              `json:"has_body,omitempty"`
}

// VerifyResult is the server's decision. Identity fields are set only when
// the credential matched a key the caller may see.
type VerifyResult struct {
	Valid       bool          `json:"valid"`
	Code        latchkey.Code `json:"code"`
	Message     string        `json:"message"`
	AccessKeyID string        `json:"access_key_id,omitempty"`
	Application string        `json:"application,omitempty"`
	Account     string        `json:"account,omitempty"`
	// ExternalID and Metadata are the key's, when it has them.
	ExternalID string          `json:"external_id,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	// ApplicationMetadata is the metadata of the key's application;
	// Identity the identity the application belongs to (nil: none).
	ApplicationMetadata json.RawMessage `json:"application_metadata,omitempty"`
	Identity            *VerifyIdentity `json:"identity,omitempty"`
	// Quota is set when the key, or its identity, has a quota.
	Quota *VerifyQuota `json:"quota,omitempty"`
	// WouldDeny is what a report-only restriction would have answered.
	WouldDeny latchkey.Code `json:"would_deny,omitempty"`
	// RateLimit is set when the key has a rate limit.
	RateLimit *RateLimitInfo `json:"rate_limit,omitempty"`
	// RetryAfterSeconds is set for RATE_LIMITED and THROTTLED.
	RetryAfterSeconds int `json:"retry_after_seconds,omitempty"`
}

// VerifyIdentity is the identity of a verified key's application.
type VerifyIdentity struct {
	ID         string          `json:"id"`
	ExternalID string          `json:"external_id,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
}

// VerifyQuota is what the key's quota (or its identity's) has left after
// the decision, and when it refills.
type VerifyQuota struct {
	Remaining int64      `json:"remaining"`
	ResetAt   *time.Time `json:"reset_at,omitempty"`
}

// RateLimitInfo is the state of a key's rate limit bucket.
type RateLimitInfo struct {
	Limit         int `json:"limit"`
	Remaining     int `json:"remaining"`
	WindowSeconds int `json:"window_seconds"`
}

// Verify asks the server whether a credential may call the protected API.
// The client's own credentials must be a principal's (a verifier principal
// is enough). An invalid key is a decision (Valid false, with its Code), not
// an error; errors are for the call itself (EUNAUTHORIZED, EUNAVAILABLE).
func (c *Client) Verify(ctx context.Context, in VerifyInput) (*VerifyResult, error) {
	var out VerifyResult
	if err := c.post(ctx, nil, in, &out, "v1", "verify"); err != nil {
		return nil, err
	}
	return &out, nil
}

// Health returns nil when the server process answers (GET /healthz).
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, &request{method: http.MethodGet, path: []string{"healthz"}}, nil)
}

// Ready returns nil when the server can take traffic: its store is reachable
// and its key index loaded (GET /readyz). Otherwise EUNAVAILABLE.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, &request{method: http.MethodGet, path: []string{"readyz"}}, nil)
}

// OpenAPI returns the OpenAPI document that describes the API.
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	if err := c.do(ctx, &request{method: http.MethodGet, path: []string{"v1", "openapi.json"}}, &out); err != nil {
		return nil, err
	}
	return out, nil
}
