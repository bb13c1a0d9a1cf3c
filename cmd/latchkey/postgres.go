package main

import (
	"context"
	"net/url"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/postgres"
)

// openPostgres opens the PostgreSQL store; the description it returns
// never holds the password.
func openPostgres(ctx context.Context, raw string) (latchkey.Store, string, error) {
	s, err := postgres.Open(ctx, raw)
	if err != nil {
		return nil, "", err
	}
	desc := "postgres"
	if u, err := url.Parse(raw); err == nil {
		desc = u.Redacted()
	}
	return s, desc, nil
}
