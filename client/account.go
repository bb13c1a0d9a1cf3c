package client

import (
	"context"

	"github.com/latchkey/latchkey"
)

// CreateAccount creates a tenant. Operators only: returns EFORBIDDEN for
// anyone else, EEXISTS if the name is taken, EINVALID for a bad name.
func (c *Client) CreateAccount(ctx context.Context, name string) (*latchkey.Account, error) {
	return c.CreateAccountWith(ctx, name, latchkey.AccountUpdate{})
}

// CreateAccountWith creates a tenant with settings (its key prefix and
// portal branding).
// Returns what CreateAccount does, and EINVALID for a bad key prefix.
func (c *Client) CreateAccountWith(ctx context.Context, name string, set latchkey.AccountUpdate) (*latchkey.Account, error) {
	in := struct {
		Name      string             `json:"name"`
		KeyPrefix *string            `json:"key_prefix,omitempty"`
		Branding  *latchkey.Branding `json:"branding,omitempty"`
	}{name, set.KeyPrefix, set.Branding}
	var out latchkey.Account
	if err := c.post(ctx, nil, in, &out, "v1", "accounts"); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateAccount changes an account's settings: its key prefix ("" goes
// back to lksk_) and its portal branding (an empty Branding removes it).
// Operators and the account's admins may. Returns EINVALID for a bad
// prefix or branding, ENOTFOUND, EFORBIDDEN.
func (c *Client) UpdateAccount(ctx context.Context, name string, u latchkey.AccountUpdate) (*latchkey.Account, error) {
	var out latchkey.Account
	if err := c.patch(ctx, nil, u, &out, "v1", "accounts", name); err != nil {
		return nil, err
	}
	return &out, nil
}

// KeyPrefixes returns the prefixes of the secrets the caller's accounts
// issue: "lksk_" first, then the accounts' own (GET /v1/key-prefixes).
func (c *Client) KeyPrefixes(ctx context.Context) ([]string, error) {
	var out struct {
		KeyPrefixes []string `json:"key_prefixes"`
	}
	if err := c.get(ctx, nil, &out, "v1", "key-prefixes"); err != nil {
		return nil, err
	}
	return out.KeyPrefixes, nil
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
