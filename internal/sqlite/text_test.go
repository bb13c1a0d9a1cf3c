package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// TestUpdateKeyWithOldDirtyText: a database written before free text was
// cleaned may hold an exposure note with a NUL byte (SQLite keeps what it
// is given). Updating such a key rewrites the note, and must not be
// refused for it: the store writes it back cleaned.
func TestUpdateKeyWithOldDirtyText(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "latchkey.db"))
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	id, _ := keyformat.NewID()
	sec, _ := keyformat.NewSecret()
	err := s.Update(ctx, func(tx latchkey.Tx) error {
		if err := tx.CreateAccount(ctx, &latchkey.Account{Name: "acme", CreatedAt: now}); err != nil {
			return err
		}
		if err := tx.CreateApplication(ctx, &latchkey.Application{Account: "acme", Name: "web", CreatedAt: now}); err != nil {
			return err
		}
		return tx.CreateAccessKey(ctx, &latchkey.AccessKey{ID: id, Account: "acme", Application: "web", Status: latchkey.StatusActive,
			CreatedAt: now, UpdatedAt: now, SecretDigest: keyformat.Sum(sec)})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write.ExecContext(ctx, `UPDATE access_keys SET exposed_at = 1, exposed_where = ? WHERE id = ?`, "leak report: a\x00b \xff", id); err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx latchkey.Tx) error {
		k, err := tx.FindAccessKey(ctx, id)
		if err != nil {
			return err
		}
		k.Status = latchkey.StatusInactive
		return tx.UpdateAccessKey(ctx, k)
	})
	if err != nil {
		t.Fatalf("updating a key with an old exposure note holding NUL: %v", err)
	}
	var k *latchkey.AccessKey
	if err := s.View(ctx, func(tx latchkey.Tx) (err error) { k, err = tx.FindAccessKey(ctx, id); return err }); err != nil {
		t.Fatal(err)
	}
	if k.Status != latchkey.StatusInactive || k.Exposed == nil || k.Exposed.Where != "leak report: ab \uFFFD" {
		t.Errorf("after the update: %s, exposed %+v", k.Status, k.Exposed)
	}
}
