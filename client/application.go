package client

import (
	"context"
	"encoding/json"
	"iter"

	"github.com/latchkey/latchkey"
)

// CreateApplicationInput names a new application. Account "" is the
// caller's own account (the default account for operators).
type CreateApplicationInput struct {
	Account     string
	Name        string
	Description string
	// Owner is the consumer organisation that manages the application's
	// keys in the portal ("" for none).
	Owner        string
	Restrictions *latchkey.Restrictions // defaults for the application's keys
	// IdentityID puts the application in an identity (its keys share the
	// identity's rate limit and quota); Metadata is returned by every
	// verification of its keys.
	IdentityID string
	Metadata   json.RawMessage
}

// CreateApplication registers an application. Returns EEXISTS if the name is
// taken, EINVALID for a bad name or description, EFORBIDDEN for a read-only
// caller.
func (c *Client) CreateApplication(ctx context.Context, in CreateApplicationInput) (*latchkey.Application, error) {
	body := struct {
		Name         string                 `json:"name"`
		Description  string                 `json:"description"`
		Owner        string                 `json:"owner,omitempty"`
		Restrictions *latchkey.Restrictions `json:"restrictions,omitempty"`
		IdentityID   string                 `json:"identity_id,omitempty"`
		Metadata     json.RawMessage        `json:"metadata,omitempty"`
	}{in.Name, in.Description, in.Owner, in.Restrictions, in.IdentityID, in.Metadata}
	var out latchkey.Application
	if err := c.post(ctx, accountQuery(in.Account), body, &out, "v1", "applications"); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetApplication returns an application with its key count, or ENOTFOUND.
func (c *Client) GetApplication(ctx context.Context, account, name string) (*latchkey.Application, error) {
	var out latchkey.Application
	if err := c.get(ctx, accountQuery(account), &out, "v1", "applications", name); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateApplicationInput changes an application; nil fields are left alone.
type UpdateApplicationInput struct {
	Account      string
	Name         string
	Description  *string
	Owner        *string                // "" removes the owner
	Restrictions *latchkey.Restrictions // replaces them; empty removes them
	// IdentityID moves the application to that identity; "" takes it out
	// of its identity.
	IdentityID *string
	// Metadata replaces the whole document; {} removes it.
	Metadata json.RawMessage
}

// UpdateApplication changes an application's description or default
// restrictions. Returns ENOTFOUND, EINVALID, EFORBIDDEN.
func (c *Client) UpdateApplication(ctx context.Context, in UpdateApplicationInput) (*latchkey.Application, error) {
	body := struct {
		Description  *string                `json:"description,omitempty"`
		Owner        *string                `json:"owner,omitempty"`
		Restrictions *latchkey.Restrictions `json:"restrictions,omitempty"`
		IdentityID   *string                `json:"identity_id,omitempty"`
		Metadata     json.RawMessage        `json:"metadata,omitempty"`
	}{in.Description, in.Owner, in.Restrictions, in.IdentityID, in.Metadata}
	var out latchkey.Application
	if err := c.patch(ctx, accountQuery(in.Account), body, &out, "v1", "applications", in.Name); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteApplication deletes an application that owns no access keys.
// Returns ECONFLICT while it still has keys, ENOTFOUND, EFORBIDDEN.
func (c *Client) DeleteApplication(ctx context.Context, account, name string) error {
	return c.del(ctx, accountQuery(account), "v1", "applications", name)
}

// ListApplicationsInput selects a page of applications.
type ListApplicationsInput struct {
	Account string
	// IdentityID selects the applications of that identity.
	IdentityID string
	Limit      int    // 1 to 1000; 0 lets the server choose
	PageToken  string // NextPageToken of the previous page
}

// ApplicationPage is one page of applications.
type ApplicationPage struct {
	Applications  []*latchkey.Application `json:"applications"`
	NextPageToken string                  `json:"next_page_token,omitempty"`
}

// ListApplications returns one page of an account's applications, by name.
func (c *Client) ListApplications(ctx context.Context, in ListApplicationsInput) (*ApplicationPage, error) {
	var out ApplicationPage
	q := pageQuery(accountQuery(in.Account), in.Limit, in.PageToken)
	if in.IdentityID != "" {
		q.Set("identity_id", in.IdentityID)
	}
	if err := c.get(ctx, q, &out, "v1", "applications"); err != nil {
		return nil, err
	}
	return &out, nil
}

// Applications iterates over every application, fetching pages as needed.
// It stops at the first error, which it yields.
func (c *Client) Applications(ctx context.Context, in ListApplicationsInput) iter.Seq2[*latchkey.Application, error] {
	return paginate(func(token string) ([]*latchkey.Application, string, error) {
		in.PageToken = token
		p, err := c.ListApplications(ctx, in)
		if err != nil {
			return nil, "", err
		}
		return p.Applications, p.NextPageToken, nil
	}, in.PageToken)
}

// paginate yields every item of every page, starting at token.
func paginate[T any](page func(token string) ([]T, string, error), token string) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			items, next, err := page(token)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if next == "" || next == token {
				return
			}
			token = next
		}
	}
}
