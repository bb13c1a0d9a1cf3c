package client

import (
	"context"

	"github.com/latchkey/latchkey"
)

// CreatedPrincipal is a new admin principal with its first access key,
// whose secret is shown this once.
type CreatedPrincipal struct {
	latchkey.Principal
	AccessKey *CreatedAccessKey `json:"access_key"`
}

// CreatePrincipalInput describes a new admin principal.
type CreatePrincipalInput struct {
	Account string
	Name    string
	Role    latchkey.Role
}

// CreatePrincipal creates an admin principal with a first access key. Only
// operators may create operators. Returns EEXISTS, EINVALID, EFORBIDDEN,
// ENOTFOUND.
func (c *Client) CreatePrincipal(ctx context.Context, in CreatePrincipalInput) (*CreatedPrincipal, error) {
	body := struct {
		Name string        `json:"name"`
		Role latchkey.Role `json:"role"`
	}{in.Name, in.Role}
	var out CreatedPrincipal
	if err := c.post(ctx, accountQuery(in.Account), body, &out, "v1", "principals"); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetPrincipal returns a principal, or ENOTFOUND.
func (c *Client) GetPrincipal(ctx context.Context, account, name string) (*latchkey.Principal, error) {
	var out latchkey.Principal
	if err := c.get(ctx, accountQuery(account), &out, "v1", "principals", name); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListPrincipals returns an account's principals by name.
func (c *Client) ListPrincipals(ctx context.Context, account string) ([]*latchkey.Principal, error) {
	var out struct {
		Principals []*latchkey.Principal `json:"principals"`
	}
	if err := c.get(ctx, accountQuery(account), &out, "v1", "principals"); err != nil {
		return nil, err
	}
	return out.Principals, nil
}

// DeletePrincipal deletes a principal and its access keys. Returns
// ECONFLICT for the caller itself, ENOTFOUND, EFORBIDDEN.
func (c *Client) DeletePrincipal(ctx context.Context, account, name string) error {
	return c.del(ctx, accountQuery(account), "v1", "principals", name)
}

// CreatePrincipalAccessKeyInput describes a new key for a principal.
type CreatePrincipalAccessKeyInput struct {
	Account     string
	Principal   string
	Description string
}

// CreatePrincipalAccessKey adds a key to a principal, for rotating an admin's
// own credential. Returns ELIMIT at the maximum, ENOTFOUND, EFORBIDDEN.
func (c *Client) CreatePrincipalAccessKey(ctx context.Context, in CreatePrincipalAccessKeyInput) (*CreatedAccessKey, error) {
	body := struct {
		Description string `json:"description"`
	}{in.Description}
	var out CreatedAccessKey
	if err := c.post(ctx, accountQuery(in.Account), body, &out, "v1", "principals", in.Principal, "access-keys"); err != nil {
		return nil, err
	}
	return &out, nil
}
