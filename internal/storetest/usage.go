package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

var usageTests = []test{
	{"RecordUsageMerges", testRecordUsageMerges},
	{"RecordUsageSkipsUnknownKeys", testRecordUsageSkipsUnknownKeys},
	{"RecordUsageBatchText", testRecordUsageBatchText},
	{"RecordUsageBatchMinutes", testRecordUsageBatchMinutes},
	{"RecordUsageLargeBatch", testRecordUsageLargeBatch},
	{"UsageReadAfterFlush", testUsageReadAfterFlush},
	{"UsageGoesWithKey", testUsageGoesWithKey},
}

// testRecordUsageLargeBatch sends one batch of more keys and minute rows
// than one statement takes (the store splits it, in one transaction),
// every key twice, in no particular order.
func testRecordUsageLargeBatch(t *testing.T, s latchkey.Store) {
	ids := SeedKeys(t, s, 1201)
	m0 := base.Truncate(time.Minute).Add(time.Hour)
	m1 := m0.Add(time.Minute)
	var batch []latchkey.UsageUpdate
	for _, id := range ids {
		batch = append(batch, latchkey.UsageUpdate{AccessKeyID: id, Uses: 1, LastUsed: &latchkey.Use{At: at(10), IP: "192.0.2.1", UserAgent: "old"},
			Minutes: []latchkey.UsageCount{{At: m0, Code: latchkey.CodeValid, Count: 1}, {At: m1, Code: latchkey.CodeValid, Count: 1}}})
	}
	for i := len(ids) - 1; i >= 0; i-- {
		batch = append(batch, latchkey.UsageUpdate{AccessKeyID: ids[i], Uses: 2, LastUsed: &latchkey.Use{At: at(20), IP: "192.0.2.2", UserAgent: "new"},
			Minutes: []latchkey.UsageCount{{At: m0, Code: latchkey.CodeValid, Count: 1}}})
	}
	if err := s.RecordUsage(t.Context(), batch); err != nil {
		t.Fatalf("RecordUsage of %d updates: %v", len(batch), err)
	}
	wantUse := &latchkey.Use{At: at(20), IP: "192.0.2.2", UserAgent: "new"}
	for _, id := range ids {
		k := mustFindKey(t, s, id)
		if k.UseCount != 3 || !cmp.Equal(k.LastUsed, wantUse) {
			t.Fatalf("key %s: use count %d, last used %+v; want 3 and %+v", id, k.UseCount, k.LastUsed, wantUse)
		}
	}
	want := []latchkey.UsageCount{{At: m0, Code: latchkey.CodeValid, Count: 2}, {At: m1, Code: latchkey.CodeValid, Count: 1}}
	for _, id := range []string{ids[0], ids[600], ids[1200]} {
		got, err := s.UsageSeries(t.Context(), id, m0, m1.Add(time.Minute))
		if err != nil {
			t.Fatalf("UsageSeries: %v", err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("series of %s (-want +got):\n%s", id, diff)
		}
	}
}

// testRecordUsageBatchText sends user agents and addresses that a batch
// sent as one document must carry unchanged (quotes, backslashes, control
// characters, non-ASCII), and text no store can hold (invalid UTF-8, NUL),
// which is refused as invalid with nothing of the batch written.
func testRecordUsageBatchText(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "billing")
	k := createKey(t, s, newKey(t, "acme", "billing", at(1)))
	n := 0
	for _, tc := range []struct{ name, ua, ip string }{
		{"quotes and backslashes", `a "quoted" \ agent\`, "192.0.2.1"},
		{"control characters", "tab\there\nnewline\x01\x1f", "192.0.2.2"},
		{"non-ASCII", "agent/1.0 (日本語; Ünïcödé) 🔑", "2001:db8::1"},
		{"JSON-looking", `"],[1,2,3],["`, `\"`},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n++
			use := &latchkey.Use{At: at(10 + n), IP: tc.ip, UserAgent: tc.ua}
			rej := &latchkey.Rejection{At: at(10 + n), IP: tc.ip, UserAgent: tc.ua, Reason: latchkey.CodeIPNotAllowed}
			err := s.RecordUsage(t.Context(), []latchkey.UsageUpdate{{AccessKeyID: k.ID, Uses: 1, LastUsed: use,
				Rejections: 1, LastRejected: rej, WouldDeny: 1, LastWouldDeny: rej}})
			if err != nil {
				t.Fatalf("RecordUsage: %v", err)
			}
			got := mustFindKey(t, s, k.ID)
			if diff := cmp.Diff(use, got.LastUsed); diff != "" {
				t.Errorf("last used (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(rej, got.LastRejected); diff != "" {
				t.Errorf("last rejected (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(rej, got.LastWouldDeny); diff != "" {
				t.Errorf("last would-deny (-want +got):\n%s", diff)
			}
			if got.UseCount != int64(n) || got.RejectCount != int64(n) || got.WouldDenyCount != int64(n) {
				t.Errorf("counts %d/%d/%d, want %d each", got.UseCount, got.RejectCount, got.WouldDenyCount, n)
			}
		})
	}
	before := mustFindKey(t, s, k.ID)
	for _, bad := range []string{"bad\xffutf8", "nul\x00byte"} {
		err := s.RecordUsage(t.Context(), []latchkey.UsageUpdate{
			{AccessKeyID: k.ID, Uses: 5, LastUsed: &latchkey.Use{At: at(100), IP: "192.0.2.9", UserAgent: "fine"}},
			{AccessKeyID: k.ID, Uses: 5, LastUsed: &latchkey.Use{At: at(99), IP: "192.0.2.9", UserAgent: bad}},
		})
		if code := latchkey.ErrorCode(err); code != latchkey.EINVALID {
			t.Errorf("RecordUsage with user agent %q: %v (code %q), want %s", bad, err, code, latchkey.EINVALID)
		}
	}
	if diff := cmp.Diff(before, mustFindKey(t, s, k.ID)); diff != "" {
		t.Errorf("a refused batch changed the key (-before +after):\n%s", diff)
	}
}

// testRecordUsageBatchMinutes sends per-minute counts as a flush does, for
// several keys at once, with one key, minute and code more than once in a
// batch (they add up), and a deleted key's counts (left out).
func testRecordUsageBatchMinutes(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "billing")
	createApplication(t, s, "acme", "shop")
	a := createKey(t, s, newKey(t, "acme", "billing", at(1)))
	b := createKey(t, s, newKey(t, "acme", "shop", at(2)))
	gone := createKey(t, s, newKey(t, "acme", "billing", at(3)))
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.DeleteAccessKey(ctx, gone.ID) })
	m0 := base.Truncate(time.Minute).Add(time.Hour)
	m1 := m0.Add(time.Minute)
	count := func(m time.Time, c latchkey.Code, n int64) latchkey.UsageCount {
		return latchkey.UsageCount{At: m, Code: c, Count: n}
	}
	batches := [][]latchkey.UsageUpdate{
		{
			{AccessKeyID: b.ID, Uses: 2, Minutes: []latchkey.UsageCount{count(m1, latchkey.CodeValid, 2)}},
			{AccessKeyID: gone.ID, Uses: 9, Minutes: []latchkey.UsageCount{count(m0, latchkey.CodeValid, 9)}},
			{AccessKeyID: a.ID, Uses: 3, Rejections: 1, Minutes: []latchkey.UsageCount{
				count(m0, latchkey.CodeValid, 1), count(m1, latchkey.CodeValid, 2), count(m1, latchkey.CodeIPNotAllowed, 1)}},
			{AccessKeyID: a.ID, Uses: 4, Minutes: []latchkey.UsageCount{count(m0, latchkey.CodeValid, 4)}},
		},
		{
			{AccessKeyID: a.ID, Uses: 1, Minutes: []latchkey.UsageCount{count(m1, latchkey.CodeValid, 1)}},
		},
	}
	for _, batch := range batches {
		if err := s.RecordUsage(t.Context(), batch); err != nil {
			t.Fatalf("RecordUsage: %v", err)
		}
	}
	for _, tc := range []struct {
		id   string
		want []latchkey.UsageCount
	}{
		{a.ID, []latchkey.UsageCount{count(m0, latchkey.CodeValid, 5), count(m1, latchkey.CodeIPNotAllowed, 1), count(m1, latchkey.CodeValid, 3)}},
		{b.ID, []latchkey.UsageCount{count(m1, latchkey.CodeValid, 2)}},
		{gone.ID, nil},
	} {
		got, err := s.UsageSeries(t.Context(), tc.id, m0, m1.Add(time.Minute))
		if err != nil {
			t.Fatalf("UsageSeries: %v", err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("series of %s (-want +got):\n%s", tc.id, diff)
		}
	}
	if got := mustFindKey(t, s, a.ID); got.UseCount != 8 || got.RejectCount != 1 {
		t.Errorf("key A counts %d/%d, want 8/1", got.UseCount, got.RejectCount)
	}
}

// testRecordUsageMerges applies batches in turn and checks the stored key
// after each: the newest time wins, counts add up, nothing else changes.
func testRecordUsageMerges(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "billing")
	createPrincipal(t, s, "acme", "alice", latchkey.RoleAdmin)
	a := createKey(t, s, newKey(t, "acme", "billing", at(1)))
	b := createKey(t, s, newPrincipalKey(t, "acme", "alice", at(1)))
	wantA, wantB := ptr(*a), ptr(*b)
	wantB.Role = latchkey.RoleAdmin

	use := func(sec int, ip, ua string) *latchkey.Use { return &latchkey.Use{At: at(sec), IP: ip, UserAgent: ua} }
	rej := func(sec int, ip string, why latchkey.Code) *latchkey.Rejection {
		return &latchkey.Rejection{At: at(sec), IP: ip, UserAgent: "probe/" + ip, Reason: why}
	}
	steps := []struct {
		name  string
		batch []latchkey.UsageUpdate
		edit  func()
	}{
		{"first use", []latchkey.UsageUpdate{{AccessKeyID: a.ID, Uses: 2, LastUsed: use(10, "192.0.2.1", "app/1")}},
			func() { wantA.UseCount = 2; wantA.LastUsed = use(10, "192.0.2.1", "app/1") }},
		{"newer use wins", []latchkey.UsageUpdate{{AccessKeyID: a.ID, Uses: 3, LastUsed: use(20, "192.0.2.2", "app/2")}},
			func() { wantA.UseCount = 5; wantA.LastUsed = use(20, "192.0.2.2", "app/2") }},
		{"older use only adds", []latchkey.UsageUpdate{{AccessKeyID: a.ID, Uses: 1, LastUsed: use(15, "192.0.2.3", "app/3")}},
			func() { wantA.UseCount = 6 }},
		{"first rejection keeps the use", []latchkey.UsageUpdate{{AccessKeyID: a.ID, Rejections: 4, LastRejected: rej(12, "198.51.100.1", latchkey.CodeInactive)}},
			func() { wantA.RejectCount = 4; wantA.LastRejected = rej(12, "198.51.100.1", latchkey.CodeInactive) }},
		{"older rejection only adds", []latchkey.UsageUpdate{{AccessKeyID: a.ID, Rejections: 1, LastRejected: rej(11, "198.51.100.2", latchkey.CodeExpired)}},
			func() { wantA.RejectCount = 5 }},
		{"newer rejection with an older use", []latchkey.UsageUpdate{{AccessKeyID: a.ID, Uses: 1, LastUsed: use(19, "192.0.2.4", "app/4"),
			Rejections: 1, LastRejected: rej(30, "198.51.100.3", latchkey.CodeExpired)}},
			func() {
				wantA.UseCount, wantA.RejectCount = 7, 6
				wantA.LastRejected = rej(30, "198.51.100.3", latchkey.CodeExpired)
			}},
		{"counts without times", []latchkey.UsageUpdate{{AccessKeyID: a.ID, Uses: 10, Rejections: 10}},
			func() { wantA.UseCount, wantA.RejectCount = 17, 16 }},
		{"two keys in one batch", []latchkey.UsageUpdate{
			{AccessKeyID: b.ID, Uses: 1, LastUsed: use(5, "2001:db8::1", "cli/1")},
			{AccessKeyID: a.ID, Uses: 1, LastUsed: use(40, "192.0.2.5", "app/5")},
		}, func() {
			wantB.UseCount = 1
			wantB.LastUsed = use(5, "2001:db8::1", "cli/1")
			wantA.UseCount = 18
			wantA.LastUsed = use(40, "192.0.2.5", "app/5")
		}},
		{"one key twice in one batch, newest first", []latchkey.UsageUpdate{
			{AccessKeyID: b.ID, Uses: 1, LastUsed: use(9, "2001:db8::9", "cli/9")},
			{AccessKeyID: b.ID, Uses: 2, LastUsed: use(7, "2001:db8::7", "cli/7")},
		}, func() {
			wantB.UseCount = 4
			wantB.LastUsed = use(9, "2001:db8::9", "cli/9")
		}},
		{"a use and a rejection in one batch", []latchkey.UsageUpdate{
			{AccessKeyID: b.ID, Uses: 1, LastUsed: use(50, "2001:db8::50", "cli/50")},
			{AccessKeyID: a.ID, Rejections: 1, LastRejected: rej(50, "198.51.100.50", latchkey.CodeExpired)},
		}, func() {
			wantB.UseCount = 5
			wantB.LastUsed = use(50, "2001:db8::50", "cli/50")
			wantA.RejectCount = 17
			wantA.LastRejected = rej(50, "198.51.100.50", latchkey.CodeExpired)
		}},
		{"uses without a time", []latchkey.UsageUpdate{{AccessKeyID: a.ID, Uses: 2}},
			func() { wantA.UseCount = 20 }},
		{"empty batch", nil, func() {}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := s.RecordUsage(t.Context(), st.batch); err != nil {
				t.Fatalf("RecordUsage: %v", err)
			}
			st.edit()
			if diff := cmp.Diff(wantA, mustFindKey(t, s, a.ID)); diff != "" {
				t.Errorf("key A (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantB, mustFindKey(t, s, b.ID)); diff != "" {
				t.Errorf("key B (-want +got):\n%s", diff)
			}
		})
	}
}

func testRecordUsageSkipsUnknownKeys(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "billing")
	k := createKey(t, s, newKey(t, "acme", "billing", at(1)))
	gone := createKey(t, s, newKey(t, "acme", "billing", at(2)))
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.DeleteAccessKey(ctx, gone.ID) })
	unknown, err := keyformat.NewID()
	if err != nil {
		t.Fatal(err)
	}
	err = s.RecordUsage(t.Context(), []latchkey.UsageUpdate{
		{AccessKeyID: unknown, Uses: 1, LastUsed: &latchkey.Use{At: at(5), IP: "192.0.2.1"}},
		{AccessKeyID: gone.ID, Uses: 1, LastUsed: &latchkey.Use{At: at(5), IP: "192.0.2.1"}},
		{AccessKeyID: k.ID, Uses: 2, LastUsed: &latchkey.Use{At: at(6), IP: "192.0.2.2"}},
	})
	if err != nil {
		t.Fatalf("RecordUsage with unknown keys: %v", err)
	}
	want := ptr(*k)
	want.UseCount = 2
	want.LastUsed = &latchkey.Use{At: at(6), IP: "192.0.2.2"}
	if diff := cmp.Diff(want, mustFindKey(t, s, k.ID)); diff != "" {
		t.Errorf("key after RecordUsage (-want +got):\n%s", diff)
	}
	keys := allKeys(t, s)
	if len(keys) != 1 {
		t.Errorf("RecordUsage created keys: %v", keys)
	}
}
