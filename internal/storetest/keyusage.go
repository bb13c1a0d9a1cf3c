package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
)

// A key's usage has a row of its own (key_usage), apart from the key's:
// these cases check that every reader sees it as the key's, and that it
// goes with the key.

// testUsageReadAfterFlush: a key read, a listing and a scan right after a
// flush see what it wrote; a key never used reads as no usage.
func testUsageReadAfterFlush(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "billing")
	createApplication(t, s, "acme", "shop")
	used := createKey(t, s, newKey(t, "acme", "billing", at(1)))
	idle := createKey(t, s, newKey(t, "acme", "shop", at(2)))
	use := &latchkey.Use{At: at(30), IP: "192.0.2.7", UserAgent: "curl/8.5.0"}
	rej := &latchkey.Rejection{At: at(31), IP: "192.0.2.8", UserAgent: "bot", Reason: latchkey.CodeIPNotAllowed}
	wd := &latchkey.Rejection{At: at(32), IP: "192.0.2.9", UserAgent: "app", Reason: latchkey.CodeScopeDenied}
	if err := s.RecordUsage(t.Context(), []latchkey.UsageUpdate{{AccessKeyID: used.ID, Uses: 3, Rejections: 1, WouldDeny: 2,
		LastUsed: use, LastRejected: rej, LastWouldDeny: wd}}); err != nil {
		t.Fatal(err)
	}
	check := func(where string, k *latchkey.AccessKey) {
		t.Helper()
		switch k.ID {
		case used.ID:
			if k.UseCount != 3 || k.RejectCount != 1 || k.WouldDenyCount != 2 {
				t.Errorf("%s: counts %d/%d/%d, want 3/1/2", where, k.UseCount, k.RejectCount, k.WouldDenyCount)
			}
			if diff := cmp.Diff(use, k.LastUsed); diff != "" {
				t.Errorf("%s: last used (-want +got):\n%s", where, diff)
			}
			if diff := cmp.Diff(rej, k.LastRejected); diff != "" {
				t.Errorf("%s: last rejected (-want +got):\n%s", where, diff)
			}
			if diff := cmp.Diff(wd, k.LastWouldDeny); diff != "" {
				t.Errorf("%s: last would-deny (-want +got):\n%s", where, diff)
			}
		case idle.ID:
			if k.UseCount != 0 || k.RejectCount != 0 || k.WouldDenyCount != 0 || k.LastUsed != nil || k.LastRejected != nil || k.LastWouldDeny != nil {
				t.Errorf("%s: a key never used reads %+v", where, k)
			}
		}
	}
	check("FindAccessKey", mustFindKey(t, s, used.ID))
	check("FindAccessKey", mustFindKey(t, s, idle.ID))
	all := allKeys(t, s)
	if len(all) != 2 {
		t.Fatalf("listing has %d keys, want 2", len(all))
	}
	for _, k := range all {
		check("ListAccessKeys", k)
	}
	n := 0
	if err := s.ScanAccessKeys(t.Context(), func(k *latchkey.AccessKey) error {
		n++
		check("ScanAccessKeys", k)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("ScanAccessKeys saw %d keys, want 2", n)
	}
}

// testUsageGoesWithKey: deleting a key deletes its usage, so that a key
// made again with the same ID (an import may) starts with none, and a
// flush that still holds the deleted key's usage writes nothing of it.
func testUsageGoesWithKey(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "billing")
	k := createKey(t, s, newKey(t, "acme", "billing", at(1)))
	m0 := base.Truncate(time.Minute).Add(time.Hour)
	flush := func() {
		t.Helper()
		if err := s.RecordUsage(t.Context(), []latchkey.UsageUpdate{{AccessKeyID: k.ID, Uses: 4,
			LastUsed: &latchkey.Use{At: at(20), IP: "192.0.2.1", UserAgent: "ua"},
			Minutes:  []latchkey.UsageCount{{At: m0, Code: latchkey.CodeValid, Count: 4}}}}); err != nil {
			t.Fatal(err)
		}
	}
	flush()
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.DeleteAccessKey(ctx, k.ID) })
	flush() // the deleted key's usage, still in memory
	again := newKey(t, "acme", "billing", at(40))
	again.ID = k.ID
	createKey(t, s, again)
	got := mustFindKey(t, s, k.ID)
	if got.UseCount != 0 || got.LastUsed != nil {
		t.Errorf("a key made again with a deleted key's ID reads %d uses, last used %v; want none", got.UseCount, got.LastUsed)
	}
	series, err := s.UsageSeries(t.Context(), k.ID, m0, m0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(series) != 0 {
		t.Errorf("series of a key made again: %v, want none", series)
	}
	flush()
	if got := mustFindKey(t, s, k.ID); got.UseCount != 4 {
		t.Errorf("after a flush, %d uses, want 4", got.UseCount)
	}
}

// KeyUsageMigration checks migration 19: usage kept in the key's row
// before it (back to that schema through raw) reads the same after it,
// and a key without usage gets no usage row.
func KeyUsageMigration(t *testing.T, openDB func() (latchkey.Store, error), raw func(latchkey.Store) *sql.DB) {
	t.Helper()
	ctx := t.Context()
	s, err := openDB()
	if err != nil {
		t.Fatal(err)
	}
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "billing")
	createApplication(t, s, "acme", "shop")
	used := createKey(t, s, newKey(t, "acme", "billing", at(1)))
	idle := createKey(t, s, newKey(t, "acme", "shop", at(2)))
	db := raw(s)
	qs := []string{`DROP TABLE key_usage`, `DELETE FROM schema_migrations WHERE version = 19`}
	for _, c := range []string{"use_count", "reject_count", "would_deny_count"} {
		qs = append(qs, `ALTER TABLE access_keys ADD COLUMN `+c+` BIGINT NOT NULL DEFAULT 0`)
	}
	for _, e := range []string{"used", "rejected", "would_deny"} {
		qs = append(qs, `ALTER TABLE access_keys ADD COLUMN last_`+e+`_at BIGINT`,
			`ALTER TABLE access_keys ADD COLUMN last_`+e+`_ip TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE access_keys ADD COLUMN last_`+e+`_ua TEXT NOT NULL DEFAULT ''`)
		if e != "used" {
			qs = append(qs, `ALTER TABLE access_keys ADD COLUMN last_`+e+`_reason TEXT NOT NULL DEFAULT ''`)
		}
	}
	qs = append(qs, fmt.Sprintf(`UPDATE access_keys SET use_count = 7, reject_count = 2, would_deny_count = 1,
		last_used_at = %d, last_used_ip = '192.0.2.1', last_used_ua = 'curl/8.5.0',
		last_rejected_at = %d, last_rejected_ip = '192.0.2.2', last_rejected_ua = 'bot', last_rejected_reason = '%s',
		last_would_deny_at = %d, last_would_deny_ip = '192.0.2.3', last_would_deny_ua = 'app', last_would_deny_reason = '%s'
		WHERE id = '%s'`, at(10).UnixMicro(), at(11).UnixMicro(), latchkey.CodeIPNotAllowed, at(12).UnixMicro(), latchkey.CodeScopeDenied, used.ID))
	for _, q := range qs {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s.Close()
	s, err = openDB()
	if err != nil {
		t.Fatalf("migrating: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	got := mustFindKey(t, s, used.ID)
	want := latchkey.AccessKey{UseCount: 7, RejectCount: 2, WouldDenyCount: 1,
		LastUsed:      &latchkey.Use{At: at(10), IP: "192.0.2.1", UserAgent: "curl/8.5.0"},
		LastRejected:  &latchkey.Rejection{At: at(11), IP: "192.0.2.2", UserAgent: "bot", Reason: latchkey.CodeIPNotAllowed},
		LastWouldDeny: &latchkey.Rejection{At: at(12), IP: "192.0.2.3", UserAgent: "app", Reason: latchkey.CodeScopeDenied}}
	gotUsage := latchkey.AccessKey{UseCount: got.UseCount, RejectCount: got.RejectCount, WouldDenyCount: got.WouldDenyCount,
		LastUsed: got.LastUsed, LastRejected: got.LastRejected, LastWouldDeny: got.LastWouldDeny}
	if diff := cmp.Diff(want, gotUsage); diff != "" {
		t.Errorf("usage after migration (-want +got):\n%s", diff)
	}
	var rows int
	if err := raw(s).QueryRowContext(ctx, `SELECT COUNT(*) FROM key_usage`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Errorf("%d usage rows after migration, want 1 (key %s was never used)", rows, idle.ID)
	}
}
