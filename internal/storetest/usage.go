package storetest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

var usageTests = []test{
	{"RecordUsageMerges", testRecordUsageMerges},
	{"RecordUsageSkipsUnknownKeys", testRecordUsageSkipsUnknownKeys},
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
