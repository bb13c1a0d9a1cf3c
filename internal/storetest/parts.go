package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
)

// partScanner is a store whose key index can be read in parts at once
// (sqlstore.DB's ScanKeyIndexParts).
type partScanner interface {
	KeyIndexParts() bool
	ScanKeyIndexParts(ctx context.Context, parts int, next func(part int) *latchkey.AccessKey, fn func(part int, k *latchkey.AccessKey) error) error
}

// SeedVariedKeys writes n keys of every kind the index loads differently,
// in turn: plain application keys, keys of an application with
// restrictions, metadata and an identity, keys with restrictions,
// report-only restrictions, an expiry (past), an external ID, metadata
// and a quota of their own, inactive keys, canaries, imported keys with a
// salt, signing keys, keys bound to a certificate and principals' keys.
// Their digests are of no secret anyone holds. It returns the keys by ID.
func SeedVariedKeys(tb testing.TB, s latchkey.Store, n int) map[string]*latchkey.AccessKey {
	tb.Helper()
	ctx := context.Background()
	pub, err := latchkey.NewPublicKey(ed25519Public(tb))
	if err != nil {
		tb.Fatal(err)
	}
	keys := map[string]*latchkey.AccessKey{}
	err = s.Update(ctx, func(tx latchkey.Tx) error {
		if err := tx.CreateAccount(ctx, &latchkey.Account{Name: "acme", CreatedAt: base}); err != nil {
			return err
		}
		if err := tx.CreateIdentity(ctx, &latchkey.Identity{ID: idnA, Account: "acme", Name: "a", ExternalID: "cus_1",
			Metadata: json.RawMessage(`{"p":1}`), RateLimit: &latchkey.RateLimit{PerMinute: 9}, CreatedAt: base, UpdatedAt: base}); err != nil {
			return err
		}
		if err := tx.CreateApplication(ctx, &latchkey.Application{Account: "acme", Name: "shop", CreatedAt: base, IdentityID: idnA,
			Metadata: json.RawMessage(`{"c":2}`), Restrictions: sampleRestrictions()}); err != nil {
			return err
		}
		return tx.CreatePrincipal(ctx, &latchkey.Principal{Account: "acme", Name: "alice", Role: latchkey.RoleAdmin, CreatedAt: base})
	})
	if err != nil {
		tb.Fatalf("seeding varied keys: %v", err)
	}
	// Batches of keys, each a transaction well within a store's
	// operation timeout on a busy machine.
	const batch = 200
	for from := 0; from < n; from += batch {
		if err := s.Update(ctx, func(tx latchkey.Tx) error { return seedVaried(ctx, tb, tx, pub, from, min(from+batch, n), keys) }); err != nil {
			tb.Fatalf("seeding %d varied keys: %v", n, err)
		}
	}
	return keys
}

// seedVaried writes SeedVariedKeys' keys from up to to in tx.
func seedVaried(ctx context.Context, tb testing.TB, tx latchkey.Tx, pub *latchkey.PublicKey, from, to int, keys map[string]*latchkey.AccessKey) error {
	for i := from; i < to; i++ {
		app := fmt.Sprintf("app-%05d", i)
		if err := tx.CreateApplication(ctx, &latchkey.Application{Account: "acme", Name: app, CreatedAt: base}); err != nil {
			return err
		}
		k := newKey(tb, "acme", app, at(i%1000))
		k.SecretDigest = sha256.Sum256([]byte(k.ID))
		switch i % 10 {
		case 1:
			k.Application = "shop"
		case 2:
			k.Restrictions = &latchkey.Restrictions{Scopes: []string{"shipments:read", "orders:write"}, RateLimit: &latchkey.RateLimit{PerMinute: 60}}
			k.ReportOnly = &latchkey.Restrictions{AllowedIPs: []string{"192.0.2.0/24"}}
			k.ExpiresAt = ptr(at(90))
			k.ExternalID, k.Metadata = fmt.Sprintf("cus_%d", i), json.RawMessage(`{"plan":"pro"}`)
		case 3:
			k.Status = latchkey.StatusInactive
		case 4:
			k.Canary = true
		case 5:
			k.Imported = &latchkey.Import{Origin: "tyk", OriginalID: fmt.Sprintf("key_%d", i), HashFormat: latchkey.HashSHA256Salted, ImportedAt: at(5)}
			k.Salt = []byte(fmt.Sprintf("salt\x00%d", i))
		case 6:
			k.KeyType, k.PublicKey, k.SecretDigest = latchkey.KeyTypeSigning, pub, latchkey.SigningDigest(k.ID)
		case 7:
			k.CertThumbprint = "a" + k.ID // does not parse: the index refuses the key
		case 8:
			k.Application, k.Principal = "", "alice"
		}
		if err := tx.CreateAccessKey(ctx, k); err != nil {
			return err
		}
		if i%10 == 9 {
			if err := tx.SetQuota(ctx, latchkey.QuotaOwner{Kind: latchkey.QuotaOwnerKey, ID: k.ID}, "acme", &latchkey.Quota{Remaining: 3}, at(1)); err != nil {
				return err
			}
		}
		keys[k.ID] = k
	}
	return nil
}

// testScanKeyIndexParts: a store that reads its key index in parts gives
// exactly what ScanKeyIndex gives, each key once, whatever the keys
// carry; with two parts, both read keys.
func testScanKeyIndexParts(t *testing.T, s latchkey.Store) {
	ps, ok := s.(partScanner)
	if !ok || !ps.KeyIndexParts() {
		t.Skip("the store does not read its key index in parts")
	}
	SeedVariedKeys(t, s, 3000)
	want := map[string]*latchkey.AccessKey{}
	if err := s.ScanKeyIndex(t.Context(), func(k *latchkey.AccessKey) error { want[k.ID] = k; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(want) != 3000 {
		t.Fatalf("ScanKeyIndex gives %d keys, want 3000", len(want))
	}
	const parts = 2
	var mu sync.Mutex
	got := map[string]*latchkey.AccessKey{}
	var perPart [parts]int
	err := ps.ScanKeyIndexParts(t.Context(), parts, func(int) *latchkey.AccessKey { return new(latchkey.AccessKey) },
		func(part int, k *latchkey.AccessKey) error {
			mu.Lock()
			defer mu.Unlock()
			if part < 0 || part >= parts {
				t.Errorf("part %d of %d", part, parts)
				return nil
			}
			if _, dup := got[k.ID]; dup {
				t.Errorf("ScanKeyIndexParts returned %s twice", k.ID)
			}
			got[k.ID] = k
			perPart[part]++
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ScanKeyIndexParts mismatch (-want +got):\n%s", diff)
	}
	if perPart[0] == 0 || perPart[1] == 0 {
		t.Errorf("keys per part %v: the table was not split", perPart)
	}
	// Every part reads as of the call's start: keys deleted and made
	// while the parts are read (here, once the first key has been read)
	// are neither missed nor seen. The deleted keys are spread over the
	// table (IDs are random), so each part has some of them to read.
	ids := slices.Sorted(maps.Keys(want))
	var once sync.Once
	var changed error
	got = map[string]*latchkey.AccessKey{}
	err = ps.ScanKeyIndexParts(t.Context(), parts, func(int) *latchkey.AccessKey { return new(latchkey.AccessKey) },
		func(part int, k *latchkey.AccessKey) error {
			once.Do(func() {
				changed = s.Update(t.Context(), func(tx latchkey.Tx) error {
					for i := 0; i < len(ids); i += 30 {
						if err := tx.DeleteAccessKey(t.Context(), ids[i]); err != nil {
							return err
						}
					}
					if err := tx.CreateApplication(t.Context(), &latchkey.Application{Account: "acme", Name: "made-meanwhile", CreatedAt: base}); err != nil {
						return err
					}
					return tx.CreateAccessKey(t.Context(), newKey(t, "acme", "made-meanwhile", at(1)))
				})
			})
			mu.Lock()
			defer mu.Unlock()
			got[k.ID] = k
			return nil
		})
	if err != nil || changed != nil {
		t.Fatalf("ScanKeyIndexParts with changes meanwhile: %v; the changes: %v", err, changed)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ScanKeyIndexParts with keys deleted and made meanwhile: not the call's start (-want +got):\n%s", diff)
	}
	// An error from fn stops every part and is returned as it is.
	stop := fmt.Errorf("stop")
	err = ps.ScanKeyIndexParts(t.Context(), parts, func(int) *latchkey.AccessKey { return new(latchkey.AccessKey) },
		func(int, *latchkey.AccessKey) error { return stop })
	if err != stop {
		t.Errorf("ScanKeyIndexParts = %v, want fn's error", err)
	}
}
