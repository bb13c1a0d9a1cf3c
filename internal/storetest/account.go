package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
)

var accountTests = []test{
	{"CreateFind", testAccountCreateFind},
	{"CreateDuplicate", testAccountCreateDuplicate},
	{"FindMissing", testAccountFindMissing},
	{"List", testAccountList},
	{"TimesKeepMicroseconds", testTimesKeepMicroseconds},
	{"UpdateKeyPrefix", testAccountUpdateKeyPrefix},
}

func testAccountUpdateKeyPrefix(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createAccount(t, s, "other")
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		return tx.UpdateAccount(ctx, &latchkey.Account{Name: "acme", KeyPrefix: "acme_live_"})
	})
	var got []*latchkey.Account
	var one *latchkey.Account
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		if one, err = tx.FindAccount(ctx, "acme"); err != nil {
			return err
		}
		got, err = tx.ListAccounts(ctx)
		return err
	})
	if one.KeyPrefix != "acme_live_" || !one.CreatedAt.Equal(base) {
		t.Errorf("FindAccount after UpdateAccount = %+v, want key prefix acme_live_ and the creation time kept", one)
	}
	if len(got) != 2 || got[0].KeyPrefix != "acme_live_" || got[1].KeyPrefix != "" {
		t.Errorf("ListAccounts = %+v, want acme with acme_live_ and other without a prefix", got)
	}
	err := tryUpdate(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		return tx.UpdateAccount(ctx, &latchkey.Account{Name: "missing", KeyPrefix: "x_y_"})
	})
	wantCode(t, err, latchkey.ENOTFOUND)
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		return tx.CreateAccount(ctx, &latchkey.Account{Name: "third", KeyPrefix: "third_", CreatedAt: at(1)})
	})
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		one, err = tx.FindAccount(ctx, "third")
		return err
	})
	if one.KeyPrefix != "third_" {
		t.Errorf("CreateAccount with a key prefix stored %q", one.KeyPrefix)
	}
}

func testAccountCreateFind(t *testing.T, s latchkey.Store) {
	want := createAccount(t, s, "acme")
	var got *latchkey.Account
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		got, err = tx.FindAccount(ctx, "acme")
		return err
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FindAccount mismatch (-want +got):\n%s", diff)
	}
}

func testAccountCreateDuplicate(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	err := tryUpdate(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		return tx.CreateAccount(ctx, &latchkey.Account{Name: "acme", CreatedAt: at(1)})
	})
	wantCode(t, err, latchkey.EEXISTS)

	// The first account is untouched.
	var got *latchkey.Account
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		got, err = tx.FindAccount(ctx, "acme")
		return err
	})
	if !got.CreatedAt.Equal(base) {
		t.Errorf("CreatedAt = %v after a refused duplicate, want %v", got.CreatedAt, base)
	}
}

func testAccountFindMissing(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	for _, name := range []string{"other", "ACME", ""} {
		t.Run("name="+name, func(t *testing.T) {
			err := s.View(t.Context(), func(tx latchkey.Tx) error {
				_, err := tx.FindAccount(t.Context(), name)
				return err
			})
			wantCode(t, err, latchkey.ENOTFOUND)
		})
	}
}

func testAccountList(t *testing.T, s latchkey.Store) {
	var got []*latchkey.Account
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		got, err = tx.ListAccounts(ctx)
		return err
	})
	if len(got) != 0 {
		t.Fatalf("ListAccounts on an empty store = %v, want none", got)
	}

	for i, name := range []string{"charlie", "alpha", "bravo"} {
		a := &latchkey.Account{Name: name, CreatedAt: at(i)}
		update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.CreateAccount(ctx, a) })
	}
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		got, err = tx.ListAccounts(ctx)
		return err
	})
	want := []*latchkey.Account{
		{Name: "alpha", CreatedAt: at(1)},
		{Name: "bravo", CreatedAt: at(2)},
		{Name: "charlie", CreatedAt: at(0)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListAccounts mismatch (-want +got):\n%s", diff)
	}
}

// testTimesKeepMicroseconds checks that a time comes back truncated to the
// microsecond, in UTC, whatever the location it was given in.
func testTimesKeepMicroseconds(t *testing.T, s latchkey.Store) {
	in := time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("X", 3600))
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		return tx.CreateAccount(ctx, &latchkey.Account{Name: "acme", CreatedAt: in})
	})
	var got *latchkey.Account
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		got, err = tx.FindAccount(ctx, "acme")
		return err
	})
	want := in.UTC().Truncate(time.Microsecond)
	if got.CreatedAt != want {
		t.Errorf("CreatedAt = %v (%s), want %v", got.CreatedAt, got.CreatedAt.Location(), want)
	}
}
