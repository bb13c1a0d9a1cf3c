package client

import (
	"context"
	"iter"
	"strconv"
	"time"

	"github.com/latchkey/latchkey"
)

// ListAuditEventsInput filters audit events; empty fields match everything.
type ListAuditEventsInput struct {
	Account     string // "" = the caller's own account, or every account for an operator
	AccessKeyID string
	Application string
	Actor       string
	Action      string // e.g. latchkey.ActionAccessKeyUpdate
	Since       *time.Time
	Until       *time.Time
	Limit       int
	PageToken   string
}

// AuditEventPage is one page of audit events, newest first.
type AuditEventPage struct {
	AuditEvents   []*latchkey.AuditEvent `json:"audit_events"`
	NextPageToken string                 `json:"next_page_token,omitempty"`
}

// ListAuditEvents returns one page of audit events, newest first.
func (c *Client) ListAuditEvents(ctx context.Context, in ListAuditEventsInput) (*AuditEventPage, error) {
	q := pageQuery(accountQuery(in.Account), in.Limit, in.PageToken)
	for k, v := range map[string]string{
		"access_key_id": in.AccessKeyID, "application": in.Application, "actor": in.Actor, "action": in.Action,
	} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if in.Since != nil {
		q.Set("since", in.Since.UTC().Format(time.RFC3339))
	}
	if in.Until != nil {
		q.Set("until", in.Until.UTC().Format(time.RFC3339))
	}
	var out AuditEventPage
	if err := c.get(ctx, q, &out, "v1", "audit-events"); err != nil {
		return nil, err
	}
	return &out, nil
}

// AuditEvents iterates over every matching event, newest first, fetching
// pages as needed. It stops at the first error, which it yields.
func (c *Client) AuditEvents(ctx context.Context, in ListAuditEventsInput) iter.Seq2[*latchkey.AuditEvent, error] {
	return paginate(func(token string) ([]*latchkey.AuditEvent, string, error) {
		in.PageToken = token
		p, err := c.ListAuditEvents(ctx, in)
		if err != nil {
			return nil, "", err
		}
		return p.AuditEvents, p.NextPageToken, nil
	}, in.PageToken)
}

// AuditChainPage is one page of an account's audit chain, in chain order,
// with the chain's head. NextAfterSeq is the AfterSeq of the next page, 0
// on the last.
type AuditChainPage struct {
	Account      string                   `json:"account"`
	AuditEvents  []*latchkey.AuditEvent   `json:"audit_events"`
	Head         *latchkey.AuditChainHead `json:"head"`
	NextAfterSeq int64                    `json:"next_after_seq,omitempty"`
}

// GetAuditChain returns the events of the account's ("" = the caller's)
// audit chain with a seq above afterSeq.
func (c *Client) GetAuditChain(ctx context.Context, account string, afterSeq int64, limit int) (*AuditChainPage, error) {
	q := pageQuery(accountQuery(account), limit, "")
	if afterSeq > 0 {
		q.Set("after_seq", strconv.FormatInt(afterSeq, 10))
	}
	var out AuditChainPage
	if err := c.get(ctx, q, &out, "v1", "audit-chain"); err != nil {
		return nil, err
	}
	return &out, nil
}

// AuditCheckpointPage is one page of an account's signed audit
// checkpoints, with the server's public key (base64, absent when the
// server signs none).
type AuditCheckpointPage struct {
	Account      string                      `json:"account"`
	PublicKey    string                      `json:"public_key,omitempty"`
	KeyID        string                      `json:"key_id,omitempty"`
	Checkpoints  []*latchkey.AuditCheckpoint `json:"checkpoints"`
	NextAfterSeq int64                       `json:"next_after_seq,omitempty"`
}

// GetAuditCheckpoints returns the account's checkpoints with a seq above
// afterSeq.
func (c *Client) GetAuditCheckpoints(ctx context.Context, account string, afterSeq int64, limit int) (*AuditCheckpointPage, error) {
	q := pageQuery(accountQuery(account), limit, "")
	if afterSeq > 0 {
		q.Set("after_seq", strconv.FormatInt(afterSeq, 10))
	}
	var out AuditCheckpointPage
	if err := c.get(ctx, q, &out, "v1", "audit-checkpoints"); err != nil {
		return nil, err
	}
	return &out, nil
}
