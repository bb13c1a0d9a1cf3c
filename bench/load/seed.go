package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
)

// seeded is a SQLite database made for a run, and the secrets of its keys,
// which exist only in this process's memory.
type seeded struct {
	dbPath   string
	operator string   // the bootstrap operator's secret
	verifier string   // a verifier principal's secret, for POST /v1/verify
	secrets  []string // the application keys' secrets
	ids      []string // their access key IDs, in the same order
	mgmtApps int      // applications mgmt-0 ... with no key yet
	took     time.Duration
}

// seedBatch is how many keys go in one transaction.
const seedBatch = 20000

// seed creates a database in dir with the bootstrap operator, a verifier
// principal, mgmtApps empty applications, and n application keys, two per
// application. The operator and verifier are made by the management
// service, as serve would; the n keys are written straight through the
// store's transactions, thousands at a time, without audit events: a
// bench-only shortcut that makes a million keys in tens of seconds.
func seed(ctx context.Context, dir string, n, mgmtApps int) (*seeded, error) {
	start := time.Now()
	s := &seeded{dbPath: filepath.Join(dir, "latchkey.db"), mgmtApps: mgmtApps}
	store, err := sqlite.Open(ctx, s.dbPath)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	if err := seedStore(ctx, store, s, n, seedBatch); err != nil {
		return nil, err
	}
	s.took = time.Since(start)
	return s, nil
}

// seedStore seeds store (SQLite or PostgreSQL) as seed describes, and
// fills s's secrets.
// batch keys go in one transaction, which must finish within the store's
// operation timeout.
func seedStore(ctx context.Context, store latchkey.Store, s *seeded, n, batch int) error {
	mgmtApps := s.mgmtApps
	svc := manage.New(store, verify.NewIndex(), slog.New(slog.DiscardHandler))
	created, err := svc.Bootstrap(ctx)
	if err != nil {
		return err
	}
	s.operator = created.Secret
	op := latchkey.Actor{Principal: manage.BootstrapPrincipal, Account: latchkey.DefaultAccount, Role: latchkey.RoleOperator}
	p, err := svc.CreatePrincipal(ctx, op, latchkey.DefaultAccount, "gateway", latchkey.RoleVerifier)
	if err != nil {
		return err
	}
	s.verifier = p.AccessKey.Secret
	for i := range mgmtApps {
		if _, err := svc.CreateApplication(ctx, op, latchkey.DefaultAccount, fmt.Sprintf("mgmt-%d", i), "", nil); err != nil {
			return err
		}
	}

	s.secrets = make([]string, 0, n)
	s.ids = make([]string, 0, n)
	now := time.Now().UTC()
	for done := 0; done < n; {
		m := min(batch, n-done)
		err := store.Update(ctx, func(tx latchkey.Tx) error {
			for j := done; j < done+m; j++ {
				app := fmt.Sprintf("app-%07d", j/2)
				if j%2 == 0 {
					if err := tx.CreateApplication(ctx, &latchkey.Application{Account: latchkey.DefaultAccount, Name: app, CreatedAt: now}); err != nil {
						return err
					}
				}
				id, err := keyformat.NewID()
				if err != nil {
					return err
				}
				secret, err := keyformat.NewSecret()
				if err != nil {
					return err
				}
				k := &latchkey.AccessKey{ID: id, Account: latchkey.DefaultAccount, Application: app, Status: latchkey.StatusActive,
					CreatedAt: now, UpdatedAt: now, SecretDigest: keyformat.Sum(secret), Description: "bench/load"}
				if err := tx.CreateAccessKey(ctx, k); err != nil {
					return err
				}
				s.secrets = append(s.secrets, secret)
				s.ids = append(s.ids, id)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("seeding keys %d-%d: %w", done, done+m, err)
		}
		done += m
	}
	return nil
}
