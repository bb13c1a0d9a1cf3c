package client

import (
	"context"

	"github.com/latchkey/latchkey"
)

// CreateAccount creates a tenant. Operators only: returns EFORBIDDEN for
// anyone else, EEXISTS if the name is taken, EINVALID for a bad name.
func (c *Client) CreateAccount(ctx context.Context, name string) (*latchkey.Account, error) {
	var out latchkey.Account
	if err := c.post(ctx, nil, map[string]string{"name": name}, &out, "v1", "accounts"); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListAccounts returns every account to an operator, the caller's own
// account to anyone else.
func (c *Client) ListAccounts(ctx context.Context) ([]*latchkey.Account, error) {
	var out struct {
		Accounts []*latchkey.Account `json:"accounts"`
	}
	if err := c.get(ctx, nil, &out, "v1", "accounts"); err != nil {
		return nil, err
	}
	return out.Accounts, nil
}
