package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/credfile"
)

// adminClient starts a server and returns a client signed in as the first
// operator.
func adminClient(t *testing.T, args ...string) (*server, *client) {
	t.Helper()
	home := t.TempDir()
	srv := startServer(t, home, args...)
	f, err := credfile.Read(filepath.Join(home, ".latchkey", "credentials"))
	if err != nil {
		t.Fatal(err)
	}
	return srv, &client{t: t, endpoint: srv.endpoint, auth: "Bearer " + f.Profile("default")[credfile.KeySecretAccessKey]}
}

// TestEveryDecisionCodeOverHTTP reaches each verification code through
// POST /v1/verify on a real server process.
func TestEveryDecisionCodeOverHTTP(t *testing.T) {
	_, c := adminClient(t, "--guard-failures", "3", "--guard-refill-per-minute", "1")
	c.do("POST", "/v1/applications", map[string]any{"name": "web",
		"restrictions": map[string]any{"allowed_referrers": []string{"https://*.example.com/*"}}}, 201)
	c.do("POST", "/v1/applications", map[string]any{"name": "mobile"}, 201)
	c.do("POST", "/v1/applications", map[string]any{"name": "batch"}, 201)

	web := c.do("POST", "/v1/applications/web/access-keys", map[string]any{
		"restrictions": map[string]any{
			"allowed_ips": []string{"203.0.113.0/24", "2001:db8::/32"},
			"scopes":      []string{"shipments:read"},
			"rate_limit":  map[string]any{"per_second": 1, "burst": 2},
		}}, 201)["secret_access_key"].(string)
	mobile := c.do("POST", "/v1/applications/mobile/access-keys", map[string]any{
		"restrictions": map[string]any{"ios_bundle_ids": []string{"com.example.shop"}}}, 201)["secret_access_key"].(string)
	soon := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	expiring := c.do("POST", "/v1/applications/batch/access-keys", map[string]any{"expires_at": soon}, 201)
	inactive := c.do("POST", "/v1/applications/batch/access-keys", map[string]any{}, 201)
	c.do("PATCH", "/v1/access-keys/"+inactive["access_key_id"].(string), map[string]string{"status": "Inactive"}, 200)

	good := map[string]any{"key": web, "ip": "203.0.113.4", "referrer": "https://shop.example.com/cart", "scope": "shipments:read"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range good {
			m[a] = b
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name string
		body map[string]any
		want string
	}{
		{"valid", good, "VALID"},
		{"ipv6 valid", with("ip", "2001:db8::7"), "VALID"},
		{"wrong ip", with("ip", "198.51.100.1"), "IP_NOT_ALLOWED"},
		{"application referrer rule", with("referrer", "https://evil.net/"), "REFERRER_NOT_ALLOWED"},
		{"scope", with("scope", "shipments:write"), "SCOPE_DENIED"},
		{"rate limited", good, "RATE_LIMITED"},
		{"mobile app", map[string]any{"key": mobile, "ios_bundle_id": "com.example.other"}, "APP_NOT_ALLOWED"},
		{"mobile app ok", map[string]any{"key": mobile, "ios_bundle_id": "com.example.shop"}, "VALID"},
		{"inactive", map[string]any{"key": inactive["secret_access_key"]}, "INACTIVE"},
		{"malformed", map[string]any{"key": "lksk_not-a-key", "ip": "192.0.2.99"}, "MALFORMED"},
		{"missing", map[string]any{"key": ""}, "MISSING"},
		{"bad checksum", map[string]any{"key": "lksk_" + "0000000000000000000000000000000000000000" + "000000", "ip": "192.0.2.99"}, "MALFORMED"},
		{"wrong access key id", map[string]any{"key": expiring["secret_access_key"], "access_key_id": "LKIAAAAAAAAAAAAAAAAA", "ip": "192.0.2.99"}, "NOT_FOUND"},
		{"throttled", map[string]any{"key": web, "ip": "192.0.2.99"}, "THROTTLED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.do("POST", "/v1/verify", tt.body, 200)
			if got["code"] != tt.want {
				t.Errorf("code = %v, want %s (%v)", got["code"], tt.want, got)
			}
			if tt.want == "RATE_LIMITED" || tt.want == "THROTTLED" {
				if n, _ := got["retry_after_seconds"].(float64); n < 1 {
					t.Errorf("retry_after_seconds = %v", got["retry_after_seconds"])
				}
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := c.do("POST", "/v1/verify", map[string]any{"key": expiring["secret_access_key"]}, 200)
		if got["code"] == "EXPIRED" {
			break
		}
		if got["code"] != "VALID" || time.Now().After(deadline) {
			t.Fatalf("expiring key: %v", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestReportOnlyThenEnforce(t *testing.T) {
	_, c := adminClient(t)
	c.do("POST", "/v1/applications", map[string]any{"name": "api"}, 201)
	k := c.do("POST", "/v1/applications/api/access-keys", map[string]any{}, 201)
	id, sec := k["access_key_id"].(string), k["secret_access_key"].(string)
	c.do("PATCH", "/v1/access-keys/"+id, map[string]any{
		"report_only_restrictions": map[string]any{"allowed_ips": []string{"203.0.113.0/24"}}}, 200)

	got := c.do("POST", "/v1/verify", map[string]any{"key": sec, "ip": "198.51.100.20", "user_agent": "legacy/1"}, 200)
	if got["code"] != "VALID" || got["would_deny"] != "IP_NOT_ALLOWED" {
		t.Fatalf("report-only: %v", got)
	}
	key := c.do("GET", "/v1/access-keys/"+id, nil, 200)
	wd, _ := key["last_would_deny"].(map[string]any)
	if wd["ip"] != "198.51.100.20" || wd["reason"] != "IP_NOT_ALLOWED" || key["would_deny_count"] != float64(1) {
		t.Fatalf("key after report-only call: last_would_deny=%v count=%v", key["last_would_deny"], key["would_deny_count"])
	}
	bad := c.do("PATCH", "/v1/access-keys/"+id, map[string]any{"restrictions": map[string]any{"allowed_ips": []string{"10.0.0.0/33"}}}, 400)
	if errCode(bad) != "InvalidArgument" {
		t.Errorf("bad CIDR: %v", bad)
	}
	c.do("PATCH", "/v1/access-keys/"+id, map[string]any{"enforce_report_only": true}, 200)
	got = c.do("POST", "/v1/verify", map[string]any{"key": sec, "ip": "198.51.100.20"}, 200)
	if got["code"] != "IP_NOT_ALLOWED" {
		t.Fatalf("after enforce: %v", got)
	}
	if got := c.do("POST", "/v1/verify", map[string]any{"key": sec, "ip": "203.0.113.1"}, 200); got["code"] != "VALID" {
		t.Fatalf("allowed address after enforce: %v", got)
	}
	audit := c.do("GET", "/v1/audit-events?access_key_id="+id, nil, 200)
	if n := len(audit["audit_events"].([]any)); n != 3 {
		t.Errorf("audit events for the key = %d, want 3 (create, report-only, enforce)", n)
	}
}
