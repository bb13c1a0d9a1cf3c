package storetest

import (
	"context"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
)

var principalTests = []test{
	{"CreateFind", testPrincipalCreateFind},
	{"CreateErrors", testPrincipalCreateErrors},
	{"FindMissing", testPrincipalFindMissing},
	{"List", testPrincipalList},
	{"DeleteCascadesKeys", testPrincipalDeleteCascadesKeys},
	{"DeleteMissing", testPrincipalDeleteMissing},
}

func findPrincipal(t *testing.T, s latchkey.Store, account, name string) (*latchkey.Principal, error) {
	t.Helper()
	var p *latchkey.Principal
	err := s.View(t.Context(), func(tx latchkey.Tx) (err error) {
		p, err = tx.FindPrincipal(t.Context(), account, name)
		return err
	})
	return p, err
}

func testPrincipalCreateFind(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	for _, role := range []latchkey.Role{latchkey.RoleOperator, latchkey.RoleAdmin, latchkey.RoleViewer, latchkey.RoleVerifier} {
		t.Run(string(role), func(t *testing.T) {
			want := &latchkey.Principal{Account: "acme", Name: "p-" + string(role), Role: role, CreatedAt: at(2)}
			in := *want
			update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.CreatePrincipal(ctx, &in) })
			got, err := findPrincipal(t, s, "acme", want.Name)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("FindPrincipal mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func testPrincipalCreateErrors(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createAccount(t, s, "other")
	createPrincipal(t, s, "acme", "alice", latchkey.RoleAdmin)
	tests := []struct {
		name, account, principal string
		want                     string
	}{
		{"duplicate", "acme", "alice", latchkey.EEXISTS},
		{"unknown account", "nobody", "alice", latchkey.ENOTFOUND},
		{"same name in another account", "other", "alice", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tryUpdate(t, s, func(ctx context.Context, tx latchkey.Tx) error {
				return tx.CreatePrincipal(ctx, &latchkey.Principal{Account: tt.account, Name: tt.principal, Role: latchkey.RoleViewer, CreatedAt: at(1)})
			})
			wantCode(t, err, tt.want)
		})
	}
	got, err := findPrincipal(t, s, "acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.Role != latchkey.RoleAdmin {
		t.Errorf("role = %s after a refused duplicate, want admin", got.Role)
	}
}

func testPrincipalFindMissing(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createAccount(t, s, "other")
	createPrincipal(t, s, "acme", "alice", latchkey.RoleAdmin)
	for _, tt := range []struct{ name, account, principal string }{
		{"unknown principal", "acme", "bob"},
		{"unknown account", "nobody", "alice"},
		{"principal of another account", "other", "alice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := findPrincipal(t, s, tt.account, tt.principal)
			wantCode(t, err, latchkey.ENOTFOUND)
			err = tryUpdate(t, s, func(ctx context.Context, tx latchkey.Tx) error {
				_, err := tx.FindPrincipal(ctx, tt.account, tt.principal)
				return err
			})
			wantCode(t, err, latchkey.ENOTFOUND)
		})
	}
}

func testPrincipalList(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createAccount(t, s, "beta")
	createAccount(t, s, "empty")
	createPrincipal(t, s, "beta", "zed", latchkey.RoleViewer)
	createPrincipal(t, s, "acme", "carol", latchkey.RoleViewer)
	createPrincipal(t, s, "acme", "alice", latchkey.RoleOperator)
	createPrincipal(t, s, "beta", "bob", latchkey.RoleAdmin)
	createPrincipal(t, s, "acme", "bob", latchkey.RoleAdmin)

	tests := []struct {
		account string
		want    []string
	}{
		{"acme", []string{"acme/alice", "acme/bob", "acme/carol"}},
		{"beta", []string{"beta/bob", "beta/zed"}},
		{"", []string{"acme/alice", "acme/bob", "acme/carol", "beta/bob", "beta/zed"}},
		{"empty", nil},
		{"nobody", nil},
	}
	for _, tt := range tests {
		t.Run("account="+tt.account, func(t *testing.T) {
			var ps []*latchkey.Principal
			view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
				ps, err = tx.ListPrincipals(ctx, tt.account)
				return err
			})
			var got []string
			for _, p := range ps {
				got = append(got, p.Account+"/"+p.Name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ListPrincipals mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func testPrincipalDeleteCascadesKeys(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createAccount(t, s, "other")
	createPrincipal(t, s, "acme", "alice", latchkey.RoleAdmin)
	createPrincipal(t, s, "acme", "bob", latchkey.RoleAdmin)
	createPrincipal(t, s, "other", "alice", latchkey.RoleAdmin)
	createApplication(t, s, "acme", "billing")
	gone1 := createKey(t, s, newPrincipalKey(t, "acme", "alice", at(1)))
	gone2 := createKey(t, s, newPrincipalKey(t, "acme", "alice", at(2)))
	keep := []string{
		createKey(t, s, newPrincipalKey(t, "acme", "bob", at(3))).ID,
		createKey(t, s, newPrincipalKey(t, "other", "alice", at(4))).ID,
		createKey(t, s, newKey(t, "acme", "billing", at(5))).ID,
	}
	sort.Strings(keep)

	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.DeletePrincipal(ctx, "acme", "alice") })

	_, err := findPrincipal(t, s, "acme", "alice")
	wantCode(t, err, latchkey.ENOTFOUND)
	for _, k := range []*latchkey.AccessKey{gone1, gone2} {
		_, err := findKey(t, s, k.ID)
		wantCode(t, err, latchkey.ENOTFOUND)
	}
	var got []string
	for id := range allKeys(t, s) {
		got = append(got, id)
	}
	sort.Strings(got)
	if diff := cmp.Diff(keep, got); diff != "" {
		t.Errorf("keys left after DeletePrincipal (-want +got):\n%s", diff)
	}
	if _, err := findPrincipal(t, s, "other", "alice"); err != nil {
		t.Errorf("the principal of the same name in another account: %v", err)
	}

	// The name can be used again, and the new principal has no keys.
	createPrincipal(t, s, "acme", "alice", latchkey.RoleViewer)
	var keys []*latchkey.AccessKey
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		keys, _, err = tx.ListAccessKeys(ctx, latchkey.AccessKeyFilter{Account: "acme", Principal: "alice"})
		return err
	})
	if len(keys) != 0 {
		t.Errorf("a re-created principal has keys %v", keyIDs(keys))
	}
}

func testPrincipalDeleteMissing(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createAccount(t, s, "other")
	createPrincipal(t, s, "acme", "alice", latchkey.RoleAdmin)
	for _, tt := range []struct{ name, account, principal string }{
		{"unknown principal", "acme", "bob"},
		{"unknown account", "nobody", "alice"},
		{"principal of another account", "other", "alice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tryUpdate(t, s, func(ctx context.Context, tx latchkey.Tx) error {
				return tx.DeletePrincipal(ctx, tt.account, tt.principal)
			})
			wantCode(t, err, latchkey.ENOTFOUND)
		})
	}
	if _, err := findPrincipal(t, s, "acme", "alice"); err != nil {
		t.Errorf("alice after refused deletes: %v", err)
	}
}
