package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/keyformat"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

const (
	operationsDoc = "../../docs/operations.md"
	alertRules    = "../../docs/operations/alerts.yml"
)

// docMetric is one row of the metrics table in docs/operations.md.
type docMetric struct {
	name   string              // a metric name, or a prefix such as "go_" for "go_*"
	prefix bool                // name is a prefix
	typ    string              // counter, gauge or histogram; "" when not given
	labels map[string][]string // label name to its documented values
}

var (
	backticked = regexp.MustCompile("`([^`]+)`")
	// a label cell: `code` (`VALID`, `NOT_FOUND`), `state` (...)
	docLabel = regexp.MustCompile("`([a-z_]+)`(?:\\s*\\(([^)]*)\\))?")
)

// parseMetricsDoc reads the metrics table of docs/operations.md, so that
// what the test checks is what the operator reads.
func parseMetricsDoc(t *testing.T) []docMetric {
	t.Helper()
	b, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "\n| Metric | Type | Labels | What it counts |\n| --- | --- | --- | --- |\n")
	if !ok {
		t.Fatalf("%s has no metrics table", operationsDoc)
	}
	var out []docMetric
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 4 {
			t.Fatalf("%s: a metrics row without 4 cells: %q", operationsDoc, line)
		}
		labels := map[string][]string{}
		for _, m := range docLabel.FindAllStringSubmatch(cells[2], -1) {
			var vals []string
			for _, v := range backticked.FindAllStringSubmatch(m[2], -1) {
				vals = append(vals, v[1])
			}
			labels[m[1]] = vals
		}
		for _, n := range backticked.FindAllStringSubmatch(cells[0], -1) {
			name, prefix := strings.CutSuffix(n[1], "*")
			out = append(out, docMetric{name: name, prefix: prefix, typ: strings.TrimSpace(cells[1]), labels: labels})
		}
	}
	if len(out) < 5 {
		t.Fatalf("%s: only %d metrics read from the table", operationsDoc, len(out))
	}
	return out
}

// scrapeText is one GET of /metrics.
func scrapeText(t *testing.T, url string) string {
	t.Helper()
	code, body := get(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %.200s", url, code, body)
	}
	return body
}

func parseScrape(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	return fams
}

// series returns the value of a counter or gauge, or a histogram's count,
// for the series with exactly these labels (name, value pairs); ok is
// false when there is none.
func series(fams map[string]*dto.MetricFamily, name string, labels ...string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		if len(m.GetLabel())*2 != len(labels) {
			continue
		}
		match := true
		for i, l := range m.GetLabel() {
			if l.GetName() != labels[2*i] || l.GetValue() != labels[2*i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// byCode is latchkey_verifications_total by code.
func byCode(fams map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, m := range fams["latchkey_verifications_total"].GetMetric() {
		out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
	}
	return out
}

// checkAgainstDoc checks that the scrape has every documented metric with
// its type, its labels and exactly its documented label values, and no
// latchkey metric the table does not document.
func checkAgainstDoc(t *testing.T, doc []docMetric, fams map[string]*dto.MetricFamily) {
	t.Helper()
	types := map[string]dto.MetricType{"counter": dto.MetricType_COUNTER, "gauge": dto.MetricType_GAUGE, "histogram": dto.MetricType_HISTOGRAM}
	documented := map[string]bool{}
	for _, d := range doc {
		if d.prefix {
			found := false
			for name := range fams {
				found = found || strings.HasPrefix(name, d.name)
			}
			if !found {
				t.Errorf("no %s* metric in the scrape", d.name)
			}
			continue
		}
		documented[d.name] = true
		f := fams[d.name]
		if f == nil {
			t.Errorf("documented metric %s is not in the scrape", d.name)
			continue
		}
		if want, ok := types[d.typ]; !ok || f.GetType() != want {
			t.Errorf("%s: type %s, documented %q", d.name, f.GetType(), d.typ)
		}
		got := map[string]map[string]bool{}
		for _, m := range f.GetMetric() {
			names := map[string]bool{}
			for _, l := range m.GetLabel() {
				names[l.GetName()] = true
				if got[l.GetName()] == nil {
					got[l.GetName()] = map[string]bool{}
				}
				got[l.GetName()][l.GetValue()] = true
			}
			if diff := cmp.Diff(slices.Sorted(maps.Keys(d.labels)), slices.Sorted(maps.Keys(names))); diff != "" {
				t.Errorf("%s: label names (-documented +scraped):\n%s", d.name, diff)
				break
			}
		}
		for l, vals := range d.labels {
			if diff := cmp.Diff(sorted(vals), slices.Sorted(maps.Keys(got[l]))); diff != "" {
				t.Errorf("%s: values of label %s (-documented +scraped):\n%s", d.name, l, diff)
			}
		}
		// Every documented combination is a series from the start.
		if want := combinations(d.labels); len(f.GetMetric()) != want {
			t.Errorf("%s: %d series, want %d (one per documented label value)", d.name, len(f.GetMetric()), want)
		}
	}
	for name := range fams {
		if strings.HasPrefix(name, "latchkey_") && !documented[name] {
			t.Errorf("metric %s is not documented in %s", name, operationsDoc)
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func combinations(labels map[string][]string) int {
	n := 1
	for _, v := range labels {
		n *= len(v)
	}
	return n
}

// gwCall is one call a client makes through a surface.
type gwCall struct {
	secret   string // sent in Authorization; "" sends no credential
	ip       string // the client's address
	method   string
	target   string // path and query
	referrer string
	iosApp   string
	// untrusted sends the original URI to forward auth without its
	// method, which a trusted gateway never does.
	untrusted bool
}

// gwSurface answers a call with the decision code it gave; also counts
// the decisions a call makes besides the one it asks for.
type gwSurface struct {
	name string
	do   func(t *testing.T, c gwCall) string
	also map[string]float64
}

// TestMetricsAsDocumented runs the real server, drives every decision code
// through every surface that can give it, and checks after each call that
// latchkey_verifications_total moved by exactly the codes the surface
// answered. It checks every metric of the table in docs/operations.md
// (type, labels, documented label values, series at 0 from the first
// scrape), that the key gauges, latency histograms, webhook and policy
// counters move as documented, and the documented alert rules with
// promtool.
func TestMetricsAsDocumented(t *testing.T) {
	doc := parseMetricsDoc(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "served\n")
	}))
	t.Cleanup(upstream.Close)
	const guardFailures = 2
	srv, c := adminClient(t, "--trusted-proxies", "127.0.0.1",
		"--scope-rule", "GET /orders/* orders:read", "--scope-rule", "* /orders/* orders:write",
		"--guard-failures", fmt.Sprint(guardFailures), "--guard-refill-per-minute", "1",
		"--proxy-upstream", upstream.URL, "--proxy-addr", "127.0.0.1:0", "--ext-authz-addr", "127.0.0.1:0")
	proxyURL := srv.waitFor(proxyRE)
	extAuthz := srv.waitFor(extAuthzRE)
	metricsURL := srv.endpoint + "/metrics"

	// The first scrape: every documented series is there, counters at 0.
	firstText := scrapeText(t, metricsURL)
	first := parseScrape(t, firstText)
	checkAgainstDoc(t, doc, first)
	for name, f := range first {
		if !strings.HasPrefix(name, "latchkey_") || f.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range f.GetMetric() {
			if v := m.GetCounter().GetValue(); v != 0 {
				t.Errorf("first scrape: %s%v = %v, want 0", name, m.GetLabel(), v)
			}
		}
	}
	// The decision codes documented are those the API answers.
	for _, d := range doc {
		if d.name == "latchkey_verifications_total" {
			want := append(httpapi.DecisionCodes(), "other")
			if d := cmp.Diff(sorted(want), sorted(d.labels["code"])); d != "" {
				t.Errorf("documented codes (-answered by the API +documented):\n%s", d)
			}
		}
	}

	// Keys, one per restriction, each in an application of its own (an
	// application holds two keys at most).
	apps := 0
	newKeyFull := func(body map[string]any) map[string]any {
		t.Helper()
		apps++
		app := fmt.Sprintf("app%d", apps)
		c.do("POST", "/v1/applications", map[string]any{"name": app}, 201)
		return c.do("POST", "/v1/applications/"+app+"/access-keys", body, 201)
	}
	newKey := func(body map[string]any) string { return newKeyFull(body)["secret_access_key"].(string) }
	restricted := func(r map[string]any) string { return newKey(map[string]any{"restrictions": r}) }
	plain := newKey(map[string]any{})
	scoped := restricted(map[string]any{"scopes": []string{"orders:read"}})
	ipKey := restricted(map[string]any{"allowed_ips": []string{"203.0.113.0/24"}})
	refKey := restricted(map[string]any{"allowed_referrers": []string{"https://shop.example.com/*"}})
	appKey := restricted(map[string]any{"ios_bundle_ids": []string{"com.example.shop"}})
	inactive := newKeyFull(map[string]any{})
	c.do("PATCH", "/v1/access-keys/"+inactive["access_key_id"].(string), map[string]string{"status": "Inactive"}, 200)
	expiresAt := time.Now().Add(2 * time.Second)
	expiring := newKey(map[string]any{"expires_at": expiresAt.UTC().Format(time.RFC3339Nano)})
	fake, err := keyformat.NewSecret() // well formed, no key of this server
	if err != nil {
		t.Fatal(err)
	}

	conn, err := grpc.NewClient(extAuthz, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	authz := authv3.NewAuthorizationClient(conn)

	httpCode := func(t *testing.T, req *http.Request, c gwCall) string {
		t.Helper()
		if c.secret != "" {
			req.Header.Set("Authorization", "Bearer "+c.secret)
		}
		if c.referrer != "" {
			req.Header.Set("Referer", c.referrer)
		}
		if c.iosApp != "" {
			req.Header.Set("X-Ios-Bundle-Identifier", c.iosApp)
		}
		req.Header.Set("X-Forwarded-For", c.ip) // from 127.0.0.1, a trusted proxy
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK {
			return "VALID"
		}
		var e map[string]any
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%s %s: %d %q", req.Method, req.URL, resp.StatusCode, body)
		}
		return errCode(e)
	}
	surfaces := []gwSurface{
		{name: "forward auth", do: func(t *testing.T, c gwCall) string {
			req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.endpoint+"/v1/authorize", nil)
			if !c.untrusted {
				req.Header.Set("X-Original-Method", c.method)
			}
			req.Header.Set("X-Original-URI", c.target)
			return httpCode(t, req, c)
		}},
		{name: "reverse proxy", do: func(t *testing.T, c gwCall) string {
			req, _ := http.NewRequestWithContext(t.Context(), c.method, proxyURL+c.target, nil)
			return httpCode(t, req, c)
		}},
		{name: "ext_authz", do: func(t *testing.T, c gwCall) string {
			h := map[string]string{}
			if c.secret != "" {
				h["authorization"] = "Bearer " + c.secret
			}
			if c.referrer != "" {
				h["referer"] = c.referrer
			}
			if c.iosApp != "" {
				h["x-ios-bundle-identifier"] = c.iosApp
			}
			resp, err := authz.Check(t.Context(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
				Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
					SocketAddress: &corev3.SocketAddress{Address: c.ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
				Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
					Method: c.method, Path: c.target, Headers: h}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetStatus().GetCode() == int32(codes.OK) {
				return "VALID"
			}
			return resp.GetStatus().GetMessage()
		}},
		{name: "/v1/verify", also: map[string]float64{"VALID": 1}, // the caller's own key
			do: func(t *testing.T, call gwCall) string {
				got := c.do("POST", "/v1/verify", map[string]any{"key": call.secret, "ip": call.ip,
					"referrer": call.referrer, "ios_bundle_id": call.iosApp, "method": call.method, "path": call.target}, 200)
				return got["code"].(string)
			}},
	}

	type gwCase struct {
		code  string   // the code the last call must get
		calls []gwCall // ip is filled in
		only  string   // the one surface that can give it
	}
	orders := func(secret string) gwCall { return gwCall{secret: secret, method: "GET", target: "/orders/1"} }
	with := func(c gwCall, f func(*gwCall)) gwCall { f(&c); return c }
	cases := []gwCase{
		{code: "VALID", calls: []gwCall{orders(scoped)}},
		{code: "SCOPE_DENIED", calls: []gwCall{with(orders(scoped), func(c *gwCall) { c.method = "DELETE" })}},
		{code: "NOT_FOUND", calls: []gwCall{orders(fake)}},
		{code: "MALFORMED", calls: []gwCall{orders("lksk_not-a-key")}},
		{code: "MISSING", calls: []gwCall{orders("")}},
		{code: "INACTIVE", calls: []gwCall{orders(inactive["secret_access_key"].(string))}},
		{code: "IP_NOT_ALLOWED", calls: []gwCall{with(orders(ipKey), func(c *gwCall) { c.ip = "198.51.100.7" })}},
		{code: "REFERRER_NOT_ALLOWED", calls: []gwCall{with(orders(refKey), func(c *gwCall) { c.referrer = "https://evil.example.net/" })}},
		{code: "APP_NOT_ALLOWED", calls: []gwCall{with(orders(appKey), func(c *gwCall) { c.iosApp = "com.example.other" })}},
		{code: "RATE_LIMITED"}, // calls per surface, below
		{code: "THROTTLED"},
		{code: "CREDENTIALS_IN_URL", calls: []gwCall{with(orders(plain), func(c *gwCall) { c.target = "/orders/1?api_key=x" })}},
		{code: "AMBIGUOUS_PATH", calls: []gwCall{with(orders(plain), func(c *gwCall) { c.target = "/orders/1?_method=DELETE" })}},
		{code: "UNTRUSTED_GATEWAY", only: "forward auth", calls: []gwCall{with(orders(plain), func(c *gwCall) { c.untrusted = true })}},
		{code: "EXPIRED", calls: []gwCall{orders(expiring)}}, // last: after the key's expiry
	}

	scraped := first
	seen := map[string]map[string]bool{} // surface -> codes it was seen to count
	var decisions float64
	drive := func(t *testing.T, s gwSurface, tc gwCase, calls []gwCall) {
		t.Helper()
		want := maps.Clone(byCode(scraped))
		var last string
		for _, call := range calls {
			last = s.do(t, call)
			want[last]++
			decisions++
			for code, n := range s.also {
				want[code] += n
				decisions += n
			}
		}
		if last != tc.code {
			t.Errorf("answered %s, want %s", last, tc.code)
		}
		scraped = parseScrape(t, scrapeText(t, metricsURL))
		if d := cmp.Diff(want, byCode(scraped)); d != "" {
			t.Errorf("latchkey_verifications_total after the calls (-answered +counted):\n%s", d)
		}
		if seen[s.name] == nil {
			seen[s.name] = map[string]bool{}
		}
		seen[s.name][last] = true
	}
	for si, s := range surfaces {
		rateKey := restricted(map[string]any{"rate_limit": map[string]any{"per_minute": 1}})
		scraped = parseScrape(t, scrapeText(t, metricsURL)) // after the management calls
		for ci, tc := range cases {
			if tc.only != "" && tc.only != s.name {
				continue
			}
			ip := fmt.Sprintf("203.0.113.%d", 1+si*len(cases)+ci) // an address of its own: the guard counts per address
			calls := tc.calls
			switch tc.code {
			case "RATE_LIMITED":
				calls = []gwCall{orders(rateKey), orders(rateKey)}
			case "THROTTLED":
				for range guardFailures {
					calls = append(calls, orders(fake))
				}
				calls = append(calls, orders(plain))
			case "EXPIRED":
				if d := time.Until(expiresAt); d > 0 {
					time.Sleep(d + 10*time.Millisecond) // the key's own clock: nothing to wait on but time
				}
			}
			t.Run(s.name+"/"+tc.code, func(t *testing.T) {
				var cs []gwCall
				for _, call := range calls {
					if call.ip == "" {
						call.ip = ip
					}
					cs = append(cs, call)
				}
				drive(t, s, tc, cs)
			})
		}
	}
	// The management API's own refusal of a credential in its URL.
	t.Run("management API/CREDENTIALS_IN_URL", func(t *testing.T) {
		mgmt := gwSurface{name: "management API", do: func(t *testing.T, _ gwCall) string {
			got := c.do("GET", "/v1/applications?api_key=x", nil, http.StatusBadRequest)
			if errCode(got) == "CredentialsInUrl" {
				return "CREDENTIALS_IN_URL"
			}
			return errCode(got)
		}}
		drive(t, mgmt, gwCase{code: "CREDENTIALS_IN_URL"}, []gwCall{{}})
	})
	for _, s := range surfaces {
		var missing []string
		for _, tc := range cases {
			if (tc.only == "" || tc.only == s.name) && !seen[s.name][tc.code] {
				missing = append(missing, tc.code)
			}
		}
		if len(missing) > 0 {
			t.Errorf("%s: never counted %v", s.name, missing)
		}
	}
	if n := byCode(scraped)["other"]; n != 0 {
		t.Errorf(`latchkey_verifications_total{code="other"} = %v`, n)
	}

	// One decision in 64 is timed: keep deciding until one is.
	timed := func() float64 {
		n, _ := series(scraped, "latchkey_verification_duration_seconds")
		return n
	}
	for range 60 {
		if timed() > 0 {
			break
		}
		for range 50 {
			surfaces[0].do(t, gwCall{secret: plain, ip: "203.0.113.250", method: "GET", target: "/orders/1"})
			decisions++
		}
		scraped = parseScrape(t, scrapeText(t, metricsURL))
	}
	total := 0.0
	for _, v := range byCode(scraped) {
		total += v
	}
	t.Logf("metrics: %v decisions driven, %v counted (with the setup's management calls), %v timed", decisions, total, timed())
	if timed() == 0 || timed() > total {
		t.Errorf("latchkey_verification_duration_seconds_count = %v for %v decisions", timed(), total)
	}

	// Key gauges: 11 application keys (one Inactive, one expired, four
	// rate limited) and the operator's.
	for _, tt := range []struct {
		kind, state string
		want        float64
	}{
		{"application", "active", 9}, {"application", "inactive", 1}, {"application", "expired", 1},
		{"principal", "active", 1}, {"principal", "inactive", 0}, {"principal", "expired", 0},
	} {
		if v, _ := series(scraped, "latchkey_keys", "kind", tt.kind, "state", tt.state); v != tt.want {
			t.Errorf("latchkey_keys{kind=%q,state=%q} = %v, want %v", tt.kind, tt.state, v, tt.want)
		}
	}
	if v, _ := series(scraped, "latchkey_index_keys"); v != 12 {
		t.Errorf("latchkey_index_keys = %v, want 12", v)
	}
	before, _ := series(first, "latchkey_store_duration_seconds", "op", "update")
	if after, _ := series(scraped, "latchkey_store_duration_seconds", "op", "update"); after <= before {
		t.Errorf("latchkey_store_duration_seconds_count{op=update}: %v before the management writes, %v after", before, after)
	}
	checkAgainstDoc(t, doc, scraped)

	t.Run("alert rules", func(t *testing.T) {
		checkAlertRules(t, first, scraped)
	})
	srv.stop()
}

// TestMetricsBackgroundWork: webhook deliveries and the hygiene policy move
// their documented counters on a real server.
func TestMetricsBackgroundWork(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(ok.Close)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	t.Cleanup(failing.Close)
	srv, c := adminClient(t, "--webhook-allow-cidr", "127.0.0.1",
		"--policy-interval", "1s", "--unused-after", "1s", "--deactivate-unused-after", "2s", "--notice-before", "1s")
	c.do("POST", "/v1/webhooks", map[string]any{"url": ok.URL + "/hook"}, 201)
	c.do("POST", "/v1/webhooks", map[string]any{"url": failing.URL + "/hook"}, 201)
	c.do("POST", "/v1/applications", map[string]any{"name": "idle"}, 201)
	c.do("POST", "/v1/applications/idle/access-keys", map[string]any{}, 201) // never used: the policy deactivates it

	want := []struct {
		name   string
		labels []string
	}{
		{"latchkey_webhook_deliveries_total", []string{"outcome", "delivered"}},
		{"latchkey_webhook_deliveries_total", []string{"outcome", "retry"}},
		{"latchkey_webhook_delivery_duration_seconds", nil},
		{"latchkey_policy_actions_total", []string{"action", "notice"}},
		{"latchkey_policy_actions_total", []string{"action", "deactivated"}},
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		fams := parseScrape(t, scrapeText(t, srv.endpoint+"/metrics"))
		var still []string
		for _, w := range want {
			if v, _ := series(fams, w.name, w.labels...); v == 0 {
				still = append(still, fmt.Sprint(w.name, w.labels))
			}
		}
		if len(still) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s these have not moved: %v", still)
		}
		time.Sleep(100 * time.Millisecond) // the policy runs every second
	}
	srv.stop()
}

// checkAlertRules runs promtool on the documented alert rules: check rules,
// and a unit test whose input is the CREDENTIALS_IN_URL and store error
// series as a real server exposed them at its first scrape and later.
func checkAlertRules(t *testing.T, first, later map[string]*dto.MetricFamily) {
	promtool := requireBinary(t, "/usr/bin/promtool", "prometheus")
	rules, err := filepath.Abs(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	// The documentation shows the rules file byte for byte.
	b, err := os.ReadFile(rules)
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(md, []byte("### Alert examples\n")) || !bytes.Contains(md, append(append([]byte("```yaml\n"), b...), "```\n"...)) {
		t.Errorf("%s does not show %s as it is, in a yaml block", operationsDoc, alertRules)
	}
	if out, err := exec.Command(promtool, "check", "rules", rules).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}

	// Input series: one sample a minute, the first scrape's value at 0m
	// and 1m, the later scrape's from 2m on. The series that was missing
	// at the first scrape shows why a series must exist at 0: appearing
	// at its first event is no increase, and the alert never fires.
	const scrapeLabels = `instance="keys-1.internal:9090",job="latchkey"`
	sample := func(fams map[string]*dto.MetricFamily, name string, labels ...string) string {
		v, ok := series(fams, name, labels...)
		if !ok {
			t.Fatalf("the scrape has no %s%v", name, labels)
		}
		return fmt.Sprint(v)
	}
	ciuFirst := sample(first, "latchkey_verifications_total", "code", "CREDENTIALS_IN_URL")
	ciuLater := sample(later, "latchkey_verifications_total", "code", "CREDENTIALS_IN_URL")
	if ciuFirst != "0" || ciuLater == "0" {
		t.Fatalf("CREDENTIALS_IN_URL: %s at the first scrape, %s later", ciuFirst, ciuLater)
	}
	var input strings.Builder
	fmt.Fprintf(&input, "      - series: 'latchkey_verifications_total{code=\"CREDENTIALS_IN_URL\",%s}'\n        values: '%s %s %sx10'\n",
		scrapeLabels, ciuFirst, ciuFirst, ciuLater)
	for _, m := range later["latchkey_store_errors_total"].GetMetric() {
		op := m.GetLabel()[0].GetValue()
		fmt.Fprintf(&input, "      - series: 'latchkey_store_errors_total{op=\"%s\",%s}'\n        values: '%s %s %sx10'\n", op, scrapeLabels,
			sample(first, "latchkey_store_errors_total", "op", op), sample(first, "latchkey_store_errors_total", "op", op),
			sample(later, "latchkey_store_errors_total", "op", op))
	}
	test := fmt.Sprintf(`rule_files:
  - %s
evaluation_interval: 1m
tests:
  - name: a credential in a URL, counted from 0 as latchkey exposes it
    interval: 1m
    input_series:
%s    alert_rule_test:
      - alertname: LatchkeyCredentialInURL
        eval_time: 3m
        exp_alerts:
          - exp_labels: {}
      - alertname: LatchkeyStoreErrors
        eval_time: 10m
        exp_alerts: []
  - name: the same counter appearing only at its first event
    interval: 1m
    input_series:
      - series: 'latchkey_verifications_total{code="CREDENTIALS_IN_URL",%s}'
        values: '_ _ %sx10'
    alert_rule_test:
      - alertname: LatchkeyCredentialInURL
        eval_time: 3m
        exp_alerts: []
`, rules, input.String(), scrapeLabels, ciuLater)
	dir := t.TempDir()
	testFile := filepath.Join(dir, "alerts_test.yml")
	if err := os.WriteFile(testFile, []byte(test), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "test", "rules", testFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s\n%s", err, out, test)
	}
}
