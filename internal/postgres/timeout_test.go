package postgres_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/postgres"
)

// TestOperationTimeout: an operation that cannot finish (here, waiting
// for a table lock another session holds, as it would wait for a server
// that stopped answering) fails with EUNAVAILABLE once the operation
// timeout passes, instead of waiting as long as its caller's context. A
// statement in a transaction is bounded too, though its caller passes a
// context without a deadline, whichever way it runs (a row, rows, an
// exec, a prepared statement).
func TestOperationTimeout(t *testing.T) {
	dbURL := newDatabase(t)
	s := openDB(t, dbURL)
	ctx := t.Context()
	if err := s.Update(ctx, func(tx latchkey.Tx) error {
		return tx.CreateAccount(ctx, &latchkey.Account{Name: "acme", CreatedAt: latchkey.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	if s.OperationTimeout != 5*time.Second {
		t.Errorf("OperationTimeout after Open = %v, want 5s", s.OperationTimeout)
	}

	holder, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `LOCK TABLE accounts, access_keys, usage_minutes IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	// Each operation's statements use cctx, the caller's context, as a
	// handler's do; only the store bounds them.
	ops := []struct {
		name string
		run  func(cctx context.Context, s *postgres.Store) error
	}{
		{"a row in Update", func(cctx context.Context, s *postgres.Store) error {
			return s.Update(cctx, func(tx latchkey.Tx) error { _, err := tx.FindAccount(cctx, "acme"); return err })
		}},
		{"rows in View", func(cctx context.Context, s *postgres.Store) error {
			return s.View(cctx, func(tx latchkey.Tx) error { _, err := tx.ListAccounts(cctx); return err })
		}},
		{"an exec in Update", func(cctx context.Context, s *postgres.Store) error {
			return s.Update(cctx, func(tx latchkey.Tx) error {
				return tx.CreateAccount(cctx, &latchkey.Account{Name: "other", CreatedAt: latchkey.Now()})
			})
		}},
		{"RecordUsage", func(cctx context.Context, s *postgres.Store) error {
			return s.RecordUsage(cctx, []latchkey.UsageUpdate{{AccessKeyID: "LKIAAAAAAAAAAAAAAAAA", Uses: 1}})
		}},
		{"UsageSeries", func(cctx context.Context, s *postgres.Store) error {
			_, err := s.UsageSeries(cctx, "LKIAAAAAAAAAAAAAAAAA", time.Now().Add(-time.Hour), time.Now())
			return err
		}},
	}
	timings := []struct {
		name     string
		timeout  time.Duration
		deadline time.Duration // of the caller's context; 0 = none
		want     time.Duration // about how long the call takes
	}{
		{"the store's timeout", 300 * time.Millisecond, 0, 300 * time.Millisecond},
		{"a sooner caller deadline wins", 5 * time.Second, 200 * time.Millisecond, 200 * time.Millisecond},
		{"a later caller deadline does not", 250 * time.Millisecond, time.Minute, 250 * time.Millisecond},
	}
	for _, op := range ops {
		for _, tt := range timings {
			t.Run(op.name+"/"+tt.name, func(t *testing.T) {
				s.OperationTimeout = tt.timeout
				start := time.Now() // before the caller's deadline starts
				cctx := context.Background()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					cctx, cancel = context.WithTimeout(cctx, tt.deadline)
					defer cancel()
				}
				done := make(chan error, 1)
				go func() { done <- op.run(cctx, s) }()
				var err error
				select {
				case err = <-done:
				case <-time.After(tt.want + 5*time.Second):
					// Unbounded: the lock, released as the test ends,
					// lets the call finish.
					t.Fatalf("still waiting after %v, want about %v", time.Since(start), tt.want)
				}
				took := time.Since(start)
				if latchkey.ErrorCode(err) != latchkey.EUNAVAILABLE {
					t.Errorf("got %v, want EUNAVAILABLE", err)
				}
				if took < tt.want || took > tt.want+3*time.Second {
					t.Errorf("took %v, want about %v", took, tt.want)
				}
			})
		}
	}
	// The store still works once the lock is released.
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	s.OperationTimeout = 5 * time.Second
	if err := s.View(ctx, func(tx latchkey.Tx) error { _, err := tx.FindAccount(ctx, "acme"); return err }); err != nil {
		t.Errorf("after the timeouts: %v", err)
	}
}

// TestIdleTransactionEnds: the server ends a transaction that its client
// has left idle (as a replica cut off mid-transaction by a partition
// does), so that the row locks it holds stop blocking every other
// replica; the client then gets EUNAVAILABLE. The store sets a bound when
// the URL sets none, and a URL's own value wins.
func TestIdleTransactionEnds(t *testing.T) {
	dbURL := newDatabase(t)
	ctx := t.Context()
	show := func(s *postgres.Store) string {
		t.Helper()
		var v string
		if err := s.Pool().QueryRow(ctx, `SHOW idle_in_transaction_session_timeout`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := show(openDB(t, dbURL)); got != "10s" {
		t.Errorf("idle_in_transaction_session_timeout = %q, want 10s", got)
	}

	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("idle_in_transaction_session_timeout", "300ms")
	u.RawQuery = q.Encode()
	s := openDB(t, u.String())
	if got := show(s); got != "300ms" {
		t.Errorf("idle_in_transaction_session_timeout with the URL's = %q, want 300ms", got)
	}
	if err := s.Update(ctx, func(tx latchkey.Tx) error {
		return tx.CreateAccount(ctx, &latchkey.Account{Name: "acme", CreatedAt: latchkey.Now()})
	}); err != nil {
		t.Fatal(err)
	}

	other, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	err = s.Update(ctx, func(tx latchkey.Tx) error {
		if _, err := tx.FindAccount(ctx, "acme"); err != nil { // locks the row
			return err
		}
		// Idle, as a client that the network has cut off: another
		// session gets the row once the server has ended this one.
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if _, err := other.Exec(lctx, `SELECT 1 FROM accounts WHERE name = 'acme' FOR UPDATE`); err != nil {
			t.Errorf("the row is still locked by the idle transaction: %v", err)
		}
		_, err := tx.ListAccounts(ctx)
		return err
	})
	if latchkey.ErrorCode(err) != latchkey.EUNAVAILABLE {
		t.Errorf("Update after the server ended it = %v, want EUNAVAILABLE", err)
	}
	if err := s.View(ctx, func(tx latchkey.Tx) error { _, err := tx.FindAccount(ctx, "acme"); return err }); err != nil {
		t.Errorf("after the ended transaction: %v", err)
	}
}
