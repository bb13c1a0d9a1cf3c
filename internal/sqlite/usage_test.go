package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/storetest"
)

// TestRecordUsageSkipsDeletedKey flushes usage for a key that was used
// and then deleted: its usage row went with it, and the flush must write
// neither a usage row nor minute counts for it. The flush's statements
// take a key's usage row as proof that the key exists, so this checks
// that deleting a key deletes the row. The same flushes hold a key used
// before and one used for the first time: the statements that update
// the rows there are find fewer than they were given, and the ones that
// make the missing rows must make the new key's and leave the others'.
func TestRecordUsageSkipsDeletedKey(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "latchkey.db"))
	ctx := t.Context()
	ids := storetest.SeedKeys(t, s, 3)
	kept, gone, fresh := ids[0], ids[1], ids[2]
	at := time.Now().UTC().Truncate(time.Microsecond)
	usage := func(id string, at time.Time) latchkey.UsageUpdate {
		return latchkey.UsageUpdate{AccessKeyID: id, Uses: 1, Rejections: 1,
			LastUsed:     &latchkey.Use{At: at, IP: "192.0.2.1", UserAgent: "test/1"},
			LastRejected: &latchkey.Rejection{At: at, IP: "192.0.2.1", UserAgent: "test/1", Reason: latchkey.CodeIPNotAllowed},
			Minutes:      []latchkey.UsageCount{{At: at.Truncate(time.Minute), Code: latchkey.CodeValid, Count: 1}}}
	}
	plain := func(id string, at time.Time) latchkey.UsageUpdate { // the statement for uses only
		u := usage(id, at)
		u.Rejections, u.LastRejected = 0, nil
		return u
	}
	if err := s.RecordUsage(ctx, []latchkey.UsageUpdate{usage(kept, at), usage(gone, at)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx latchkey.Tx) error { return tx.DeleteAccessKey(ctx, gone) }); err != nil {
		t.Fatal(err)
	}
	later := at.Add(time.Second)
	for _, batch := range [][]latchkey.UsageUpdate{
		{usage(kept, later), usage(gone, later), usage(fresh, later)},
		{plain(kept, later), plain(gone, later), plain(fresh, later)},
	} {
		if err := s.RecordUsage(ctx, batch); err != nil {
			t.Fatalf("RecordUsage with a deleted key: %v", err)
		}
	}
	for _, q := range []struct {
		sql  string
		id   string
		want int64
	}{
		{`SELECT count(*) FROM key_usage WHERE access_key_id = ?`, gone, 0},
		{`SELECT count(*) FROM usage_minutes WHERE access_key_id = ?`, gone, 0},
		{`SELECT use_count FROM key_usage WHERE access_key_id = ?`, kept, 3},
		{`SELECT sum(count) FROM usage_minutes WHERE access_key_id = ?`, kept, 3},
		{`SELECT use_count FROM key_usage WHERE access_key_id = ?`, fresh, 2},
		{`SELECT reject_count FROM key_usage WHERE access_key_id = ?`, fresh, 1},
		{`SELECT sum(count) FROM usage_minutes WHERE access_key_id = ?`, fresh, 2},
	} {
		var got int64
		if err := s.Write.QueryRowContext(ctx, q.sql, q.id).Scan(&got); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
		if got != q.want {
			t.Errorf("%s for %s = %d, want %d", q.sql, q.id, got, q.want)
		}
	}
}
