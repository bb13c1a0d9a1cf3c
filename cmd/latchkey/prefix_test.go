package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestPrefixedKeyThroughNginx: with the account's key prefix set over the
// API, a new prefixed key passes real nginx (auth_request, the documented
// configuration) and so does a lksk_ key made before; the prefixed key in a
// query string is refused and flagged exposed, and the server's logs never
// hold it.
func TestPrefixedKeyThroughNginx(t *testing.T) {
	srv, c := adminClient(t, "--trusted-proxies", "127.0.0.1")
	c.do("POST", "/v1/applications", map[string]any{"name": "shop"}, 201)
	old := c.do("POST", "/v1/applications/shop/access-keys", map[string]any{}, 201)["secret_access_key"].(string)
	acc := c.do("PATCH", "/v1/accounts/default", map[string]any{"key_prefix": "shop_live_"}, 200)
	if acc["key_prefix"] != "shop_live_" {
		t.Fatalf("account after PATCH: %v", acc)
	}
	if got := errCode(c.do("PATCH", "/v1/accounts/default", map[string]any{"key_prefix": "Shop-"}, 400)); got != "InvalidArgument" {
		t.Errorf("a bad prefix: code %q", got)
	}
	k := c.do("POST", "/v1/applications/shop/access-keys", map[string]any{}, 201)
	id, secret := k["access_key_id"].(string), k["secret_access_key"].(string)
	if !strings.HasPrefix(secret, "shop_live_") || !strings.HasPrefix(old, "lksk_") {
		t.Fatalf("secrets start %q and %q", secret[:10], old[:5])
	}

	api, calls := recordingAPI(t)
	listen := startNginx(t, strings.TrimPrefix(srv.endpoint, "http://"), strings.TrimPrefix(api.URL, "http://"))
	get := func(t *testing.T, target, secret string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), "GET", "http://"+listen+target, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Api-Key", secret)
		resp, err := clientFrom("127.0.0.2").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		name, secret string
		status       int
	}{
		{"prefixed key", secret, 200},
		{"lksk_ key made before", old, 200},
		{"prefix changed", "shop_test_" + secret[len("shop_live_"):], 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st, body := get(t, "/orders/7", tc.secret); st != tc.status {
				t.Errorf("status %d, want %d: %s", st, tc.status, body)
			}
		})
	}
	t.Run("in the query string", func(t *testing.T) {
		before := calls()
		st, body := get(t, "/orders?api_key="+secret, old)
		if st != 403 || !strings.Contains(body, "CREDENTIALS_IN_URL") || calls() != before {
			t.Errorf("status %d body %s; the API was called %d times", st, strings.ReplaceAll(body, secret, "{S}"), calls()-before)
		}
		k := c.do("GET", "/v1/access-keys/"+id, nil, 200)
		if k["exposed"] == nil {
			t.Error("the prefixed key in the URL was not flagged exposed")
		}
	})
	for name, out := range map[string]string{"stdout": srv.stdout.String(), "stderr": srv.stderr.String()} {
		if strings.Contains(out, secret[len("shop_live_")+4:]) {
			t.Errorf("the prefixed secret is in the server's %s", name)
		}
	}
}
