package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/metrics"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/verify"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	ts := httptest.NewServer(m.Handler())
	defer ts.Close()
	res, err := ts.Client().Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func TestMetrics(t *testing.T) {
	ctx := t.Context()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "latchkey.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ix := verify.NewIndex()
	m := metrics.New(ix)
	timed := m.Store(store)
	svc := manage.New(timed, ix, nil)
	boot, err := svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateApplication(ctx, latchkey.System(), latchkey.DefaultAccount, "billing", "", nil); err != nil {
		t.Fatal(err)
	}
	k, err := svc.CreateAccessKey(ctx, latchkey.System(), latchkey.DefaultAccount, "billing", latchkey.NewAccessKey{})
	if err != nil {
		t.Fatal(err)
	}
	v := verify.New(ix, verify.NewRecorder(timed, time.Hour, nil))
	v.Observer = m
	for range 200 {
		v.Verify(&verify.Request{Secret: k.Secret})
	}
	v.Verify(&verify.Request{Secret: "nonsense"})
	v.Verify(&verify.Request{})
	if _, _, err := svc.ListAccessKeys(context.Background(), latchkey.System(), latchkey.AccessKeyFilter{}); err != nil {
		t.Fatal(err)
	}
	m.ObserveDelivery("retry", 20*time.Millisecond)
	m.ObservePolicy(2, 1, 0, 0)

	out := scrape(t, m)
	for _, want := range []string{
		`latchkey_verifications_total{code="VALID"} 200`,
		`latchkey_verifications_total{code="MALFORMED"} 1`,
		`latchkey_verifications_total{code="MISSING"} 1`,
		`latchkey_verifications_total{code="NOT_FOUND"} 0`,
		`latchkey_verification_duration_seconds_count `,
		`latchkey_keys{kind="application",state="active"} 1`,
		`latchkey_keys{kind="principal",state="active"} 1`,
		`latchkey_index_keys 2`,
		`latchkey_store_duration_seconds_count{op="update"} `,
		`latchkey_store_duration_seconds_count{op="view"} `,
		`latchkey_webhook_deliveries_total{outcome="retry"} 1`,
		`latchkey_webhook_deliveries_total{outcome="delivered"} 0`,
		`latchkey_policy_actions_total{action="deactivated"} 1`,
		`go_goroutines `,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// No label holds a key ID, a secret, an account or an application.
	for _, bad := range []string{k.ID, k.Secret, boot.ID, "billing", `"default"`, "lksk_"} {
		if strings.Contains(out, bad) {
			t.Errorf("metrics hold %q", bad)
		}
	}
}

// downStore fails every timed operation as an unreachable database does.
type downStore struct{ latchkey.Store }

var errDown = latchkey.Unavailable(errors.New("connection refused"))

func (downStore) Update(context.Context, func(latchkey.Tx) error) error { return errDown }
func (downStore) View(context.Context, func(latchkey.Tx) error) error   { return errDown }
func (downStore) ScanAccessKeys(context.Context, func(*latchkey.AccessKey) error) error {
	return errDown
}
func (downStore) ScanKeyIndex(context.Context, func(*latchkey.AccessKey) error) error {
	return errDown
}
func (downStore) RecordUsage(context.Context, []latchkey.UsageUpdate) error { return errDown }
func (downStore) UsageSeries(context.Context, string, time.Time, time.Time) ([]latchkey.UsageCount, error) {
	return nil, errDown
}
func (downStore) CompactUsage(context.Context, time.Time) (int64, error) { return 0, errDown }
func (downStore) Ping(context.Context) error                             { return errDown }

// TestStoreSeriesFromTheStart: every store operation has its latency and
// error series at 0 before its first call, so that an alert on
// rate(latchkey_store_errors_total[5m]) sees the first error (a series
// that appears at 1 has no increase), and each error counts once.
func TestStoreSeriesFromTheStart(t *testing.T) {
	ops := []string{"update", "view", "scan_access_keys", "scan_key_index", "record_usage", "usage_series", "compact_usage", "ping"}
	m := metrics.New(nil)
	s := m.Store(downStore{})
	out := scrape(t, m)
	for _, op := range ops {
		for _, want := range []string{
			`latchkey_store_errors_total{op="` + op + `"} 0`,
			`latchkey_store_duration_seconds_count{op="` + op + `"} 0`,
		} {
			if !strings.Contains(out, want+"\n") {
				t.Errorf("first scrape lacks %s", want)
			}
		}
	}

	ctx := t.Context()
	_ = s.Update(ctx, nil)
	_ = s.View(ctx, nil)
	_ = s.ScanAccessKeys(ctx, nil)
	_ = s.ScanKeyIndex(ctx, nil)
	_ = s.RecordUsage(ctx, nil)
	_, _ = s.UsageSeries(ctx, "", time.Time{}, time.Time{})
	_, _ = s.CompactUsage(ctx, time.Time{})
	_ = s.Ping(ctx)
	out = scrape(t, m)
	for _, op := range ops {
		for _, want := range []string{
			`latchkey_store_errors_total{op="` + op + `"} 1`,
			`latchkey_store_duration_seconds_count{op="` + op + `"} 1`,
		} {
			if !strings.Contains(out, want+"\n") {
				t.Errorf("after one failed %s: no %s", op, want)
			}
		}
	}
}
