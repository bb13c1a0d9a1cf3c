package main

import (
	"context"
	"errors"

	"github.com/latchkey/latchkey"
)

// openPostgres is replaced when the PostgreSQL store lands.
func openPostgres(ctx context.Context, url string) (latchkey.Store, string, error) {
	return nil, "", errors.New("--database-url: PostgreSQL support is not built into this binary yet")
}
