package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/storetest"
)

// TestUsageFlushPreparedStatements: the usage flush's statements are
// prepared once (sqlstore.DB.Prepared) and run again on whatever
// connection the writer has, including a new one after the old was
// closed; each flush adds to the key's counts and minutes as before.
func TestUsageFlushPreparedStatements(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "latchkey.db"))
	ctx := t.Context()
	ids := storetest.SeedKeys(t, s, 3)
	minute := time.Now().UTC().Truncate(time.Minute)

	for i, tc := range []struct {
		name   string
		before func()
	}{
		{"first flush prepares", func() {}},
		{"second flush reuses", func() {}},
		// With no idle connection kept, the writer's connection is closed
		// after each use: the next flush runs on a new one, where the
		// statements are not prepared yet.
		{"new connection", func() { s.Write.SetMaxIdleConns(0) }},
		{"new connection again", func() {}},
		{"idle connection kept again", func() { s.Write.SetMaxIdleConns(1) }},
	} {
		tc.before()
		at := minute.Add(time.Duration(i+1) * time.Second)
		var batch []latchkey.UsageUpdate
		for _, id := range ids[:2] {
			batch = append(batch, latchkey.UsageUpdate{AccessKeyID: id, Uses: 2,
				LastUsed: &latchkey.Use{At: at, IP: "192.0.2.7", UserAgent: "test/1"},
				Minutes:  []latchkey.UsageCount{{At: minute, Code: latchkey.CodeValid, Count: 2}}})
		}
		// a refusal: the statement for keys with more than uses
		batch[1].Rejections = 1
		batch[1].LastRejected = &latchkey.Rejection{At: at, IP: "203.0.113.9", UserAgent: "test/1", Reason: latchkey.CodeIPNotAllowed}
		if err := s.RecordUsage(ctx, batch); err != nil {
			t.Fatalf("%s: RecordUsage: %v", tc.name, err)
		}
		n := int64(i + 1)
		for j, id := range ids {
			var k *latchkey.AccessKey
			if err := s.View(ctx, func(tx latchkey.Tx) error {
				var err error
				k, err = tx.FindAccessKey(ctx, id)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			wantUses, wantRejects := 2*n, int64(0)
			if j == 1 {
				wantRejects = n
			}
			if j == 2 {
				wantUses = 0
			}
			if k.UseCount != wantUses || k.RejectCount != wantRejects {
				t.Errorf("%s: key %d: uses %d, rejections %d; want %d, %d", tc.name, j, k.UseCount, k.RejectCount, wantUses, wantRejects)
			}
			if j < 2 && (k.LastUsed == nil || !k.LastUsed.At.Equal(at)) {
				t.Errorf("%s: key %d: last used %+v, want at %v", tc.name, j, k.LastUsed, at)
			}
			series, err := s.UsageSeries(ctx, id, minute, minute.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			var want []latchkey.UsageCount
			if j < 2 {
				want = []latchkey.UsageCount{{At: minute, Code: latchkey.CodeValid, Count: 2 * n}}
			}
			if diff := cmp.Diff(want, series); diff != "" {
				t.Errorf("%s: key %d: minutes (-want +got):\n%s", tc.name, j, diff)
			}
		}
	}
}
