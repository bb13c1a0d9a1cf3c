package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
)

var restrictionTests = []test{
	{"KeyRoundTrip", testRestrictionsKeyRoundTrip},
	{"ApplicationRoundTripAndJoin", testRestrictionsApplication},
	{"WouldDenyUsage", testWouldDenyUsage},
	{"UsageSeriesAndCompaction", testUsageSeries},
	{"UsageOfDeletedKey", testUsageOfDeletedKey},
}

func sampleRestrictions() *latchkey.Restrictions {
	return &latchkey.Restrictions{
		AllowedIPs:       []string{"203.0.113.0/24", "2001:db8::/32"},
		AllowedReferrers: []string{"https://*.example.com/*"},
		AndroidApps:      []latchkey.AndroidApp{{PackageName: "com.example.app", SHA1Fingerprint: "abcdef0123456789abcdef0123456789abcdef01"}},
		IOSBundleIDs:     []string{"com.example.ios"},
		Scopes:           []string{"shipments:read", "labels:*"},
		RateLimit:        &latchkey.RateLimit{PerSecond: 5, Burst: 10, PerMinute: 100},
	}
}

func testRestrictionsKeyRoundTrip(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "web")
	k := newKey(t, "acme", "web", at(1))
	k.Restrictions = sampleRestrictions()
	k.ReportOnly = &latchkey.Restrictions{AllowedIPs: []string{"198.51.100.0/24"}}
	createKey(t, s, k)
	got := mustFindKey(t, s, k.ID)
	if diff := cmp.Diff(k.Restrictions, got.Restrictions); diff != "" {
		t.Errorf("restrictions after create (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(k.ReportOnly, got.ReportOnly); diff != "" {
		t.Errorf("report-only after create (-want +got):\n%s", diff)
	}
	got.Restrictions, got.ReportOnly = got.ReportOnly, nil
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.UpdateAccessKey(ctx, got) })
	again := mustFindKey(t, s, k.ID)
	if diff := cmp.Diff(k.ReportOnly, again.Restrictions); diff != "" || again.ReportOnly != nil {
		t.Errorf("after update: restrictions diff %s, report-only %+v", diff, again.ReportOnly)
	}
}

func testRestrictionsApplication(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	app := &latchkey.Application{Account: "acme", Name: "web", CreatedAt: at(0), Restrictions: sampleRestrictions()}
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.CreateApplication(ctx, app) })
	k := createKey(t, s, newKey(t, "acme", "web", at(1)))
	got, err := findApp(t, s, "acme", "web")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(app.Restrictions, got.Restrictions); diff != "" {
		t.Errorf("application restrictions (-want +got):\n%s", diff)
	}
	// keys are loaded with their application's restrictions, for the index
	if diff := cmp.Diff(app.Restrictions, mustFindKey(t, s, k.ID).AppRestrictions); diff != "" {
		t.Errorf("FindAccessKey AppRestrictions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(app.Restrictions, allKeys(t, s)[k.ID].AppRestrictions); diff != "" {
		t.Errorf("ScanAccessKeys AppRestrictions (-want +got):\n%s", diff)
	}
	got.Restrictions = nil
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.UpdateApplication(ctx, got) })
	if r := mustFindKey(t, s, k.ID).AppRestrictions; r != nil {
		t.Errorf("after clearing: AppRestrictions = %+v", r)
	}
}

func testWouldDenyUsage(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "web")
	k := createKey(t, s, newKey(t, "acme", "web", at(0)))
	newer := &latchkey.Rejection{At: at(20), IP: "198.51.100.2", UserAgent: "b", Reason: latchkey.CodeIPNotAllowed}
	older := &latchkey.Rejection{At: at(10), IP: "198.51.100.1", UserAgent: "a", Reason: latchkey.CodeScopeDenied}
	for _, b := range [][]latchkey.UsageUpdate{
		{{AccessKeyID: k.ID, Uses: 3, WouldDeny: 2, LastWouldDeny: newer}},
		{{AccessKeyID: k.ID, Uses: 1, WouldDeny: 1, LastWouldDeny: older}},
	} {
		if err := s.RecordUsage(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	got := mustFindKey(t, s, k.ID)
	if got.WouldDenyCount != 3 || got.UseCount != 4 {
		t.Errorf("counts: would deny %d, uses %d; want 3 and 4", got.WouldDenyCount, got.UseCount)
	}
	if diff := cmp.Diff(newer, got.LastWouldDeny); diff != "" {
		t.Errorf("newest would-deny wins (-want +got):\n%s", diff)
	}
}

func testUsageSeries(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "web")
	k := createKey(t, s, newKey(t, "acme", "web", at(0)))
	day := time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC)
	m := func(minutes int) time.Time { return day.Add(time.Duration(minutes) * time.Minute) }
	batches := [][]latchkey.UsageCount{
		{{At: m(0), Code: latchkey.CodeValid, Count: 5}, {At: m(1), Code: latchkey.CodeValid, Count: 2}},
		{{At: m(1), Code: latchkey.CodeValid, Count: 3}, {At: m(1), Code: latchkey.CodeInactive, Count: 1}},
		{{At: m(125), Code: latchkey.CodeValid, Count: 7}},
	}
	for _, b := range batches {
		if err := s.RecordUsage(t.Context(), []latchkey.UsageUpdate{{AccessKeyID: k.ID, Minutes: b}}); err != nil {
			t.Fatal(err)
		}
	}
	series := func(from, to time.Time) []latchkey.UsageCount {
		t.Helper()
		got, err := s.UsageSeries(t.Context(), k.ID, from, to)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	want := []latchkey.UsageCount{
		{At: m(0), Code: latchkey.CodeValid, Count: 5},
		{At: m(1), Code: latchkey.CodeInactive, Count: 1},
		{At: m(1), Code: latchkey.CodeValid, Count: 5},
		{At: m(125), Code: latchkey.CodeValid, Count: 7},
	}
	if diff := cmp.Diff(want, series(m(0), m(200))); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[1:3], series(m(1), m(2))); diff != "" {
		t.Errorf("series of minute 1 (-want +got):\n%s", diff)
	}
	// roll the first hour up: its minutes become one hourly row per code
	n, err := s.CompactUsage(t.Context(), m(70))
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("CompactUsage folded %d minute rows, want 3", n)
	}
	want = []latchkey.UsageCount{
		{At: m(0), Code: latchkey.CodeInactive, Count: 1},
		{At: m(0), Code: latchkey.CodeValid, Count: 10},
		{At: m(125), Code: latchkey.CodeValid, Count: 7},
	}
	if diff := cmp.Diff(want, series(m(0), m(200))); diff != "" {
		t.Errorf("series after compaction (-want +got):\n%s", diff)
	}
	if n, err := s.CompactUsage(t.Context(), m(70)); err != nil || n != 0 {
		t.Errorf("second compaction: %d, %v; want 0, nil", n, err)
	}
}

func testUsageOfDeletedKey(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createApplication(t, s, "acme", "web")
	k := createKey(t, s, newKey(t, "acme", "web", at(0)))
	day := time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC)
	if err := s.RecordUsage(t.Context(), []latchkey.UsageUpdate{{AccessKeyID: k.ID, Minutes: []latchkey.UsageCount{{At: day, Code: latchkey.CodeValid, Count: 1}}}}); err != nil {
		t.Fatal(err)
	}
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.DeleteAccessKey(ctx, k.ID) })
	// usage arriving after the delete is dropped, and the series is gone
	if err := s.RecordUsage(t.Context(), []latchkey.UsageUpdate{{AccessKeyID: k.ID, Uses: 1, Minutes: []latchkey.UsageCount{{At: day, Code: latchkey.CodeValid, Count: 1}}}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.UsageSeries(t.Context(), k.ID, day, day.Add(time.Hour)); err != nil || len(got) != 0 {
		t.Errorf("series of a deleted key = %v, %v; want empty", got, err)
	}
}
