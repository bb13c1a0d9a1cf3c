package client

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/url"
	"time"

	"github.com/latchkey/latchkey"
)

// CreatedAccessKey is a new access key with its secret. The server shows the
// secret this once; it stores only a digest. String and GoString hide the
// secret, so logging a CreatedAccessKey cannot leak it; marshal it to JSON
// (or read SecretAccessKey) to hand the secret over.
type CreatedAccessKey struct {
	latchkey.AccessKey
	SecretAccessKey string `json:"secret_access_key,omitempty"` // "" for a signing key
}

// Credentials returns the key as credentials for a client.
func (k *CreatedAccessKey) Credentials() Credentials {
	return Credentials{AccessKeyID: k.ID, SecretAccessKey: k.SecretAccessKey}
}

// String names the key without its secret.
func (k CreatedAccessKey) String() string { return k.ID + " (secret hidden)" }

// GoString hides the secret from %#v.
func (k CreatedAccessKey) GoString() string {
	return fmt.Sprintf("client.CreatedAccessKey{ID:%q, SecretAccessKey:<hidden>}", k.ID)
}

// CreateAccessKeyInput describes a new application key. Account "" is the
// caller's own account.
type CreateAccessKeyInput struct {
	Account      string
	Application  string
	Description  string
	ExpiresAt    *time.Time
	Restrictions *latchkey.Restrictions
	ReportOnly   *latchkey.Restrictions
	// ExternalID is your own name for the key's customer; Metadata a
	// small JSON object. Verification returns both.
	ExternalID string
	Metadata   json.RawMessage
	// Canary makes a canary key: it never authorizes anything and any
	// use of it raises a canary.triggered alert (latchkey.AccessKey.Canary).
	Canary bool
	// PublicKey, a PEM PUBLIC KEY block of an Ed25519 or ECDSA P-256
	// key, makes a signing key: no secret is made or returned.
	PublicKey string
	// Quota gives the key a budget of calls (latchkey.Quota).
	Quota *latchkey.Quota
	// CertificateThumbprint binds the key to a TLS client certificate
	// (latchkey.ParseCertThumbprint): calls must present it.
	CertificateThumbprint string
}

// CreateAccessKey creates an Active key for an application. Returns ELIMIT
// when the application already owns the most keys it may (two by default),
// ENOTFOUND for an unknown application, EINVALID for a bad description or an
// expiry in the past or a bad external ID or metadata, EFORBIDDEN for a
// read-only caller.
func (c *Client) CreateAccessKey(ctx context.Context, in CreateAccessKeyInput) (*CreatedAccessKey, error) {
	body := latchkey.NewAccessKey{Description: in.Description, ExpiresAt: in.ExpiresAt, Restrictions: in.Restrictions, ReportOnly: in.ReportOnly,
		ExternalID: in.ExternalID, Metadata: in.Metadata, Canary: in.Canary, PublicKey: in.PublicKey, Quota: in.Quota,
		CertificateThumbprint: in.CertificateThumbprint}
	var out CreatedAccessKey
	if err := c.post(ctx, accountQuery(in.Account), body, &out, "v1", "applications", in.Application, "access-keys"); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetAccessKey returns a key (never its secret) with its usage so far.
// Returns ENOTFOUND for an unknown key or one the caller may not see.
func (c *Client) GetAccessKey(ctx context.Context, id string) (*latchkey.AccessKey, error) {
	var out latchkey.AccessKey
	if err := c.get(ctx, nil, &out, "v1", "access-keys", id); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateAccessKey changes a key's status, description, expiry,
// restrictions, external ID or metadata; nil fields are left alone (a
// non-nil empty Restrictions removes them, as do an empty ExternalID and
// Metadata {}). Returns ENOTFOUND, EINVALID, EFORBIDDEN.
func (c *Client) UpdateAccessKey(ctx context.Context, id string, u latchkey.AccessKeyUpdate) (*latchkey.AccessKey, error) {
	body := struct {
		Status            *latchkey.Status       `json:"status,omitempty"`
		Description       *string                `json:"description,omitempty"`
		ExpiresAt         *time.Time             `json:"expires_at,omitempty"`
		Restrictions      *latchkey.Restrictions `json:"restrictions,omitempty"`
		ReportOnly        *latchkey.Restrictions `json:"report_only_restrictions,omitempty"`
		ClearExpiry       bool                   `json:"clear_expiry,omitempty"`
		EnforceReportOnly bool                   `json:"enforce_report_only,omitempty"`
		ExternalID        *string                `json:"external_id,omitempty"`
		Metadata          json.RawMessage        `json:"metadata,omitempty"`
		Quota             *latchkey.Quota        `json:"quota,omitempty"`
		RemoveQuota       bool                   `json:"remove_quota,omitempty"`
		CertThumbprint    *string                `json:"certificate_thumbprint,omitempty"`
		Certificate       *string                `json:"certificate,omitempty"`
	}{u.Status, u.Description, u.ExpiresAt, u.Restrictions, u.ReportOnly, u.ClearExpiry, u.EnforceReportOnly, u.ExternalID, u.Metadata,
		u.Quota, u.RemoveQuota, u.CertificateThumbprint, u.Certificate}
	var out latchkey.AccessKey
	if err := c.patch(ctx, nil, body, &out, "v1", "access-keys", id); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteAccessKeyInput names the key to delete.
type DeleteAccessKeyInput struct {
	AccessKeyID string
	// Force deletes the key even while it is Active.
	Force bool
}

// DeleteAccessKey deletes a key for good; verification fails for it at once.
// Returns EKEYACTIVE while the key is Active unless Force is set, ENOTFOUND,
// EFORBIDDEN.
func (c *Client) DeleteAccessKey(ctx context.Context, in DeleteAccessKeyInput) error {
	q := url.Values{}
	if in.Force {
		q.Set("force", "true")
	}
	return c.del(ctx, q, "v1", "access-keys", in.AccessKeyID)
}

// AccessKeyLastUsed is where and when a key was last accepted and last
// refused. A refusal of an Inactive key is the evidence that something still
// uses it.
type AccessKeyLastUsed struct {
	AccessKeyID  string              `json:"access_key_id"`
	Application  string              `json:"application,omitempty"`
	Status       latchkey.Status     `json:"status"`
	LastUsed     *latchkey.Use       `json:"last_used"`
	LastRejected *latchkey.Rejection `json:"last_rejected"`
	UseCount     int64               `json:"use_count"`
	RejectCount  int64               `json:"reject_count"`
}

// GetAccessKeyLastUsed returns a key's last use and last rejection, including
// usage the server has not written to its database yet. Returns ENOTFOUND.
func (c *Client) GetAccessKeyLastUsed(ctx context.Context, id string) (*AccessKeyLastUsed, error) {
	var out AccessKeyLastUsed
	if err := c.get(ctx, nil, &out, "v1", "access-keys", id, "last-used"); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListAccessKeysInput selects keys. With Application set, the application's
// keys (ENOTFOUND if it does not exist); with Principal set, the principal's;
// otherwise every key the caller may see, of Kind "application",
// "principal" or both (""). Account "" is the caller's own account, or every
// account for an operator listing all keys.
type ListAccessKeysInput struct {
	Account     string
	Application string
	Principal   string
	Kind        string
	// ExternalID selects the keys with this external ID (every key the
	// caller may see; not with Application or Principal).
	ExternalID string
	Limit      int
	PageToken  string
}

// AccessKeyPage is one page of keys, oldest first.
type AccessKeyPage struct {
	AccessKeys    []*latchkey.AccessKey `json:"access_keys"`
	NextPageToken string                `json:"next_page_token,omitempty"`
}

// ListAccessKeys returns one page of keys, oldest first.
func (c *Client) ListAccessKeys(ctx context.Context, in ListAccessKeysInput) (*AccessKeyPage, error) {
	q := pageQuery(accountQuery(in.Account), in.Limit, in.PageToken)
	var path []string
	switch {
	case in.Application != "":
		path = []string{"v1", "applications", in.Application, "access-keys"}
	case in.Principal != "":
		path = []string{"v1", "principals", in.Principal, "access-keys"}
	default:
		path = []string{"v1", "access-keys"}
		if in.Kind != "" {
			q.Set("kind", in.Kind)
		}
		if in.ExternalID != "" {
			q.Set("external_id", in.ExternalID)
		}
	}
	var out AccessKeyPage
	if err := c.get(ctx, q, &out, path...); err != nil {
		return nil, err
	}
	return &out, nil
}

// AccessKeys iterates over every key ListAccessKeys selects, fetching pages
// as needed. It stops at the first error, which it yields.
func (c *Client) AccessKeys(ctx context.Context, in ListAccessKeysInput) iter.Seq2[*latchkey.AccessKey, error] {
	return paginate(func(token string) ([]*latchkey.AccessKey, string, error) {
		in.PageToken = token
		p, err := c.ListAccessKeys(ctx, in)
		if err != nil {
			return nil, "", err
		}
		return p.AccessKeys, p.NextPageToken, nil
	}, in.PageToken)
}
