package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
)

var applicationTests = []test{
	{"CreateFind", testApplicationCreateFind},
	{"CreateErrors", testApplicationCreateErrors},
	{"NamesFoldCase", testApplicationNamesFoldCase},
	{"FindMissing", testApplicationFindMissing},
	{"KeyCount", testApplicationKeyCount},
	{"Update", testApplicationUpdate},
	{"Delete", testApplicationDelete},
	{"ListPages", testApplicationListPages},
	{"ListBadToken", testApplicationListBadToken},
}

func findApp(t *testing.T, s latchkey.Store, account, name string) (*latchkey.Application, error) {
	t.Helper()
	var app *latchkey.Application
	err := s.View(t.Context(), func(tx latchkey.Tx) (err error) {
		app, err = tx.FindApplication(t.Context(), account, name)
		return err
	})
	return app, err
}

func testApplicationCreateFind(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	want := &latchkey.Application{Account: "acme", Name: "billing", Description: "the billing system", CreatedAt: at(3)}
	in := *want
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.CreateApplication(ctx, &in) })
	got, err := findApp(t, s, "acme", "billing")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FindApplication mismatch (-want +got):\n%s", diff)
	}
}

func testApplicationCreateErrors(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createAccount(t, s, "other")
	createApplication(t, s, "acme", "billing")
	tests := []struct {
		name    string
		account string
		app     string
		want    string
	}{
		{"duplicate", "acme", "billing", latchkey.EEXISTS},
		{"unknown account", "nobody", "billing", latchkey.ENOTFOUND},
		{"same name in another account", "other", "billing", ""},
		{"another name", "acme", "shipping", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tryUpdate(t, s, func(ctx context.Context, tx latchkey.Tx) error {
				return tx.CreateApplication(ctx, &latchkey.Application{Account: tt.account, Name: tt.app, CreatedAt: at(1)})
			})
			wantCode(t, err, tt.want)
		})
	}
	// The refused duplicate did not overwrite the first application.
	got, err := findApp(t, s, "acme", "billing")
	if err != nil {
		t.Fatal(err)
	}
	if got.Description != "app billing" || !got.CreatedAt.Equal(base) {
		t.Errorf("application after a refused duplicate = %+v", got)
	}
}

// testApplicationNamesFoldCase: application names are unique in an
// account without regard to case, so "Billing" cannot join "billing"; the
// refusal names the one that exists. Lookups stay exact, and the name is
// free again once the application is gone.
func testApplicationNamesFoldCase(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createAccount(t, s, "other")
	createApplication(t, s, "acme", "billing")
	create := func(account, name string) error {
		return tryUpdate(t, s, func(ctx context.Context, tx latchkey.Tx) error {
			return tx.CreateApplication(ctx, &latchkey.Application{Account: account, Name: name, CreatedAt: at(1)})
		})
	}
	for _, name := range []string{"Billing", "BILLING", "billinG"} {
		t.Run(name, func(t *testing.T) {
			err := create("acme", name)
			wantCode(t, err, latchkey.EEXISTS)
			if msg := latchkey.ErrorMessage(err); !strings.Contains(msg, `"billing"`) || !strings.Contains(msg, `"`+name+`"`) {
				t.Errorf("message %q does not name both %q and the existing \"billing\"", msg, name)
			}
			if _, err := findApp(t, s, "acme", name); latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
				t.Errorf("FindApplication(%q) = %v, want ENOTFOUND: lookups are exact", name, err)
			}
		})
	}
	wantCode(t, create("other", "Billing"), "")
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.DeleteApplication(ctx, "acme", "billing") })
	wantCode(t, create("acme", "Billing"), "")
}

func testApplicationFindMissing(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createAccount(t, s, "other")
	createApplication(t, s, "acme", "billing")
	tests := []struct{ name, account, app string }{
		{"unknown application", "acme", "shipping"},
		{"unknown account", "nobody", "billing"},
		{"application of another account", "other", "billing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := findApp(t, s, tt.account, tt.app)
			wantCode(t, err, latchkey.ENOTFOUND)
			// In a write transaction too, where the row would be locked.
			err = tryUpdate(t, s, func(ctx context.Context, tx latchkey.Tx) error {
				_, err := tx.FindApplication(ctx, tt.account, tt.app)
				return err
			})
			wantCode(t, err, latchkey.ENOTFOUND)
		})
	}
}

func testApplicationKeyCount(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "billing")
	createApplication(t, s, "acme", "shipping")
	createPrincipal(t, s, "acme", "alice", latchkey.RoleAdmin)
	createKey(t, s, newKey(t, "acme", "billing", at(1)))
	createKey(t, s, newKey(t, "acme", "billing", at(2)))
	createKey(t, s, newKey(t, "acme", "shipping", at(3)))
	createKey(t, s, newPrincipalKey(t, "acme", "alice", at(4)))

	for name, want := range map[string]int{"billing": 2, "shipping": 1} {
		got, err := findApp(t, s, "acme", name)
		if err != nil {
			t.Fatal(err)
		}
		if got.KeyCount != want {
			t.Errorf("FindApplication(%s).KeyCount = %d in a View, want %d", name, got.KeyCount, want)
		}
		update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
			got, err := tx.FindApplication(ctx, "acme", name)
			if err != nil {
				return err
			}
			if got.KeyCount != want {
				t.Errorf("FindApplication(%s).KeyCount = %d in an Update, want %d", name, got.KeyCount, want)
			}
			return nil
		})
	}
	var apps []*latchkey.Application
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		apps, _, err = tx.ListApplications(ctx, latchkey.ApplicationFilter{Account: "acme"})
		return err
	})
	counts := map[string]int{}
	for _, a := range apps {
		counts[a.Name] = a.KeyCount
	}
	if diff := cmp.Diff(map[string]int{"billing": 2, "shipping": 1}, counts); diff != "" {
		t.Errorf("ListApplications KeyCount mismatch (-want +got):\n%s", diff)
	}
}

func testApplicationUpdate(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createAccount(t, s, "other")
	createApplication(t, s, "acme", "billing")
	createKey(t, s, newKey(t, "acme", "billing", at(1)))

	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		// Only the description is written; the other fields are ignored.
		return tx.UpdateApplication(ctx, &latchkey.Application{Account: "acme", Name: "billing", Description: "new text", CreatedAt: at(99), KeyCount: 7})
	})
	got, err := findApp(t, s, "acme", "billing")
	if err != nil {
		t.Fatal(err)
	}
	want := &latchkey.Application{Account: "acme", Name: "billing", Description: "new text", CreatedAt: base, KeyCount: 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after UpdateApplication (-want +got):\n%s", diff)
	}

	for _, tt := range []struct{ name, account, app string }{
		{"unknown application", "acme", "shipping"},
		{"application of another account", "other", "billing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tryUpdate(t, s, func(ctx context.Context, tx latchkey.Tx) error {
				return tx.UpdateApplication(ctx, &latchkey.Application{Account: tt.account, Name: tt.app, Description: "x"})
			})
			wantCode(t, err, latchkey.ENOTFOUND)
		})
	}
}

func testApplicationDelete(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createAccount(t, s, "other")
	createApplication(t, s, "acme", "billing")
	createApplication(t, s, "acme", "empty")
	k1 := createKey(t, s, newKey(t, "acme", "billing", at(1)))
	k2 := createKey(t, s, newKey(t, "acme", "billing", at(2)))

	del := func(account, name string) error {
		return tryUpdate(t, s, func(ctx context.Context, tx latchkey.Tx) error {
			return tx.DeleteApplication(ctx, account, name)
		})
	}
	tests := []struct {
		name          string
		account, app  string
		before        func(t *testing.T)
		want          string
		stillExists   bool
		keysRemaining int
	}{
		{name: "unknown application", account: "acme", app: "nothing", want: latchkey.ENOTFOUND},
		{name: "application of another account", account: "other", app: "billing", want: latchkey.ENOTFOUND, stillExists: true, keysRemaining: 2},
		{name: "with two keys", account: "acme", app: "billing", want: latchkey.ECONFLICT, stillExists: true, keysRemaining: 2},
		{name: "with one key", account: "acme", app: "billing", want: latchkey.ECONFLICT, stillExists: true, keysRemaining: 1,
			before: func(t *testing.T) {
				update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.DeleteAccessKey(ctx, k1.ID) })
			}},
		{name: "without keys", account: "acme", app: "billing", want: "",
			before: func(t *testing.T) {
				update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.DeleteAccessKey(ctx, k2.ID) })
			}},
		{name: "again", account: "acme", app: "billing", want: latchkey.ENOTFOUND},
		{name: "never had keys", account: "acme", app: "empty", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before(t)
			}
			wantCode(t, del(tt.account, tt.app), tt.want)
			app, err := findApp(t, s, "acme", tt.app)
			switch {
			case tt.stillExists && err != nil:
				t.Fatalf("application gone after a refused delete: %v", err)
			case tt.stillExists && app.KeyCount != tt.keysRemaining:
				t.Errorf("KeyCount = %d after a refused delete, want %d", app.KeyCount, tt.keysRemaining)
			case !tt.stillExists:
				wantCode(t, err, latchkey.ENOTFOUND)
			}
		})
	}
}

func testApplicationListPages(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createAccount(t, s, "beta")
	createAccount(t, s, "empty")
	// Created out of name order, so that the store has to sort.
	var acme, beta []string
	for _, i := range []int{4, 1, 6, 0, 3, 5, 2} {
		name := fmt.Sprintf("app-%02d", i)
		createApplication(t, s, "acme", name)
	}
	for i := range 7 {
		acme = append(acme, "acme/"+fmt.Sprintf("app-%02d", i))
	}
	for _, name := range []string{"zulu", "alpha", "mike"} {
		createApplication(t, s, "beta", name)
	}
	beta = []string{"beta/alpha", "beta/mike", "beta/zulu"}

	tests := []struct {
		name    string
		account string
		limit   int
		want    []string
		pages   int
	}{
		{"one account in pages of 3", "acme", 3, acme, 3},
		{"one account in pages of 7", "acme", 7, acme, 1},
		{"one account in pages of 1", "beta", 1, beta, 3},
		{"one account, default limit", "acme", 0, acme, 1},
		{"every account in pages of 4", "", 4, append(append([]string{}, acme...), beta...), 3},
		{"every account, default limit", "", 0, append(append([]string{}, acme...), beta...), 1},
		{"account without applications", "empty", 2, nil, 1},
		{"unknown account", "nobody", 2, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			pages := 0
			token := ""
			for {
				var apps []*latchkey.Application
				var next string
				view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
					apps, next, err = tx.ListApplications(ctx, latchkey.ApplicationFilter{Account: tt.account, After: token, Limit: tt.limit})
					return err
				})
				pages++
				if tt.limit > 0 && len(apps) > tt.limit {
					t.Fatalf("page %d has %d applications, limit %d", pages, len(apps), tt.limit)
				}
				for _, a := range apps {
					got = append(got, a.Account+"/"+a.Name)
				}
				if next == "" {
					break
				}
				if len(apps) == 0 {
					t.Fatalf("page %d is empty but has a next token %q", pages, next)
				}
				if pages > 20 {
					t.Fatal("pagination does not end")
				}
				token = next
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("applications mismatch (-want +got):\n%s", diff)
			}
			if pages != tt.pages {
				t.Errorf("took %d pages, want %d", pages, tt.pages)
			}
		})
	}
}

func testApplicationListBadToken(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	err := s.View(t.Context(), func(tx latchkey.Tx) error {
		_, _, err := tx.ListApplications(t.Context(), latchkey.ApplicationFilter{Account: "acme", After: "not base64!"})
		return err
	})
	wantCode(t, err, latchkey.EINVALID)
}
