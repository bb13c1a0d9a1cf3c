package client

import (
	"context"
	"net/url"

	"github.com/latchkey/latchkey"
)

// RolledAccessKey is the result of a roll: the successor with its secret
// (shown this once) and the rotation that will retire the old key.
type RolledAccessKey struct {
	AccessKey *CreatedAccessKey  `json:"access_key"`
	Rotation  *latchkey.Rotation `json:"rotation"`
}

// RollAccessKey rolls an Active application key on the server: it creates
// the successor and leaves the server to deactivate the old key once it has
// gone quiet after in.OldKeyExpiresIn (or at in.HardLimit). Returns
// ENOTFOUND, EINVALID (a principal's or Inactive key, bad periods), ELIMIT
// when the application already has two keys, EEXISTS when the key is
// already being rolled.
func (c *Client) RollAccessKey(ctx context.Context, id string, in latchkey.Roll) (*RolledAccessKey, error) {
	var out RolledAccessKey
	if err := c.post(ctx, nil, in, &out, "v1", "access-keys", id, "roll"); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListRotations returns the rolls of an account ("" for the caller's own;
// operators: every account), or of one key when keyID is set; open keeps
// those not done.
func (c *Client) ListRotations(ctx context.Context, account, keyID string, open bool) ([]*latchkey.Rotation, error) {
	q := accountQuery(account)
	if keyID != "" {
		q.Set("access_key_id", keyID)
	}
	if open {
		q.Set("open", "true")
	}
	var out struct {
		Rotations []*latchkey.Rotation `json:"rotations"`
	}
	if err := c.get(ctx, url.Values(q), &out, "v1", "rotations"); err != nil {
		return nil, err
	}
	return out.Rotations, nil
}
