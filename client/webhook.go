package client

import (
	"context"
	"fmt"

	"github.com/latchkey/latchkey"
)

// CreatedWebhook is a new webhook with its signing secret, which the
// server returns this once. String and GoString hide the secret.
type CreatedWebhook struct {
	latchkey.Webhook
	Secret string `json:"secret"`
}

// String names the webhook without its secret.
func (w CreatedWebhook) String() string { return w.ID + " (secret hidden)" }

// GoString hides the secret from %#v.
func (w CreatedWebhook) GoString() string {
	return fmt.Sprintf("client.CreatedWebhook{ID:%q, Secret:<hidden>}", w.ID)
}

// CreateWebhook registers a receiver of an account's events ("" = the
// caller's own). Returns EINVALID for a URL that is not http(s) or holds
// credentials, or an unknown event type; EFORBIDDEN.
func (c *Client) CreateWebhook(ctx context.Context, account string, in latchkey.NewWebhook) (*CreatedWebhook, error) {
	var out CreatedWebhook
	if err := c.post(ctx, accountQuery(account), in, &out, "v1", "webhooks"); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListWebhooks returns an account's webhooks.
func (c *Client) ListWebhooks(ctx context.Context, account string) ([]*latchkey.Webhook, error) {
	var out struct {
		Webhooks []*latchkey.Webhook `json:"webhooks"`
	}
	if err := c.get(ctx, accountQuery(account), &out, "v1", "webhooks"); err != nil {
		return nil, err
	}
	return out.Webhooks, nil
}

// GetWebhook returns one webhook (never its secret). Returns ENOTFOUND.
func (c *Client) GetWebhook(ctx context.Context, id string) (*latchkey.Webhook, error) {
	var out latchkey.Webhook
	if err := c.get(ctx, nil, &out, "v1", "webhooks", id); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateWebhook changes a webhook; nil fields are left alone.
func (c *Client) UpdateWebhook(ctx context.Context, id string, u latchkey.WebhookUpdate) (*latchkey.Webhook, error) {
	body := struct {
		URL         *string   `json:"url,omitempty"`
		Description *string   `json:"description,omitempty"`
		Events      *[]string `json:"events,omitempty"`
		Enabled     *bool     `json:"enabled,omitempty"`
	}{u.URL, u.Description, u.Events, u.Enabled}
	var out latchkey.Webhook
	if err := c.patch(ctx, nil, body, &out, "v1", "webhooks", id); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteWebhook deletes a webhook and its delivery log.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.del(ctx, nil, "v1", "webhooks", id)
}

// ListWebhookDeliveriesInput selects a webhook's deliveries.
type ListWebhookDeliveriesInput struct {
	WebhookID string
	Status    string // pending, delivered, failed or "" for all
	Limit     int
	PageToken string
}

// WebhookDeliveryPage is one page of deliveries, newest first.
type WebhookDeliveryPage struct {
	Deliveries    []*latchkey.WebhookDelivery `json:"deliveries"`
	NextPageToken string                      `json:"next_page_token,omitempty"`
}

// ListWebhookDeliveries returns one page of a webhook's delivery log.
func (c *Client) ListWebhookDeliveries(ctx context.Context, in ListWebhookDeliveriesInput) (*WebhookDeliveryPage, error) {
	q := pageQuery(accountQuery(""), in.Limit, in.PageToken)
	if in.Status != "" {
		q.Set("status", in.Status)
	}
	var out WebhookDeliveryPage
	if err := c.get(ctx, q, &out, "v1", "webhooks", in.WebhookID, "deliveries"); err != nil {
		return nil, err
	}
	return &out, nil
}

// PingWebhook sends a webhook.ping event to the webhook and returns its
// delivery with the outcome so far.
func (c *Client) PingWebhook(ctx context.Context, id string) (*latchkey.WebhookDelivery, error) {
	var out latchkey.WebhookDelivery
	if err := c.post(ctx, nil, nil, &out, "v1", "webhooks", id, "ping"); err != nil {
		return nil, err
	}
	return &out, nil
}
