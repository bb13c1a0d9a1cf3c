package client

import (
	"context"

	"github.com/latchkey/latchkey"
)

// ImportKeys sends one batch of existing keys to POST /v1/import (at most
// latchkey.MaxImportBatch) into in.Account ("" for the caller's own) and
// returns what happened to each row. Sending the same batch again changes
// nothing: its rows are then "exists". Returns EINVALID for a bad request
// (a hash format or status outside the list, no application without
// group_by), ENOTFOUND for an unknown application, EFORBIDDEN for a
// read-only caller, ECONFLICT when a key of the batch was created
// meanwhile (send it again).
func (c *Client) ImportKeys(ctx context.Context, in latchkey.ImportRequest) (*latchkey.ImportReport, error) {
	var out latchkey.ImportReport
	if err := c.post(ctx, accountQuery(in.Account), in, &out, "v1", "import"); err != nil {
		return nil, err
	}
	return &out, nil
}
