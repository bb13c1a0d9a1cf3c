package storetest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

var accessKeyTests = []test{
	{"CreateFindApplicationKey", testKeyCreateFindApplicationKey},
	{"CreateFindPrincipalKey", testKeyCreateFindPrincipalKey},
	{"CreateErrors", testKeyCreateErrors},
	{"FindMissing", testKeyFindMissing},
	{"Update", testKeyUpdate},
	{"UpdateMissing", testKeyUpdateMissing},
	{"Delete", testKeyDelete},
	{"ListOrderFiltersPages", testKeyList},
	{"ListBadToken", testKeyListBadToken},
	{"ImportedKey", testKeyImported},
	{"ListRowsDoNotCarryOver", testKeyListRowsDoNotCarryOver},
	{"ListPolicyCandidates", testKeyListPolicyCandidates},
}

func testKeyCreateFindApplicationKey(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "billing")
	tests := []struct {
		name string
		edit func(k *latchkey.AccessKey)
	}{
		{"plain", func(k *latchkey.AccessKey) {}},
		{"inactive with expiry", func(k *latchkey.AccessKey) {
			k.Status = latchkey.StatusInactive
			k.ExpiresAt = ptr(at(86400))
			k.UpdatedAt = at(7)
		}},
		{"exposed at creation", func(k *latchkey.AccessKey) {
			k.Exposed = &latchkey.Exposure{At: at(3), Where: "imported from a leak report"}
			k.Description = "ünïcode déscription"
		}},
		{"external ID and metadata", func(k *latchkey.AccessKey) {
			k.ExternalID = "cus_42"
			k.Metadata = json.RawMessage(`{"plan":"pro","note":"ünï","limits":{"seats":5}}`)
		}},
		{"signing ed25519", func(k *latchkey.AccessKey) { signWith(t, k, ed25519Public(t)) }},
		{"signing ecdsa p-256", func(k *latchkey.AccessKey) { signWith(t, k, p256Public(t)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := newKey(t, "acme", "billing", at(1))
			tt.edit(want)
			in := *want
			createKey(t, s, &in)
			got := mustFindKey(t, s, want.ID)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("FindAccessKey mismatch (-want +got):\n%s", diff)
			}
			// Remove it again so the application stays under any limit.
			update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.DeleteAccessKey(ctx, want.ID) })
		})
	}
}

func testKeyCreateFindPrincipalKey(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	roles := []latchkey.Role{latchkey.RoleOperator, latchkey.RoleAdmin, latchkey.RoleViewer, latchkey.RoleVerifier}
	for _, role := range roles {
		t.Run(string(role), func(t *testing.T) {
			p := createPrincipal(t, s, "acme", "p-"+string(role), role)
			want := newPrincipalKey(t, "acme", p.Name, at(1))
			in := *want
			in.Role = "" // the store reads the role from the principal
			createKey(t, s, &in)
			want.Role = role
			got := mustFindKey(t, s, want.ID)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("FindAccessKey in a View mismatch (-want +got):\n%s", diff)
			}
			// The locking read of an Update returns the same.
			update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
				got, err := tx.FindAccessKey(ctx, want.ID)
				if err != nil {
					return err
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("FindAccessKey in an Update mismatch (-want +got):\n%s", diff)
				}
				return nil
			})
		})
	}
}

func testKeyCreateErrors(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createAccount(t, s, "other")
	createApplication(t, s, "acme", "billing")
	createPrincipal(t, s, "acme", "alice", latchkey.RoleAdmin)
	existing := createKey(t, s, newKey(t, "acme", "billing", at(1)))

	tests := []struct {
		name string
		key  func(t *testing.T) *latchkey.AccessKey
		want string
	}{
		{"duplicate ID", func(t *testing.T) *latchkey.AccessKey {
			k := newKey(t, "acme", "billing", at(2))
			k.ID = existing.ID
			return k
		}, latchkey.EEXISTS},
		{"duplicate secret digest", func(t *testing.T) *latchkey.AccessKey {
			k := newKey(t, "acme", "billing", at(2))
			k.SecretDigest = existing.SecretDigest
			return k
		}, latchkey.EEXISTS},
		{"duplicate secret digest on a principal key", func(t *testing.T) *latchkey.AccessKey {
			k := newPrincipalKey(t, "acme", "alice", at(2))
			k.SecretDigest = existing.SecretDigest
			return k
		}, latchkey.EEXISTS},
		{"unknown account", func(t *testing.T) *latchkey.AccessKey {
			return newKey(t, "nobody", "billing", at(2))
		}, latchkey.ENOTFOUND},
		{"unknown application", func(t *testing.T) *latchkey.AccessKey {
			return newKey(t, "acme", "shipping", at(2))
		}, latchkey.ENOTFOUND},
		{"application of another account", func(t *testing.T) *latchkey.AccessKey {
			return newKey(t, "other", "billing", at(2))
		}, latchkey.ENOTFOUND},
		{"unknown principal", func(t *testing.T) *latchkey.AccessKey {
			return newPrincipalKey(t, "acme", "bob", at(2))
		}, latchkey.ENOTFOUND},
		{"principal of another account", func(t *testing.T) *latchkey.AccessKey {
			return newPrincipalKey(t, "other", "alice", at(2))
		}, latchkey.ENOTFOUND},
		{"both owners", func(t *testing.T) *latchkey.AccessKey {
			k := newKey(t, "acme", "billing", at(2))
			k.Principal = "alice"
			return k
		}, latchkey.EINVALID},
		{"no owner", func(t *testing.T) *latchkey.AccessKey {
			return newKey(t, "acme", "", at(2))
		}, latchkey.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := tt.key(t)
			err := tryUpdate(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.CreateAccessKey(ctx, k) })
			wantCode(t, err, tt.want)
			keys := allKeys(t, s)
			if len(keys) != 1 || keys[existing.ID] == nil {
				t.Errorf("keys after a refused create: %v, want only %s", keys, existing.ID)
			}
			if got := keys[existing.ID]; got != nil {
				if diff := cmp.Diff(existing, got); diff != "" {
					t.Errorf("existing key changed by a refused create (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func testKeyFindMissing(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "billing")
	k := createKey(t, s, newKey(t, "acme", "billing", at(1)))
	other, err := keyformat.NewID()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{other, "", "not-an-id", k.ID[:len(k.ID)-1]} {
		t.Run("id="+id, func(t *testing.T) {
			_, err := findKey(t, s, id)
			wantCode(t, err, latchkey.ENOTFOUND)
			err = tryUpdate(t, s, func(ctx context.Context, tx latchkey.Tx) error {
				_, err := tx.FindAccessKey(ctx, id)
				return err
			})
			wantCode(t, err, latchkey.ENOTFOUND)
		})
	}
}

func testKeyUpdate(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "billing")
	want := createKey(t, s, newKey(t, "acme", "billing", at(1)))
	want = ptr(*want)

	// Usage written before the updates must survive them.
	err := s.RecordUsage(t.Context(), []latchkey.UsageUpdate{{
		AccessKeyID: want.ID, Uses: 3, Rejections: 1,
		LastUsed:     &latchkey.Use{At: at(5), IP: "192.0.2.1", UserAgent: "curl/8"},
		LastRejected: &latchkey.Rejection{At: at(6), IP: "192.0.2.2", UserAgent: "curl/7", Reason: latchkey.CodeExpired},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want.UseCount, want.RejectCount = 3, 1
	want.LastUsed = &latchkey.Use{At: at(5), IP: "192.0.2.1", UserAgent: "curl/8"}
	want.LastRejected = &latchkey.Rejection{At: at(6), IP: "192.0.2.2", UserAgent: "curl/7", Reason: latchkey.CodeExpired}

	steps := []struct {
		name string
		edit func(k *latchkey.AccessKey)
	}{
		{"deactivate", func(k *latchkey.AccessKey) { k.Status = latchkey.StatusInactive }},
		{"reactivate", func(k *latchkey.AccessKey) { k.Status = latchkey.StatusActive }},
		{"description", func(k *latchkey.AccessKey) { k.Description = "moved to the new cluster" }},
		{"empty description", func(k *latchkey.AccessKey) { k.Description = "" }},
		{"set expiry", func(k *latchkey.AccessKey) { k.ExpiresAt = ptr(at(3600)) }},
		{"move expiry", func(k *latchkey.AccessKey) { k.ExpiresAt = ptr(at(7200).Add(999 * time.Microsecond)) }},
		{"clear expiry", func(k *latchkey.AccessKey) { k.ExpiresAt = nil }},
		{"mark exposed", func(k *latchkey.AccessKey) {
			k.Exposed = &latchkey.Exposure{At: at(30), Where: "query string of GET /v1/things"}
			k.Status = latchkey.StatusInactive
		}},
		{"exposed again elsewhere", func(k *latchkey.AccessKey) {
			k.Exposed = &latchkey.Exposure{At: at(40), Where: "commit 0123abc"}
		}},
		{"clear exposure", func(k *latchkey.AccessKey) { k.Exposed = nil }},
		{"set external ID and metadata", func(k *latchkey.AccessKey) {
			k.ExternalID, k.Metadata = "tenant:9", json.RawMessage(`{"tier":"gold"}`)
		}},
		{"change metadata", func(k *latchkey.AccessKey) { k.Metadata = json.RawMessage(`{"tier":"silver","b":[1,2]}`) }},
		{"clear external ID and metadata", func(k *latchkey.AccessKey) { k.ExternalID, k.Metadata = "", nil }},
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.edit(want)
			want.UpdatedAt = at(100 + i)
			in := *want
			update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.UpdateAccessKey(ctx, &in) })
			got := mustFindKey(t, s, want.ID)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("after UpdateAccessKey (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("other fields are not written", func(t *testing.T) {
		want.Status = latchkey.StatusActive
		want.UpdatedAt = at(200)
		in := *want
		in.CreatedAt = at(999)
		in.UseCount, in.RejectCount = 0, 0
		in.LastUsed, in.LastRejected = nil, nil
		in.SecretDigest = [32]byte{1, 2, 3}
		update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.UpdateAccessKey(ctx, &in) })
		got := mustFindKey(t, s, want.ID)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("after UpdateAccessKey (-want +got):\n%s", diff)
		}
	})
}

func testKeyUpdateMissing(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "billing")
	k := newKey(t, "acme", "billing", at(1))
	err := tryUpdate(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		k.Status = latchkey.StatusInactive
		return tx.UpdateAccessKey(ctx, k)
	})
	wantCode(t, err, latchkey.ENOTFOUND)
	if keys := allKeys(t, s); len(keys) != 0 {
		t.Errorf("UpdateAccessKey of a missing key created %v", keys)
	}
}

func testKeyDelete(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "billing")
	createPrincipal(t, s, "acme", "alice", latchkey.RoleAdmin)
	k1 := createKey(t, s, newKey(t, "acme", "billing", at(1)))
	k2 := createKey(t, s, newKey(t, "acme", "billing", at(2)))
	pk := createKey(t, s, newPrincipalKey(t, "acme", "alice", at(3)))
	del := func(id string) error {
		return tryUpdate(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.DeleteAccessKey(ctx, id) })
	}
	tests := []struct {
		name      string
		id        string
		want      string
		remaining []string
		appKeys   int
	}{
		{"application key", k1.ID, "", []string{k2.ID, pk.ID}, 1},
		{"again", k1.ID, latchkey.ENOTFOUND, []string{k2.ID, pk.ID}, 1},
		{"principal key", pk.ID, "", []string{k2.ID}, 1},
		{"unknown", "LKIAAAAAAAAAAAAAAAAA", latchkey.ENOTFOUND, []string{k2.ID}, 1},
		{"last application key", k2.ID, "", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, del(tt.id), tt.want)
			_, err := findKey(t, s, tt.id)
			wantCode(t, err, latchkey.ENOTFOUND)
			var got []string
			for id := range allKeys(t, s) {
				got = append(got, id)
			}
			sort.Strings(got)
			want := append([]string(nil), tt.remaining...)
			sort.Strings(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("remaining keys (-want +got):\n%s", diff)
			}
			app, err := findApp(t, s, "acme", "billing")
			if err != nil {
				t.Fatal(err)
			}
			if app.KeyCount != tt.appKeys {
				t.Errorf("KeyCount = %d, want %d", app.KeyCount, tt.appKeys)
			}
		})
	}
	// The principal is not deleted with its last key.
	if _, err := findPrincipal(t, s, "acme", "alice"); err != nil {
		t.Errorf("principal after deleting its key: %v", err)
	}
}

func testKeyList(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createAccount(t, s, "other")
	createApplication(t, s, "acme", "billing")
	createApplication(t, s, "acme", "shipping")
	createApplication(t, s, "other", "billing")
	createPrincipal(t, s, "acme", "alice", latchkey.RoleAdmin)
	createPrincipal(t, s, "other", "bob", latchkey.RoleViewer)

	// Created out of time order, with several keys sharing a creation
	// time, so the store must order by created_at and then by ID.
	var keys []*latchkey.AccessKey
	add := func(k *latchkey.AccessKey, role latchkey.Role) {
		createKey(t, s, k)
		want := *k
		want.Role = role
		keys = append(keys, &want)
	}
	withExternalID := func(k *latchkey.AccessKey, id string) *latchkey.AccessKey { k.ExternalID = id; return k }
	add(withExternalID(newKey(t, "acme", "billing", at(5)), "cus_1"), "")
	add(newKey(t, "acme", "billing", at(2)), "")
	add(newKey(t, "acme", "shipping", at(2)), "")
	add(withExternalID(newKey(t, "acme", "shipping", at(1)), "cus_1"), "")
	add(newPrincipalKey(t, "acme", "alice", at(2)), latchkey.RoleAdmin)
	add(newPrincipalKey(t, "acme", "alice", at(3)), latchkey.RoleAdmin)
	add(newKey(t, "other", "billing", at(2)), "")
	add(withExternalID(newKey(t, "other", "billing", at(4)), "cus_1"), "")
	add(newPrincipalKey(t, "other", "bob", at(0)), latchkey.RoleViewer)
	// Keys created in the same microsecond, the case the ID tie-break is for.
	add(newKey(t, "other", "billing", at(2)), "")
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.Before(b.CreatedAt)
		}
		return a.ID < b.ID
	})

	tests := []struct {
		name   string
		filter latchkey.AccessKeyFilter
		match  func(k *latchkey.AccessKey) bool
	}{
		{"everything", latchkey.AccessKeyFilter{}, func(k *latchkey.AccessKey) bool { return true }},
		{"account", latchkey.AccessKeyFilter{Account: "acme"}, func(k *latchkey.AccessKey) bool { return k.Account == "acme" }},
		{"other account", latchkey.AccessKeyFilter{Account: "other"}, func(k *latchkey.AccessKey) bool { return k.Account == "other" }},
		{"unknown account", latchkey.AccessKeyFilter{Account: "nobody"}, func(k *latchkey.AccessKey) bool { return false }},
		{"kind application", latchkey.AccessKeyFilter{Kind: "application"}, func(k *latchkey.AccessKey) bool { return k.Application != "" }},
		{"kind principal", latchkey.AccessKeyFilter{Kind: "principal"}, func(k *latchkey.AccessKey) bool { return k.Principal != "" }},
		{"account and kind", latchkey.AccessKeyFilter{Account: "acme", Kind: "principal"}, func(k *latchkey.AccessKey) bool {
			return k.Account == "acme" && k.Principal != ""
		}},
		{"application in every account", latchkey.AccessKeyFilter{Application: "billing"}, func(k *latchkey.AccessKey) bool { return k.Application == "billing" }},
		{"application of an account", latchkey.AccessKeyFilter{Account: "acme", Application: "billing"}, func(k *latchkey.AccessKey) bool {
			return k.Account == "acme" && k.Application == "billing"
		}},
		{"principal", latchkey.AccessKeyFilter{Account: "acme", Principal: "alice"}, func(k *latchkey.AccessKey) bool {
			return k.Account == "acme" && k.Principal == "alice"
		}},
		{"principal of another account", latchkey.AccessKeyFilter{Account: "acme", Principal: "bob"}, func(k *latchkey.AccessKey) bool { return false }},
		{"application and kind principal", latchkey.AccessKeyFilter{Application: "billing", Kind: "principal"}, func(k *latchkey.AccessKey) bool { return false }},
		{"external ID in every account", latchkey.AccessKeyFilter{ExternalID: "cus_1"}, func(k *latchkey.AccessKey) bool { return k.ExternalID == "cus_1" }},
		{"external ID of an account", latchkey.AccessKeyFilter{Account: "acme", ExternalID: "cus_1"}, func(k *latchkey.AccessKey) bool {
			return k.Account == "acme" && k.ExternalID == "cus_1"
		}},
		{"unknown external ID", latchkey.AccessKeyFilter{ExternalID: "cus_2"}, func(k *latchkey.AccessKey) bool { return false }},
	}
	for _, tt := range tests {
		var want []*latchkey.AccessKey
		for _, k := range keys {
			if tt.match(k) {
				want = append(want, k)
			}
		}
		for _, limit := range []int{0, 1, 2, 3} {
			t.Run(tt.name+"/limit="+string(rune('0'+limit)), func(t *testing.T) {
				f := tt.filter
				f.Limit = limit
				var got []*latchkey.AccessKey
				pages := 0
				for {
					var page []*latchkey.AccessKey
					var next string
					view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
						page, next, err = tx.ListAccessKeys(ctx, f)
						return err
					})
					pages++
					if limit > 0 && len(page) > limit {
						t.Fatalf("page %d has %d keys, limit %d", pages, len(page), limit)
					}
					got = append(got, page...)
					if next == "" {
						break
					}
					if len(page) == 0 || pages > 20 {
						t.Fatalf("page %d: %d keys and next token %q", pages, len(page), next)
					}
					f.After = next
				}
				if diff := cmp.Diff(keyIDs(want), keyIDs(got)); diff != "" {
					t.Fatalf("key order mismatch (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("keys mismatch (-want +got):\n%s", diff)
				}
				wantPages := 1
				if limit > 0 && len(want) > 0 {
					wantPages = (len(want) + limit - 1) / limit
				}
				if pages != wantPages {
					t.Errorf("took %d pages for %d keys with limit %d, want %d", pages, len(want), limit, wantPages)
				}
			})
		}
	}
}

func testKeyListBadToken(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	for _, tok := range []string{"not base64!", "bm8gZG90", "eC5MS0lB"} { // "no dot", "x.LKIA"
		t.Run(tok, func(t *testing.T) {
			err := s.View(t.Context(), func(tx latchkey.Tx) error {
				_, _, err := tx.ListAccessKeys(t.Context(), latchkey.AccessKeyFilter{After: tok})
				return err
			})
			wantCode(t, err, latchkey.EINVALID)
		})
	}
}

// signWith makes k a signing key with public key pub, as the service does.
func signWith(t *testing.T, k *latchkey.AccessKey, pub crypto.PublicKey) {
	t.Helper()
	p, err := latchkey.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	k.KeyType, k.PublicKey, k.SecretDigest = latchkey.KeyTypeSigning, p, latchkey.SigningDigest(k.ID)
}

func ed25519Public(t testing.TB) crypto.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func p256Public(t *testing.T) crypto.PublicKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

// testKeyListRowsDoNotCarryOver lists and scans keys of every kind, each
// followed by a plain one: a store that reads a page's rows through the
// same scan targets must give each key only its own fields, the same as
// FindAccessKey reads it alone.
func testKeyListRowsDoNotCarryOver(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "billing")
	createPrincipal(t, s, "acme", "alice", latchkey.RoleAdmin)
	full := []func(k *latchkey.AccessKey){
		func(k *latchkey.AccessKey) {
			k.Status = latchkey.StatusInactive
			k.ExpiresAt = ptr(at(86400))
			k.Exposed = &latchkey.Exposure{At: at(3), Where: "a leak report"}
			k.ExternalID = "cus_42"
			k.Metadata = json.RawMessage(`{"plan":"pro"}`)
		},
		func(k *latchkey.AccessKey) { signWith(t, k, ed25519Public(t)) },
	}
	var ids []string
	n := 0
	for _, edit := range full {
		k := newKey(t, "acme", "billing", at(n))
		edit(k)
		createKey(t, s, k)
		plain := newKey(t, "acme", "billing", at(n+1))
		createKey(t, s, plain)
		ids = append(ids, k.ID, plain.ID)
		n += 2
	}
	p := newPrincipalKey(t, "acme", "alice", at(n))
	createKey(t, s, p)
	ids = append(ids, p.ID)

	var listed []*latchkey.AccessKey
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		listed, _, err = tx.ListAccessKeys(ctx, latchkey.AccessKeyFilter{Account: "acme", Limit: 100})
		return err
	})
	if diff := cmp.Diff(ids, keyIDs(listed)); diff != "" {
		t.Fatalf("ListAccessKeys IDs (-want +got):\n%s", diff)
	}
	scanned := allKeys(t, s)
	for _, got := range listed {
		want := mustFindKey(t, s, got.ID)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ListAccessKeys gave %s unlike FindAccessKey (-find +list):\n%s", got.ID, diff)
		}
		if diff := cmp.Diff(want, scanned[got.ID]); diff != "" {
			t.Errorf("ScanAccessKeys gave %s unlike FindAccessKey (-find +scan):\n%s", got.ID, diff)
		}
	}
}

// testKeyListPolicyCandidates: a list with a Policy filter gives exactly
// the keys latchkey.PolicyCandidates describes, in order, across pages:
// created at or before CreatedBefore; expiring at or before ExpiresBefore;
// created and last used (if ever) at or before IdleBefore; not Active.
// Each bound is checked at the second before, at and after the times the
// keys hold, so that "at or before" is tested at the edge.
func testKeyListPolicyCandidates(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "billing")
	type key struct {
		k       *latchkey.AccessKey
		lastUse int // second of the last use; -1 never used
	}
	var keys []key
	for i, c := range []struct {
		created, expires, lastUse int // expires -1: never
		status                    latchkey.Status
	}{
		{10, -1, -1, latchkey.StatusActive},
		{20, 40, -1, latchkey.StatusActive},
		{30, -1, 50, latchkey.StatusActive},
		{40, 60, 45, latchkey.StatusActive},
		{50, -1, -1, latchkey.StatusInactive},
		{60, -1, 70, latchkey.StatusInactive},
		{70, 80, 75, latchkey.StatusActive},
	} {
		app := "billing"
		if i%2 == 1 {
			app = fmt.Sprintf("app-%d", i)
			createApplication(t, s, "acme", app)
		}
		k := newKey(t, "acme", app, at(c.created))
		k.Status = c.status
		if c.expires >= 0 {
			k.ExpiresAt = ptr(at(c.expires))
		}
		createKey(t, s, k)
		if c.lastUse >= 0 {
			if err := s.RecordUsage(t.Context(), []latchkey.UsageUpdate{{AccessKeyID: k.ID, Uses: 1,
				LastUsed: &latchkey.Use{At: at(c.lastUse), IP: "198.51.100.7"}}}); err != nil {
				t.Fatal(err)
			}
		}
		keys = append(keys, key{k, c.lastUse})
	}
	// match is PolicyCandidates' rule, in Go.
	match := func(c latchkey.PolicyCandidates, k key) bool {
		notAfter := func(t, bound time.Time) bool { return !bound.IsZero() && !t.After(bound) }
		switch {
		case c.NotActive && k.k.Status != latchkey.StatusActive:
			return true
		case k.k.ExpiresAt != nil && notAfter(*k.k.ExpiresAt, c.ExpiresBefore):
			return true
		case notAfter(k.k.CreatedAt, c.CreatedBefore):
			return true
		}
		return notAfter(k.k.CreatedAt, c.IdleBefore) && (k.lastUse < 0 || notAfter(at(k.lastUse), c.IdleBefore))
	}
	var filters []latchkey.PolicyCandidates
	filters = append(filters, latchkey.PolicyCandidates{}, latchkey.PolicyCandidates{NotActive: true})
	for _, sec := range []int{9, 10, 11, 29, 30, 31, 39, 40, 41, 44, 45, 46, 49, 50, 51, 59, 60, 61, 74, 75, 76, 79, 80, 81} {
		b := at(sec)
		filters = append(filters,
			latchkey.PolicyCandidates{CreatedBefore: b},
			latchkey.PolicyCandidates{ExpiresBefore: b},
			latchkey.PolicyCandidates{IdleBefore: b},
			latchkey.PolicyCandidates{ExpiresBefore: b, IdleBefore: at(sec - 30), NotActive: sec%2 == 0})
	}
	for _, c := range filters {
		var want []string
		for _, k := range keys {
			if match(c, k) {
				want = append(want, k.k.ID)
			}
		}
		var got []string
		f := latchkey.AccessKeyFilter{Limit: 2, Policy: &c}
		for page := 0; ; page++ {
			var (
				ks   []*latchkey.AccessKey
				next string
			)
			view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
				ks, next, err = tx.ListAccessKeys(ctx, f)
				return err
			})
			for _, k := range ks {
				got = append(got, k.ID)
			}
			if next == "" || page > len(keys) {
				break
			}
			f.After = next
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Policy %+v (-want +got):\n%s", c, diff)
		}
	}
}
