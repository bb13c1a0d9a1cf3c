package client

import (
	"context"
	"iter"
	"time"

	"github.com/latchkey/latchkey"
)

// CreateIdentity makes an identity (a customer whose applications share
// a rate limit and a quota) in account ("" for the caller's own). Returns
// EINVALID for a bad field, EEXISTS when the name or external ID is
// taken, EFORBIDDEN for a read-only caller.
func (c *Client) CreateIdentity(ctx context.Context, account string, in latchkey.NewIdentity) (*latchkey.Identity, error) {
	var out latchkey.Identity
	if err := c.post(ctx, accountQuery(account), in, &out, "v1", "identities"); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetIdentity returns an identity with its quota, or ENOTFOUND.
func (c *Client) GetIdentity(ctx context.Context, account, id string) (*latchkey.Identity, error) {
	var out latchkey.Identity
	if err := c.get(ctx, accountQuery(account), &out, "v1", "identities", id); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateIdentity changes an identity (nil fields are left alone); a new
// rate limit or quota applies to every key of its applications at once.
// Returns ENOTFOUND, EINVALID, EEXISTS, EFORBIDDEN.
func (c *Client) UpdateIdentity(ctx context.Context, account, id string, u latchkey.IdentityUpdate) (*latchkey.Identity, error) {
	var out latchkey.Identity
	if err := c.patch(ctx, accountQuery(account), u, &out, "v1", "identities", id); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteIdentity deletes an identity that no application belongs to.
// Returns ECONFLICT while applications still belong to it, ENOTFOUND,
// EFORBIDDEN.
func (c *Client) DeleteIdentity(ctx context.Context, account, id string) error {
	return c.del(ctx, accountQuery(account), "v1", "identities", id)
}

// ListIdentitiesInput selects a page of identities.
type ListIdentitiesInput struct {
	Account    string
	ExternalID string // only the identity with this external ID
	Limit      int
	PageToken  string
}

// IdentityPage is one page of identities.
type IdentityPage struct {
	Identities    []*latchkey.Identity `json:"identities"`
	NextPageToken string               `json:"next_page_token,omitempty"`
}

// ListIdentities returns one page of an account's identities, by ID.
func (c *Client) ListIdentities(ctx context.Context, in ListIdentitiesInput) (*IdentityPage, error) {
	q := pageQuery(accountQuery(in.Account), in.Limit, in.PageToken)
	if in.ExternalID != "" {
		q.Set("external_id", in.ExternalID)
	}
	var out IdentityPage
	if err := c.get(ctx, q, &out, "v1", "identities"); err != nil {
		return nil, err
	}
	return &out, nil
}

// Identities iterates over every identity, fetching pages as needed.
func (c *Client) Identities(ctx context.Context, in ListIdentitiesInput) iter.Seq2[*latchkey.Identity, error] {
	return paginate(func(token string) ([]*latchkey.Identity, string, error) {
		in.PageToken = token
		p, err := c.ListIdentities(ctx, in)
		if err != nil {
			return nil, "", err
		}
		return p.Identities, p.NextPageToken, nil
	}, in.PageToken)
}

// GetIdentityQuota returns an identity's quota and history; ENOTFOUND
// when it has none.
func (c *Client) GetIdentityQuota(ctx context.Context, account, id string) (*QuotaView, error) {
	var out QuotaView
	if err := c.get(ctx, accountQuery(account), &out, "v1", "identities", id, "quota"); err != nil {
		return nil, err
	}
	return &out, nil
}

// TopUpIdentityQuota adds amount to what an identity's quota has left.
func (c *Client) TopUpIdentityQuota(ctx context.Context, account, id string, amount int64) (*latchkey.Quota, error) {
	var out struct {
		Quota *latchkey.Quota `json:"quota"`
	}
	in := struct {
		Amount int64 `json:"amount"`
	}{amount}
	if err := c.post(ctx, accountQuery(account), in, &out, "v1", "identities", id, "quota", "top-up"); err != nil {
		return nil, err
	}
	return out.Quota, nil
}

// UsagePoint is one step of a usage series: calls accepted, and calls
// refused by decision code.
type UsagePoint struct {
	At       time.Time               `json:"at"`
	Valid    int64                   `json:"valid"`
	Rejected map[latchkey.Code]int64 `json:"rejected"`
}

// IdentityUsage is the summed usage of an identity's keys.
type IdentityUsage struct {
	IdentityID  string       `json:"identity_id"`
	StepSeconds int          `json:"step_seconds"`
	Series      []UsagePoint `json:"series"`
}

// GetIdentityUsage returns the calls per step of every key of an
// identity's applications, summed; zero times and step take the server's
// defaults (the last 3 hours by minute).
func (c *Client) GetIdentityUsage(ctx context.Context, account, id string, from, to time.Time, step time.Duration) (*IdentityUsage, error) {
	q := accountQuery(account)
	if !from.IsZero() {
		q.Set("from", from.UTC().Format(time.RFC3339))
	}
	if !to.IsZero() {
		q.Set("to", to.UTC().Format(time.RFC3339))
	}
	if step > 0 {
		q.Set("step", step.String())
	}
	var out IdentityUsage
	if err := c.get(ctx, q, &out, "v1", "identities", id, "usage"); err != nil {
		return nil, err
	}
	return &out, nil
}
