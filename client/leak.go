package client

import (
	"context"
	"encoding/hex"

	"github.com/latchkey/latchkey/keyformat"
)

// LeakFinding is a leaked secret, by digest (the secret never travels), and
// where it was found.
type LeakFinding struct {
	Digest keyformat.Digest
	Where  string
}

// LeakResult is what the server did for one finding: "deactivated",
// "flagged", "already_inactive" or "unknown".
type LeakResult struct {
	Status      string `json:"status"`
	AccessKeyID string `json:"access_key_id,omitempty"`
}

// ReportLeaks reports leaked secrets by digest (POST /v1/leaks): each live
// key is flagged exposed and, unless the server only flags, deactivated.
// Needs an admin credential. Results are in the order of findings.
func (c *Client) ReportLeaks(ctx context.Context, findings []LeakFinding) ([]LeakResult, error) {
	type finding struct {
		Digest string `json:"digest"`
		Where  string `json:"where,omitempty"`
	}
	in := struct {
		Findings []finding `json:"findings"`
	}{}
	for _, f := range findings {
		in.Findings = append(in.Findings, finding{Digest: hex.EncodeToString(f.Digest[:]), Where: f.Where})
	}
	var out struct {
		Results []LeakResult `json:"results"`
	}
	if err := c.post(ctx, nil, in, &out, "v1", "leaks"); err != nil {
		return nil, err
	}
	return out.Results, nil
}

// CheckLeaks tells, per digest, whether it is a live key the caller may see:
// "Active", "Inactive" or "unknown" (POST /v1/leaks/check).
func (c *Client) CheckLeaks(ctx context.Context, digests []keyformat.Digest) ([]string, error) {
	in := struct {
		Digests []string `json:"digests"`
	}{}
	for _, d := range digests {
		in.Digests = append(in.Digests, hex.EncodeToString(d[:]))
	}
	var out struct {
		Results []struct {
			Status string `json:"status"`
		} `json:"results"`
	}
	if err := c.post(ctx, nil, in, &out, "v1", "leaks", "check"); err != nil {
		return nil, err
	}
	st := make([]string, len(out.Results))
	for i, r := range out.Results {
		st[i] = r.Status
	}
	return st, nil
}
