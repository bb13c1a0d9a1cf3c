package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

// BenchAuditWrite measures the cost of the audit chain on a management
// write: one transaction that changes an application's description and
// records its audit event, as manage.Service.UpdateApplication does.
// "unchained" inserts the event as latchkey did before the chain (into a
// table of the pre-chain shape); "chained" does what AppendAudit does now
// (lock the account's chain head, insert with seq and hashes, move the
// head). Both run in the same process on the same database, serially and
// with 4 writers on one account (the contended case: every write of an
// account takes its chain head in turn). Both are written in SQL here,
// beside each other, so that they differ in nothing else; "chained" is
// the SQL of sqlstore's AppendAudit. numbered is PostgreSQL's $n
// placeholders; forUpdate its row lock ("" in SQLite).
func BenchAuditWrite(b *testing.B, s latchkey.Store, raw *sql.DB, numbered bool, forUpdate string) {
	ctx := b.Context()
	if err := s.Update(ctx, func(tx latchkey.Tx) error {
		if err := tx.CreateAccount(ctx, &latchkey.Account{Name: "acme", CreatedAt: base}); err != nil {
			return err
		}
		return tx.CreateApplication(ctx, &latchkey.Application{Account: "acme", Name: "billing", CreatedAt: base})
	}); err != nil {
		b.Fatal(err)
	}
	q := func(query string) string {
		if !numbered {
			return query
		}
		for n := 1; strings.Contains(query, "?"); n++ {
			query = strings.Replace(query, "?", fmt.Sprintf("$%d", n), 1)
		}
		return query
	}
	if _, err := raw.ExecContext(ctx, `CREATE TABLE audit_unchained (id BIGINT PRIMARY KEY, time BIGINT NOT NULL, account TEXT NOT NULL,
		actor TEXT NOT NULL, action TEXT NOT NULL, target_type TEXT NOT NULL, target TEXT NOT NULL, before TEXT, after TEXT)`); err != nil {
		b.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, `CREATE INDEX audit_unchained_account ON audit_unchained (account, id)`); err != nil {
		b.Fatal(err)
	}
	var id int64
	idNext := func() int64 { id++; return id } // each writer's own range below
	unchained := func(ctx context.Context, n int64) error {
		tx, err := raw.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, q(`UPDATE applications SET description = ? WHERE account = ? AND name = ?`), fmt.Sprint(n), "acme", "billing"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, q(`INSERT INTO audit_unchained (id, time, account, actor, action, target_type, target, before, after)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), n, time.Now().UnixMicro(), "acme", "alice", latchkey.ActionApplicationUpdate,
			"application", "billing", `{"description":"a"}`, `{"description":"b"}`); err != nil {
			return err
		}
		return tx.Commit()
	}
	chained := func(ctx context.Context, n int64) error {
		tx, err := raw.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, q(`UPDATE applications SET description = ? WHERE account = ? AND name = ?`), fmt.Sprint(n), "acme", "billing"); err != nil {
			return err
		}
		var head latchkey.AuditChainHead
		if err := tx.QueryRowContext(ctx, q(`SELECT seq, hash FROM audit_chain_heads WHERE account = ? `+forUpdate), "acme").Scan(&head.Seq, &head.Hash); err != nil {
			return err
		}
		e := &latchkey.AuditEvent{Time: time.Now(), Account: "acme", Actor: "alice", Action: latchkey.ActionApplicationUpdate,
			TargetType: "application", Target: "billing", Before: []byte(`{"description":"a"}`), After: []byte(`{"description":"b"}`),
			Seq: head.Seq + 1, PrevHash: head.Hash}
		e.Hash = latchkey.AuditEventHash(e, e.Seq)
		if _, err := tx.ExecContext(ctx, q(`INSERT INTO audit_events (time, account, actor, action, target_type, target, before, after, seq, prev_hash, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), e.Time.UnixMicro(), e.Account, e.Actor, e.Action, e.TargetType, e.Target,
			string(e.Before), string(e.After), e.Seq, e.PrevHash, e.Hash); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, q(`UPDATE audit_chain_heads SET seq = ?, hash = ? WHERE account = ?`), e.Seq, e.Hash, e.Account); err != nil {
			return err
		}
		return tx.Commit()
	}
	// The chain head as the first event of the account left it.
	if err := s.Update(ctx, func(tx latchkey.Tx) error {
		return tx.AppendAudit(ctx, &latchkey.AuditEvent{Time: base, Account: "acme", Actor: "alice", Action: latchkey.ActionAccountCreate,
			TargetType: "account", Target: "acme"})
	}); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		write func(context.Context, int64) error
	}{{"unchained", unchained}, {"chained", chained}} {
		b.Run(tc.name+"/serial", func(b *testing.B) {
			for b.Loop() {
				if err := tc.write(ctx, idNext()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/4writers", func(b *testing.B) {
			b.SetParallelism(2) // 2 x GOMAXPROCS(2) = 4 writers on this machine's 2 cores
			start := id + 1
			id += 1 << 30
			var next = make(chan int64, 1)
			next <- start
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := <-next
					next <- n + 1
					if err := tc.write(ctx, n); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
