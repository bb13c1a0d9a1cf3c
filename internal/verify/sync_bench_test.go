package verify_test

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
)

// BenchmarkIndexSync measures start-up's index load from SQLite: Index.Sync
// over 100,000 application keys (two per application, as bench/load seeds
// them, with random IDs as keyformat makes them), into an empty index
// each time. ns/key times 1,000,000 is the
// start-up time bench/load measures end to end.
func BenchmarkIndexSync(b *testing.B) {
	const n = 100_000
	ctx := b.Context()
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "latchkey.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	var seed [8]byte
	err = s.Update(ctx, func(tx latchkey.Tx) error {
		if err := tx.CreateAccount(ctx, &latchkey.Account{Name: "acme", CreatedAt: now}); err != nil {
			return err
		}
		for i := range n {
			app := fmt.Sprintf("app-%07d", i/2)
			if i%2 == 0 {
				if err := tx.CreateApplication(ctx, &latchkey.Application{Account: "acme", Name: app, CreatedAt: now}); err != nil {
					return err
				}
			}
			binary.LittleEndian.PutUint64(seed[:], uint64(i))
			id, err := keyformat.NewID()
			if err != nil {
				return err
			}
			k := &latchkey.AccessKey{ID: id, Account: "acme", Application: app, Status: latchkey.StatusActive,
				CreatedAt: now, UpdatedAt: now, SecretDigest: sha256.Sum256(seed[:]), Description: "bench"}
			if err := tx.CreateAccessKey(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		ix := verify.NewIndex()
		got, err := ix.Sync(ctx, s)
		if err != nil || got != n {
			b.Fatalf("Sync = %d, %v; want %d keys", got, err, n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/key")
}
