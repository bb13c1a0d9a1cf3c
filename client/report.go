package client

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/latchkey/latchkey"
)

// CredentialReport is every key of an account with its state and the
// hygiene policy's findings, as the server makes it when asked.
type CredentialReport struct {
	GeneratedAt time.Time        `json:"generated_at"`
	Account     string           `json:"account"`
	Policy      latchkey.Policy  `json:"policy"`
	Keys        []*CredentialRow `json:"keys"`
	Summary     map[string]int   `json:"summary"`
}

// CredentialRow is one key of the report. LastRotatedAt is when the key
// completed a rotation: the older key of its application that it replaced
// was deleted while this one was Active.
type CredentialRow struct {
	Account            string             `json:"account"`
	Application        string             `json:"application,omitempty"`
	Principal          string             `json:"principal,omitempty"`
	AccessKeyID        string             `json:"access_key_id"`
	Status             latchkey.Status    `json:"status"`
	CreatedAt          time.Time          `json:"created_at"`
	AgeDays            int                `json:"age_days"`
	LastUsedAt         *time.Time         `json:"last_used_at"`
	LastUsedIP         string             `json:"last_used_ip"`
	LastRejectedAt     *time.Time         `json:"last_rejected_at"`
	LastRejectedIP     string             `json:"last_rejected_ip"`
	LastRejectedReason latchkey.Code      `json:"last_rejected_reason"`
	LastRotatedAt      *time.Time         `json:"last_rotated_at"`
	ExpiresAt          *time.Time         `json:"expires_at"`
	Exposed            bool               `json:"exposed"`
	ExposedAt          *time.Time         `json:"exposed_at"`
	Restricted         bool               `json:"restricted"`
	RotationDueAt      *time.Time         `json:"rotation_due_at"`
	DeactivateAt       *time.Time         `json:"deactivate_at"`
	DeleteAt           *time.Time         `json:"delete_at"`
	Findings           []latchkey.Finding `json:"findings"`
	// RollState is the state of the key's latest server-side roll
	// (waiting, stalled, done), "" if it was never rolled; RolledWith is
	// the other key of that roll.
	RollState  string `json:"roll_state"`
	RolledWith string `json:"rolled_with"`
	IdentityID string `json:"identity_id"`
}

// GetCredentialReport returns the report of an account ("" = the caller's
// own). Returns ENOTFOUND for an account the caller may not see.
func (c *Client) GetCredentialReport(ctx context.Context, account string) (*CredentialReport, error) {
	var out CredentialReport
	if err := c.get(ctx, accountQuery(account), &out, "v1", "credential-report"); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetCredentialReportCSV returns the report as the server's CSV.
func (c *Client) GetCredentialReportCSV(ctx context.Context, account string) ([]byte, error) {
	q := accountQuery(account)
	q.Set("format", "csv")
	r := &request{method: http.MethodGet, path: []string{"v1", "credential-report"}, query: q, auth: true}
	return c.raw(ctx, r, "text/csv")
}

// raw sends r and returns the body of a 2xx answer as it is.
func (c *Client) raw(ctx context.Context, r *request, accept string) ([]byte, error) {
	if r.holdsSecret() {
		return nil, latchkey.Errorf(latchkey.EINVALID, "a value in this request looks like a secret access key; secrets are never sent in a URL")
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.url(r), nil)
	if err != nil {
		return nil, latchkey.Errorf(latchkey.EINVALID, "building request: %v", err)
	}
	req.Header.Set("Accept", accept)
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if h := c.creds.authorization(); h != "" {
		req.Header.Set("Authorization", h)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	lr := io.LimitReader(resp.Body, maxResponseBytes)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, responseError(resp, lr)
	}
	return io.ReadAll(lr)
}

// PolicyView is an account's hygiene policy: the one in force, the
// account's own settings, and the server's defaults.
type PolicyView struct {
	Account   string                  `json:"account"`
	Policy    latchkey.Policy         `json:"policy"`
	Settings  latchkey.PolicySettings `json:"settings"`
	Defaults  latchkey.Policy         `json:"defaults"`
	UpdatedAt *time.Time              `json:"updated_at"`
}

// GetPolicy returns an account's hygiene policy.
func (c *Client) GetPolicy(ctx context.Context, account string) (*PolicyView, error) {
	var out PolicyView
	if err := c.get(ctx, accountQuery(account), &out, "v1", "policy"); err != nil {
		return nil, err
	}
	return &out, nil
}

// PutPolicy replaces an account's settings; fields left nil take the
// server's defaults. Returns EINVALID, EFORBIDDEN, ENOTFOUND.
func (c *Client) PutPolicy(ctx context.Context, account string, s latchkey.PolicySettings) (*PolicyView, error) {
	var out PolicyView
	err := c.do(ctx, &request{method: http.MethodPut, path: []string{"v1", "policy"}, query: accountQuery(account), body: s, auth: true}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}
