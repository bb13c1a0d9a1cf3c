// Package client is the Go client of the latchkey management API: accounts,
// applications, access keys (with their last use), admin principals, audit
// events and verification, over the JSON API that `latchkey serve` exposes
// under /v1.
//
//	c, err := client.New("http://127.0.0.1:8080",
//		client.WithCredentials(client.Credentials{AccessKeyID: id, SecretAccessKey: secret}))
//	app, err := c.CreateApplication(ctx, client.CreateApplicationInput{Name: "billing"})
//	key, err := c.CreateAccessKey(ctx, client.CreateAccessKeyInput{Application: "billing"})
//
// Every error the server reports comes back as a *latchkey.Error whose Code is
// the server's code string (latchkey.ENOTFOUND, latchkey.ELIMIT, ...), so
// callers test it with latchkey.ErrorCode. A server that cannot be reached
// gives latchkey.EUNAVAILABLE.
//
// The client never puts a secret in a URL or an error message: a secret
// access key is sent only in the Authorization header (Basic when the access
// key ID is known, Bearer otherwise) or in a request body, and a value that
// looks like a secret is refused before it could reach a path or query.
package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// DefaultEndpoint is where `latchkey serve` listens unless told otherwise.
const DefaultEndpoint = "http://127.0.0.1:8080"

// maxResponseBytes bounds what the client reads from one response.
const maxResponseBytes = 16 << 20

// Credentials are an admin principal's access key. Its String and GoString
// methods hide the secret, so printing Credentials (or a struct holding them)
// cannot leak it.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
}

// String returns the access key ID only.
func (c Credentials) String() string {
	switch {
	case c.SecretAccessKey == "":
		return c.AccessKeyID + " (no secret)"
	case c.AccessKeyID == "":
		return "(secret only, hidden)"
	}
	return c.AccessKeyID + " (secret hidden)"
}

// GoString hides the secret from %#v as well.
func (c Credentials) GoString() string {
	return fmt.Sprintf("client.Credentials{AccessKeyID:%q, SecretAccessKey:<hidden>}", c.AccessKeyID)
}

// authorization returns the Authorization header value, "" without a secret.
func (c Credentials) authorization() string {
	switch {
	case c.SecretAccessKey == "":
		return ""
	case c.AccessKeyID == "":
		return "Bearer " + c.SecretAccessKey
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.AccessKeyID+":"+c.SecretAccessKey))
}

// Client calls one latchkey server. It is safe for concurrent use.
type Client struct {
	endpoint  *url.URL
	creds     Credentials
	http      *http.Client
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithCredentials sets the admin access key sent with every request.
func WithCredentials(c Credentials) Option { return func(cl *Client) { cl.creds = c } }

// WithHTTPClient sets the http.Client used for requests
// (http.DefaultClient otherwise).
func WithHTTPClient(h *http.Client) Option { return func(cl *Client) { cl.http = h } }

// WithUserAgent sets the User-Agent header, e.g. "latchkey-cli/1.2.0".
func WithUserAgent(ua string) Option { return func(cl *Client) { cl.userAgent = ua } }

// New returns a client of the server at endpoint, an http or https URL with
// an optional path prefix (https://keys.example.com/latchkey). Returns
// EINVALID for any other endpoint, one with user information or a query
// (credentials do not belong in a URL).
func New(endpoint string, opts ...Option) (*Client, error) {
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, latchkey.Errorf(latchkey.EINVALID, "endpoint URL must look like http://127.0.0.1:8080 or https://keys.example.com")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || looksLikeSecret(endpoint) {
		return nil, latchkey.Errorf(latchkey.EINVALID, "endpoint URL must not hold user information, a query or a fragment; credentials go in the Authorization header")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c := &Client{endpoint: u, http: http.DefaultClient, userAgent: "latchkey-go-client"}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		c.http = http.DefaultClient
	}
	return c, nil
}

// Endpoint returns the server's base URL.
func (c *Client) Endpoint() string { return c.endpoint.String() }

// request is one API call. Path segments and query values are escaped by
// the client and checked for secrets.
type request struct {
	method string
	path   []string // segments after the endpoint, e.g. {"v1", "access-keys", id}
	query  url.Values
	body   any
	auth   bool
}

// holdsSecret reports whether a path segment or query value looks
// like a secret access key. Sending it would put the secret in server and
// proxy logs (and the server would flag the key exposed).
func (r *request) holdsSecret() bool {
	for _, s := range r.path {
		if looksLikeSecret(s) {
			return true
		}
	}
	for k, vs := range r.query {
		if looksLikeSecret(k) {
			return true
		}
		for _, v := range vs {
			if looksLikeSecret(v) {
				return true
			}
		}
	}
	return false
}

// looksLikeSecret reports whether s holds "lksk_" (a secret, or one with
// a typo) or a checksum-valid secret with an account's prefix.
func looksLikeSecret(s string) bool {
	return strings.Contains(s, keyformat.SecretPrefix) || keyformat.ContainsSecret(s)
}

func (c *Client) url(r *request) string {
	var b strings.Builder
	b.WriteString(c.endpoint.String())
	for _, s := range r.path {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	if len(r.query) > 0 {
		b.WriteByte('?')
		b.WriteString(r.query.Encode())
	}
	return b.String()
}

// do sends r and decodes a 2xx JSON answer into out (when not nil). Any
// other answer becomes a *latchkey.Error.
func (c *Client) do(ctx context.Context, r *request, out any) error {
	if r.holdsSecret() {
		return latchkey.Errorf(latchkey.EINVALID,
			"a value in this request looks like a secret access key (lksk_... or an account's prefix such as acme_live_...); secrets are never sent in a URL. Access key IDs start with %s", keyformat.IDPrefix)
	}
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.url(r), body)
	if err != nil {
		return latchkey.Errorf(latchkey.EINVALID, "building request: %v", err)
	}
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if r.auth {
		if h := c.creds.authorization(); h != "" {
			req.Header.Set("Authorization", h)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	lr := io.LimitReader(resp.Body, maxResponseBytes)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return responseError(resp, lr)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, lr)
		return nil
	}
	if err := json.NewDecoder(lr).Decode(out); err != nil {
		return latchkey.Errorf(latchkey.EINTERNAL, "the server at %s sent a response that is not the expected JSON (%v); is it a latchkey server?", c.endpoint, err)
	}
	return nil
}

// transportError describes a failure to reach the server. The request URL
// holds no secret, but the message names only the endpoint anyway.
func (c *Client) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return latchkey.Errorf(latchkey.EUNAVAILABLE, "cannot reach the latchkey server at %s: %v", c.endpoint, err).WithCause(err)
}

// get, post, patch and del are shorthands for authenticated calls.
func (c *Client) get(ctx context.Context, q url.Values, out any, path ...string) error {
	return c.do(ctx, &request{method: http.MethodGet, path: path, query: q, auth: true}, out)
}

func (c *Client) post(ctx context.Context, q url.Values, in, out any, path ...string) error {
	return c.do(ctx, &request{method: http.MethodPost, path: path, query: q, body: in, auth: true}, out)
}

func (c *Client) patch(ctx context.Context, q url.Values, in, out any, path ...string) error {
	return c.do(ctx, &request{method: http.MethodPatch, path: path, query: q, body: in, auth: true}, out)
}

func (c *Client) del(ctx context.Context, q url.Values, path ...string) error {
	return c.do(ctx, &request{method: http.MethodDelete, path: path, query: q, auth: true}, nil)
}

// accountQuery returns ?account= when account is set: "" means the caller's
// own account (the default account for operators).
func accountQuery(account string) url.Values {
	q := url.Values{}
	if account != "" {
		q.Set("account", account)
	}
	return q
}

// pageQuery adds ?limit= and ?page_token= when set.
func pageQuery(q url.Values, limit int, token string) url.Values {
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	if token != "" {
		q.Set("page_token", token)
	}
	return q
}
