package console

import (
	"context"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
)

func TestNiceMax(t *testing.T) {
	tests := []struct{ in, want int64 }{
		{0, 2}, {1, 2}, {2, 2}, {3, 4}, {5, 6}, {9, 10}, {11, 20}, {39, 40}, {41, 60}, {99, 100}, {101, 200}, {950, 1000}, {1001, 2000},
	}
	for _, tt := range tests {
		if got := niceMax(tt.in); got != tt.want {
			t.Errorf("niceMax(%d) = %d, want %d", tt.in, got, tt.want)
		}
		if got := niceMax(tt.in); got%2 != 0 || got < tt.in {
			t.Errorf("niceMax(%d) = %d: not even or below", tt.in, got)
		}
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "just now"}, {5 * time.Second, "just now"}, {42 * time.Second, "42 s ago"}, {5 * time.Minute, "5 min ago"},
		{3 * time.Hour, "3 h ago"}, {47 * time.Hour, "47 h ago"}, {3 * 24 * time.Hour, "3 days ago"},
		{90 * 24 * time.Hour, "3 months ago"}, {3 * 365 * 24 * time.Hour, "3 years ago"}, {-5 * 24 * time.Hour, "in 5 days"},
	}
	for _, tt := range tests {
		if got := ago(now, now.Add(-tt.d)); got != tt.want {
			t.Errorf("ago(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := expiry(now, nil); got != "never" {
		t.Errorf("expiry(nil) = %q", got)
	}
	past := now.Add(-time.Hour)
	if got := expiry(now, &past); got != "expired 1 h ago" {
		t.Errorf("expiry(past) = %q", got)
	}
}

// TestChart lays out a rotation chart from known calls and reads it back.
func TestChart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	old := e.app("web")
	nk := e.key("web")
	start := e.clock.Now()
	// ten minutes: the old key's calls fall from 10 to 0 a minute while
	// the new key's rise from 0 to 10; a few refused calls at the end.
	for m := range 10 {
		for range 10 - m {
			e.call(old.Secret, "203.0.113.1", "a")
		}
		for range m {
			e.call(nk.Secret, "203.0.113.2", "b")
		}
		e.clock.Advance(time.Minute)
	}
	st := latchkey.StatusInactive
	if _, err := e.svc.UpdateAccessKey(ctx, e.op, old.ID, latchkey.AccessKeyUpdate{Status: &st}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		e.call(old.Secret, "198.51.100.7", "cron")
	}
	e.clock.Advance(time.Minute + 30*time.Second)

	u := &user{sessionView: sessionView{account: "default"}, actor: e.op}
	oldKey, newKey := e.get(old.ID), e.get(nk.ID)
	m, err := e.con.chartOf(ctx, u, oldKey, newKey, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Panels) != 2 || len(m.Legend) != 2 || len(m.Summary) != 2 {
		t.Fatalf("panels %d, legend %d, summary %d", len(m.Panels), len(m.Legend), len(m.Summary))
	}
	if m.Panels[0].YTicks[2].Label != "10" || m.Panels[1].YTicks[2].Label != "4" {
		t.Errorf("y axis tops: valid %s, rejected %s; want 10 and 4", m.Panels[0].YTicks[2].Label, m.Panels[1].YTicks[2].Label)
	}
	// 60 complete minutes: the minute in progress is left out
	for _, l := range m.Panels[0].Lines {
		if n := strings.Count(l.D, "L") + 1; n != 60 {
			t.Errorf("%s line has %d points, want 60", l.Label, n)
		}
	}
	if m.Marker == nil || !strings.Contains(m.Marker.Label, "deactivated") {
		t.Error("no deactivation marker")
	}
	if n := len(m.Panels[1].Lines[0].Marks); n != 1 {
		t.Errorf("the old key's rejected line has %d markers, want 1 (one minute with refusals)", n)
	}
	// the table, newest first: the refused minute, then the crossover
	rowAt := func(at time.Time) []int64 {
		for _, r := range m.Table.Rows {
			if r.At.Equal(at) {
				return r.Cells
			}
		}
		t.Fatalf("no table row at %s", at)
		return nil
	}
	if diff := cmp.Diff([]int64{0, 3, 0, 0}, rowAt(start.Add(10*time.Minute))); diff != "" {
		t.Errorf("row of the refused minute (old valid, old rejected, new valid, new rejected):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{7, 0, 3, 0}, rowAt(start.Add(3*time.Minute))); diff != "" {
		t.Errorf("row of minute 3:\n%s", diff)
	}
	old10 := m.Summary[0]
	if old10.Rejected != 3 || len(old10.ByCode) != 1 || old10.ByCode[0].Code != latchkey.CodeInactive {
		t.Errorf("old key summary: %+v", old10)
	}
	if !strings.Contains(m.Desc, "old key "+old.ID) || !strings.Contains(m.Desc, "new key "+nk.ID) {
		t.Errorf("the text description names no keys: %q", m.Desc)
	}

	// Rendered: an accessible SVG, readable without colour.
	var b strings.Builder
	if err := e.con.pages["chart"].ExecuteTemplate(&b, "chart", m); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{
		`role="img"`, `<title id="chart-svg-title">`, `<desc id="chart-svg-desc">`, `stroke-dasharray="7 4"`,
		`class="end-label s-old"`, `>old</text>`, `>new</text>`, `(dashed line, circles)`, `(solid line, squares)`,
		`<circle cx=`, "data-refresh-url=\"/console/keys/" + old.ID + "/chart?hours=1&amp;with=" + nk.ID + `"`,
		"<th scope=\"col\">old: valid</th>",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the chart lacks %q", want)
		}
	}
	if regexp.MustCompile(`NaN|Inf`).MatchString(html) {
		t.Error("the chart has NaN or Inf coordinates")
	}

	// A key nobody ever used still draws.
	idle := e.app("idle")
	m, err = e.con.chartOf(ctx, u, e.get(idle.ID), nil, 24)
	if err != nil {
		t.Fatal(err)
	}
	if m.Hours != 24 || m.StepLabel != "10 minutes" || len(m.Legend) != 1 {
		t.Errorf("24h chart of an idle key: hours %d, step %q", m.Hours, m.StepLabel)
	}
}

// TestChartDefaultWindow checks that the rotation chart's default period
// shows the traffic: from just before the first call of either key in the
// last three hours, not three hours with the traffic as a sliver at the
// right edge. A period the user chose is kept.
func TestChartDefaultWindow(t *testing.T) {
	tests := []struct {
		name      string
		oldFrom   time.Duration // the old key is called every minute since this long ago (0: never)
		newFrom   time.Duration // likewise the new key
		hours     int           // the period asked for (0: none)
		wantSteps int           // minutes on the chart
		wantTitle string
	}{
		{"a rotation 40 minutes old", 40 * time.Minute, 15 * time.Minute, 0, 45, "over the last 45 minutes"},
		{"the new key first", 0, 22 * time.Minute, 0, 25, "over the last 25 minutes"},
		{"traffic of 3 minutes", 3 * time.Minute, 0, 0, 10, "over the last 10 minutes"},
		{"traffic of an hour", 59 * time.Minute, 30 * time.Minute, 0, 60, "over the last hour"},
		{"traffic for longer than 3 hours", 5 * time.Hour, time.Hour, 0, 180, "over the last 3 hours"},
		{"no traffic", 0, 0, 0, 180, "over the last 3 hours"},
		{"a period chosen", 40 * time.Minute, 15 * time.Minute, 3, 180, "over the last 3 hours"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			old := e.app("web")
			nk := e.key("web")
			span := max(tt.oldFrom, tt.newFrom)
			for at := time.Duration(0); at < span; at += time.Minute {
				if tt.oldFrom > 0 && at >= span-tt.oldFrom {
					e.call(old.Secret, "203.0.113.1", "web-1")
				}
				if tt.newFrom > 0 && at >= span-tt.newFrom {
					e.call(nk.Secret, "203.0.113.2", "web-2")
				}
				e.clock.Advance(time.Minute)
			}
			if span == 0 {
				e.clock.Advance(time.Minute)
			}
			e.clock.Advance(30 * time.Second)
			u := &user{sessionView: sessionView{account: "default"}, actor: e.op}
			m, err := e.con.chartOf(t.Context(), u, e.get(old.ID), e.get(nk.ID), tt.hours)
			if err != nil {
				t.Fatal(err)
			}
			pts := strings.Count(m.Panels[0].Lines[0].D, "L") + 1
			if pts != tt.wantSteps || !strings.Contains(m.Title, tt.wantTitle) {
				t.Errorf("the chart has %d minutes, titled %q; want %d, %q", pts, m.Title, tt.wantSteps, tt.wantTitle)
			}
			if tt.hours == 0 && m.Hours != 0 {
				t.Errorf("the chart chose its period, but says it shows %d hours", m.Hours)
			}
			if tt.hours == 0 && strings.Contains(m.RefreshURL, "hours=") {
				t.Errorf("the live update of a chart that chooses its period asks for a fixed one: %s", m.RefreshURL)
			}
			// Traffic of 20 minutes or more, within the chart's three
			// hours, fills at least three quarters of its width.
			if tt.hours == 0 && span >= 20*time.Minute && span <= 3*time.Hour {
				if share := float64(span) / float64(time.Duration(pts)*time.Minute); share < 0.75 {
					t.Errorf("the traffic fills %.0f%% of the chart's width, want 75%% or more", share*100)
				}
			}
		})
	}
}

func TestSpreadLabels(t *testing.T) {
	lines := []chartLine{{Label: "old", LabelY: 100}, {Label: "new", LabelY: 100}}
	spreadLabels(lines, 20, 130)
	if d := lines[0].LabelY - lines[1].LabelY; d < 12 && d > -12 {
		t.Errorf("labels still overlap: %v and %v", lines[0].LabelY, lines[1].LabelY)
	}
	lines = []chartLine{{Label: "old", LabelY: 130}, {Label: "new", LabelY: 130}}
	spreadLabels(lines, 20, 130)
	for _, l := range lines {
		if l.LabelY > 130 || l.LabelY < 20 {
			t.Errorf("label %s moved out of the panel: %v", l.Label, l.LabelY)
		}
	}
}

func TestParseRestrictions(t *testing.T) {
	in := url.Values{
		"allowed_ips":       {" 10.0.0.0/8 ,\n192.0.2.1\r\n\r\n"},
		"allowed_referrers": {"https://example.com/*"},
		"scopes":            {"a:read\nb:*"},
		"ios_bundle_ids":    {"com.example.ios"},
		"android_apps":      {"com.example.app 0123456789abcdef0123456789abcdef01234567"},
		"per_second":        {"2.5"},
		"burst":             {"5"},
	}
	r, err := parseRestrictions(in)
	if err != nil {
		t.Fatal(err)
	}
	want := &latchkey.Restrictions{
		AllowedIPs: []string{"10.0.0.0/8", "192.0.2.1/32"}, AllowedReferrers: []string{"https://example.com/*"},
		Scopes: []string{"a:read", "b:*"}, IOSBundleIDs: []string{"com.example.ios"},
		AndroidApps: []latchkey.AndroidApp{{PackageName: "com.example.app", SHA1Fingerprint: "0123456789abcdef0123456789abcdef01234567"}},
		RateLimit:   &latchkey.RateLimit{PerSecond: 2.5, Burst: 5},
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("parsed (-want +got):\n%s", diff)
	}
	// and back into the form, and parsed again: the same
	f := formOf(r)
	again, err := parseRestrictions(url.Values{
		"allowed_ips": {f.IPs}, "allowed_referrers": {f.Referrers}, "scopes": {f.Scopes}, "ios_bundle_ids": {f.IOS},
		"android_apps": {f.Android}, "per_second": {f.PerSecond}, "burst": {f.Burst}, "per_minute": {f.PerMinute},
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, again); diff != "" {
		t.Errorf("round trip (-first +second):\n%s", diff)
	}
	if r, err := parseRestrictions(url.Values{}); err != nil || !r.Empty() {
		t.Errorf("an empty form: %+v, %v", r, err)
	}
}

func TestAuditChanges(t *testing.T) {
	before := json.RawMessage(`{"access_key_id":"LKIA","status":"Active","description":"a","restrictions":{"allowed_ips":["10.0.0.0/8"]}}`)
	after := json.RawMessage(`{"access_key_id":"LKIA","status":"Inactive","description":"a","restrictions":{"allowed_ips":["10.0.0.0/8","192.0.2.0/24"]}}`)
	got := changes(before, after)
	want := []string{`restrictions: {"allowed_ips":["10.0.0.0/8"]} → {"allowed_ips":["10.0.0.0/8","192.0.2.0/24"]}`, "status: Active → Inactive"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if got := changes(nil, after); got != nil {
		t.Errorf("a creation has changes %v", got)
	}
}

func TestAuditLogFilters(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	k := e.app("web")
	e.app("shop")
	st := latchkey.StatusInactive
	if _, err := e.svc.UpdateAccessKey(ctx, e.op, k.ID, latchkey.AccessKeyUpdate{Status: &st}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustSignIn(e.opID, e.opSecret)
	rows := func(q string) []string {
		t.Helper()
		p := b.get("/console/audit?" + q)
		var out []string
		for _, m := range regexp.MustCompile(`<tr data-action="([^"]+)"`).FindAllStringSubmatch(p.body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"application", "application=web", []string{"access_key.update", "access_key.create", "application.create"}},
		{"key", "access_key_id=" + k.ID, []string{"access_key.update", "access_key.create"}},
		{"action", "action=application.create", []string{"application.create", "application.create"}},
		{"actor", "actor=nobody", nil},
		{"date range", "since=2026-03-04&until=2026-03-04", []string{"access_key.update", "access_key.create", "application.create", "access_key.create", "application.create", "access_key.create", "principal.create", "account.create"}},
		{"before the range", "until=2026-03-03", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, rows(tt.query)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
	// paging: with more events than a page, an "Older" link continues
	for i := range 60 {
		desc := "d" + string(rune('a'+i%26))
		if _, err := e.svc.UpdateAccessKey(ctx, e.op, k.ID, latchkey.AccessKeyUpdate{Description: &desc}); err != nil {
			t.Fatal(err)
		}
	}
	p := b.get("/console/audit?access_key_id=" + k.ID)
	m := regexp.MustCompile(`href="(/console/audit\?[^"]*page_token=[^"]+)"`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatal("no link to older events")
	}
	next := b.get(strings.ReplaceAll(m[1], "&amp;", "&"))
	if !strings.Contains(next.body, "key created") || !strings.Contains(next.body, `value="`+k.ID+`"`) {
		t.Error("the older page lost the filter or the oldest event")
	}
}
