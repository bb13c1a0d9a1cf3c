package storetest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
)

var identityTests = []test{
	{"CRUD", testIdentityCRUD},
	{"Errors", testIdentityErrors},
	{"KeysCarryIdentity", testIdentityKeysCarryIt},
}

// Identity IDs of the fixtures (the service makes random ones).
const (
	idnA = "idn_aaaaaaaaaaaaaaaa"
	idnB = "idn_bbbbbbbbbbbbbbbb"
)

func findIdentity(t *testing.T, s latchkey.Store, account, id string) (*latchkey.Identity, error) {
	t.Helper()
	var out *latchkey.Identity
	err := s.View(t.Context(), func(tx latchkey.Tx) (err error) {
		out, err = tx.FindIdentity(t.Context(), account, id, at(100))
		return err
	})
	return out, err
}

func testIdentityCRUD(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	want := &latchkey.Identity{ID: idnA, Account: "acme", Name: "customer", ExternalID: "cus_1",
		Metadata: json.RawMessage(`{"plan":"pro"}`), RateLimit: &latchkey.RateLimit{PerSecond: 5, Burst: 10},
		CreatedAt: at(1), UpdatedAt: at(1)}
	in := *want
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.CreateIdentity(ctx, &in) })
	got, err := findIdentity(t, s, "acme", idnA)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FindIdentity (-want +got):\n%s", diff)
	}
	// Another account does not see it.
	createAccount(t, s, "other")
	_, err = findIdentity(t, s, "other", idnA)
	wantCode(t, err, latchkey.ENOTFOUND)

	// An application in it counts, and keeps it from being deleted.
	app := &latchkey.Application{Account: "acme", Name: "shop", CreatedAt: at(2), IdentityID: idnA, Metadata: json.RawMessage(`{"c":1}`)}
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.CreateApplication(ctx, app) })
	gotApp, err := findApp(t, s, "acme", "shop")
	if err != nil || gotApp.IdentityID != idnA || string(gotApp.Metadata) != `{"c":1}` {
		t.Fatalf("FindApplication = %+v, %v", gotApp, err)
	}
	apps := listApps(t, s, latchkey.ApplicationFilter{Account: "acme", IdentityID: idnA})
	if len(apps) != 1 || apps[0].Name != "shop" {
		t.Errorf("ListApplications by identity = %v", apps)
	}
	if got, _ := findIdentity(t, s, "acme", idnA); got.ApplicationCount != 1 {
		t.Errorf("ApplicationCount = %d", got.ApplicationCount)
	}
	err = s.Update(t.Context(), func(tx latchkey.Tx) error { return tx.DeleteIdentity(t.Context(), "acme", idnA) })
	wantCode(t, err, latchkey.ECONFLICT)

	// Update, with a quota.
	in.Name, in.ExternalID, in.Metadata, in.RateLimit, in.UpdatedAt = "renamed", "", nil, nil, at(5)
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		if err := tx.UpdateIdentity(ctx, &in); err != nil {
			return err
		}
		return tx.SetQuota(ctx, latchkey.QuotaOwner{Kind: latchkey.QuotaOwnerIdentity, ID: idnA}, "acme", &latchkey.Quota{Remaining: 7}, at(5))
	})
	got, err = findIdentity(t, s, "acme", idnA)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "renamed" || got.ExternalID != "" || got.Metadata != nil || got.RateLimit != nil || got.Quota == nil || got.Quota.Remaining != 7 {
		t.Errorf("after update: %+v", got)
	}
	// Out of the identity, the application lets it go, quota and all.
	app.IdentityID = ""
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.UpdateApplication(ctx, app) })
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.DeleteIdentity(ctx, "acme", idnA) })
	_, err = findIdentity(t, s, "acme", idnA)
	wantCode(t, err, latchkey.ENOTFOUND)
	err = s.View(t.Context(), func(tx latchkey.Tx) error {
		_, err := tx.FindQuota(t.Context(), latchkey.QuotaOwner{Kind: latchkey.QuotaOwnerIdentity, ID: idnA}, at(6))
		return err
	})
	wantCode(t, err, latchkey.ENOTFOUND)
}

func listApps(t *testing.T, s latchkey.Store, f latchkey.ApplicationFilter) []*latchkey.Application {
	t.Helper()
	var out []*latchkey.Application
	err := s.View(t.Context(), func(tx latchkey.Tx) (err error) {
		out, _, err = tx.ListApplications(t.Context(), f)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func testIdentityErrors(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createAccount(t, s, "other")
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		return tx.CreateIdentity(ctx, &latchkey.Identity{ID: idnA, Account: "acme", Name: "a", ExternalID: "cus_1", CreatedAt: at(1), UpdatedAt: at(1)})
	})
	for _, tc := range []struct {
		name string
		id   latchkey.Identity
		want string
	}{
		{"name taken", latchkey.Identity{ID: idnB, Account: "acme", Name: "a"}, latchkey.EEXISTS},
		{"external ID taken", latchkey.Identity{ID: idnB, Account: "acme", Name: "b", ExternalID: "cus_1"}, latchkey.EEXISTS},
		{"ID taken", latchkey.Identity{ID: idnA, Account: "other", Name: "c"}, latchkey.EEXISTS},
		{"no account", latchkey.Identity{ID: idnB, Account: "nobody", Name: "b"}, latchkey.ENOTFOUND},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(t.Context(), func(tx latchkey.Tx) error { return tx.CreateIdentity(t.Context(), &tc.id) })
			wantCode(t, err, tc.want)
		})
	}
	// The same name and external ID in another account are fine.
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		return tx.CreateIdentity(ctx, &latchkey.Identity{ID: idnB, Account: "other", Name: "a", ExternalID: "cus_1", CreatedAt: at(1), UpdatedAt: at(1)})
	})
	var list []*latchkey.Identity
	err := s.View(t.Context(), func(tx latchkey.Tx) (err error) {
		list, _, err = tx.ListIdentities(t.Context(), latchkey.IdentityFilter{Account: "other", ExternalID: "cus_1"})
		return err
	})
	if err != nil || len(list) != 1 || list[0].ID != idnB {
		t.Errorf("ListIdentities by external ID = %v, %v", list, err)
	}
	err = s.Update(t.Context(), func(tx latchkey.Tx) error {
		return tx.UpdateIdentity(t.Context(), &latchkey.Identity{ID: "idn_cccccccccccccccc", Account: "acme", Name: "z"})
	})
	wantCode(t, err, latchkey.ENOTFOUND)
	err = s.Update(t.Context(), func(tx latchkey.Tx) error { return tx.DeleteIdentity(t.Context(), "other", idnA) })
	wantCode(t, err, latchkey.ENOTFOUND)
}

// A key reads its application's metadata and identity (with the
// identity's quota) from FindAccessKey, ScanAccessKeys and ScanKeyIndex
// alike: the index is loaded from either.
func testIdentityKeysCarryIt(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		if err := tx.CreateIdentity(ctx, &latchkey.Identity{ID: idnA, Account: "acme", Name: "a", ExternalID: "cus_1",
			Metadata: json.RawMessage(`{"p":1}`), RateLimit: &latchkey.RateLimit{PerMinute: 9}, CreatedAt: at(1), UpdatedAt: at(1)}); err != nil {
			return err
		}
		if err := tx.SetQuota(ctx, latchkey.QuotaOwner{Kind: latchkey.QuotaOwnerIdentity, ID: idnA}, "acme", &latchkey.Quota{Remaining: 3}, at(1)); err != nil {
			return err
		}
		return tx.CreateApplication(ctx, &latchkey.Application{Account: "acme", Name: "shop", CreatedAt: at(1), IdentityID: idnA,
			Metadata: json.RawMessage(`{"c":2}`)})
	})
	k := createKey(t, s, newKey(t, "acme", "shop", at(2)))
	plain := createKey(t, s, newKey(t, "acme", createApplication(t, s, "acme", "plain").Name, at(3)))
	check := func(where string, got *latchkey.AccessKey) {
		t.Helper()
		ki := got.Identity
		if ki == nil || ki.ID != idnA || ki.Account != "acme" || ki.ExternalID != "cus_1" || string(ki.Metadata) != `{"p":1}` ||
			ki.RateLimit == nil || ki.RateLimit.PerMinute != 9 || ki.Quota == nil || ki.Quota.Generation == 0 {
			t.Errorf("%s: identity %+v", where, ki)
		}
		if string(got.AppMetadata) != `{"c":2}` {
			t.Errorf("%s: application metadata %s", where, got.AppMetadata)
		}
	}
	check("FindAccessKey", mustFindKey(t, s, k.ID))
	check("ScanAccessKeys", allKeys(t, s)[k.ID])
	indexed := map[string]*latchkey.AccessKey{}
	if err := s.ScanKeyIndex(t.Context(), func(k *latchkey.AccessKey) error { indexed[k.ID] = k; return nil }); err != nil {
		t.Fatal(err)
	}
	check("ScanKeyIndex", indexed[k.ID])
	if p := indexed[plain.ID]; p.Identity != nil || p.AppMetadata != nil {
		t.Errorf("a key of an application without identity: %+v %s", p.Identity, p.AppMetadata)
	}
	var ki *latchkey.KeyIdentity
	update(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		ki, err = tx.FindKeyIdentity(ctx, idnA)
		return err
	})
	if ki == nil || ki.Quota == nil || ki.Account != "acme" {
		t.Errorf("FindKeyIdentity = %+v", ki)
	}
}
