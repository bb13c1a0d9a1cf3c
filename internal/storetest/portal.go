package storetest

import (
	"context"
	"testing"

	"github.com/latchkey/latchkey"
)

// The consumer portal's columns (migration 0018): an application's owner
// and an account's branding.
var portalTests = []test{
	{"ApplicationOwner", testApplicationOwner},
	{"AccountBranding", testAccountBranding},
}

func testApplicationOwner(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	for _, a := range []struct{ name, owner string }{{"a1", "globex"}, {"a2", ""}, {"a3", "globex"}, {"a4", "initech"}} {
		update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
			return tx.CreateApplication(ctx, &latchkey.Application{Account: "acme", Name: a.name, Owner: a.owner, CreatedAt: at(1)})
		})
	}
	if app, err := findApp(t, s, "acme", "a1"); err != nil || app.Owner != "globex" {
		t.Fatalf("FindApplication a1 = %+v, %v; want owner globex", app, err)
	}
	list := func(owner string) []string {
		var names []string
		view(t, s, func(ctx context.Context, tx latchkey.Tx) error {
			apps, _, err := tx.ListApplications(ctx, latchkey.ApplicationFilter{Account: "acme", Owner: owner, Limit: 10})
			for _, a := range apps {
				names = append(names, a.Name+"="+a.Owner)
			}
			return err
		})
		return names
	}
	if got := list("globex"); len(got) != 2 || got[0] != "a1=globex" || got[1] != "a3=globex" {
		t.Errorf("owner globex lists %v", got)
	}
	if got := list("GLOBEX"); len(got) != 0 {
		t.Errorf("owners compare byte for byte; GLOBEX lists %v", got)
	}
	if got := list(""); len(got) != 4 {
		t.Errorf("no owner filter lists %v", got)
	}
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		return tx.UpdateApplication(ctx, &latchkey.Application{Account: "acme", Name: "a1", Owner: "initech"})
	})
	if got := list("initech"); len(got) != 2 || got[0] != "a1=initech" {
		t.Errorf("after moving a1 to initech: %v", got)
	}
}

func testAccountBranding(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	br := &latchkey.Branding{Name: "Acme APIs", LogoURL: "https://cdn.acme.example/logo.svg", PrimaryColor: "#ffcc00", AccentColor: "#0a5fff"}
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		return tx.UpdateAccount(ctx, &latchkey.Account{Name: "acme", KeyPrefix: "acme_", Branding: br})
	})
	find := func() *latchkey.Account {
		var a *latchkey.Account
		view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
			a, err = tx.FindAccount(ctx, "acme")
			return err
		})
		return a
	}
	if a := find(); a.Branding == nil || *a.Branding != *br || a.KeyPrefix != "acme_" {
		t.Errorf("FindAccount = %+v, want the branding %+v", a, br)
	}
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		return tx.UpdateAccount(ctx, &latchkey.Account{Name: "acme", KeyPrefix: "acme_"})
	})
	if a := find(); a.Branding != nil {
		t.Errorf("after removing the branding: %+v", a.Branding)
	}
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		return tx.CreateAccount(ctx, &latchkey.Account{Name: "b", Branding: &latchkey.Branding{Name: "B"}, CreatedAt: at(1)})
	})
	var all []*latchkey.Account
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		all, err = tx.ListAccounts(ctx)
		return err
	})
	if len(all) != 2 || all[1].Branding == nil || all[1].Branding.Name != "B" {
		t.Errorf("ListAccounts = %+v", all)
	}
}
