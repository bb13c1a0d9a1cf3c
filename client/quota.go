package client

import (
	"context"

	"github.com/latchkey/latchkey"
)

// QuotaView is a key's quota with its latest changes, newest first.
type QuotaView struct {
	AccessKeyID string                  `json:"access_key_id,omitempty"`
	IdentityID  string                  `json:"identity_id,omitempty"`
	Quota       *latchkey.Quota         `json:"quota"`
	History     []*latchkey.QuotaChange `json:"history"`
}

// GetQuota returns a key's quota and history; ENOTFOUND when it has none.
func (c *Client) GetQuota(ctx context.Context, id string) (*QuotaView, error) {
	var out QuotaView
	if err := c.get(ctx, nil, &out, "v1", "access-keys", id, "quota"); err != nil {
		return nil, err
	}
	return &out, nil
}

// TopUpQuota adds amount to what a key's quota has left.
func (c *Client) TopUpQuota(ctx context.Context, id string, amount int64) (*latchkey.Quota, error) {
	var out struct {
		Quota *latchkey.Quota `json:"quota"`
	}
	in := struct {
		Amount int64 `json:"amount"`
	}{amount}
	if err := c.post(ctx, nil, in, &out, "v1", "access-keys", id, "quota", "top-up"); err != nil {
		return nil, err
	}
	return out.Quota, nil
}
