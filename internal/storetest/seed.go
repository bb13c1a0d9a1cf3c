package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// SeedKeys writes n Active application keys for benchmarks: account
// "acme", two keys per application, random IDs as keyformat makes them,
// all created at the same time (as a bulk import makes them), in one
// transaction. Their digests are of no secret anyone holds. It returns
// the keys' IDs.
func SeedKeys(tb testing.TB, s latchkey.Store, n int) []string {
	tb.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	ids := make([]string, n)
	err := s.Update(ctx, func(tx latchkey.Tx) error {
		if err := tx.CreateAccount(ctx, &latchkey.Account{Name: "acme", CreatedAt: now}); err != nil {
			return err
		}
		var seed [8]byte
		for i := range ids {
			app := fmt.Sprintf("app-%07d", i/2)
			if i%2 == 0 {
				if err := tx.CreateApplication(ctx, &latchkey.Application{Account: "acme", Name: app, CreatedAt: now}); err != nil {
					return err
				}
			}
			id, err := keyformat.NewID()
			if err != nil {
				return err
			}
			binary.LittleEndian.PutUint64(seed[:], uint64(i))
			k := &latchkey.AccessKey{ID: id, Account: "acme", Application: app, Status: latchkey.StatusActive,
				CreatedAt: now, UpdatedAt: now, SecretDigest: sha256.Sum256(seed[:])}
			if err := tx.CreateAccessKey(ctx, k); err != nil {
				return err
			}
			ids[i] = id
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("seeding %d keys: %v", n, err)
	}
	return ids
}
