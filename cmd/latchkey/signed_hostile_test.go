package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/gatewaytest"
)

// TestGatewaysSignedHostile sends signed calls an attacker would craft
// through the real nginx and Caddy: the attacker holds a signing key that
// may only read /orders and signs exactly what it sends, so every
// signature verifies. The decision must still be about the call the API
// serves: encoded and dot-segment paths, HEAD on a forbidden path,
// client-sent X-Original-*/X-Forwarded-* naming another call, forged
// X-Latchkey-* headers and their underscore twins, and a bearer
// credential sent beside the signature. Refused calls must not reach the
// API; the allowed one reaches it with the signing key's identity only.
func TestGatewaysSignedHostile(t *testing.T) {
	for _, gw := range []struct {
		name  string
		start func(t *testing.T, latchkey, upstream string) string
	}{{"nginx", startNginx}, {"caddy", startCaddy}} {
		t.Run(gw.name, func(t *testing.T) {
			srv, c := adminClient(t, "--trusted-proxies", "127.0.0.1", "--scope-rule", "GET /orders* orders:read", "--scope-rule", "GET /admin* admin:all")
			c.do("POST", "/v1/applications", map[string]any{"name": "reader"}, 201)
			priv := gatewaytest.NewKeyPair(t, "ed25519")
			out := c.do("POST", "/v1/applications/reader/access-keys", map[string]any{
				"public_key": gatewaytest.PublicKeyPEM(t, priv.Public()), "restrictions": map[string]any{"scopes": []string{"orders:read"}}}, 201)
			k := gatewaytest.SigningKey{ID: out["access_key_id"].(string), Application: "reader", Algorithm: "ed25519", Key: priv}
			c.do("POST", "/v1/applications", map[string]any{"name": "other"}, 201)
			bearer := c.do("POST", "/v1/applications/other/access-keys", map[string]any{}, 201)["secret_access_key"].(string)

			api, calls := recordingAPI(t)
			base := "http://" + gw.start(t, strings.TrimPrefix(srv.endpoint, "http://"), strings.TrimPrefix(api.URL, "http://"))
			cases := []struct {
				name, method, target string
				header               [][2]string
				allowed              bool
			}{
				{name: "allowed read", target: "/orders/7", allowed: true},
				{name: "forbidden path", target: "/admin/users"},
				{name: "encoded dot-dot", target: "/orders/%2e%2e/admin/users"},
				{name: "dot-dot", target: "/orders/../admin/users"},
				{name: "encoded slash", target: "/orders%2F..%2Fadmin/users"},
				{name: "double-encoded dot-dot", target: "/orders/%252e%252e/admin/users"},
				{name: "HEAD on the forbidden path", method: "HEAD", target: "/admin/users"},
				{name: "client names another call", target: "/admin/users", header: [][2]string{
					{"X-Original-URI", "/orders/7"}, {"X-Original-Method", "GET"}, {"X-Forwarded-Uri", "/orders/7"},
					{"X-Forwarded-Method", "GET"}, {"X-Forwarded-Host", "evil.example"}, {"X-Real-IP", "10.9.9.9"}}},
				{name: "forged identity headers", target: "/orders/7", allowed: true, header: [][2]string{
					{"X-Latchkey-Access-Key-Id", "LKIAFORGEDFORGEDFORG"}, {"X_Latchkey_Scopes", "admin:all"},
					{"X-Latchkey_Application", "forged"}, {"X-Latchkey-External-Id", "forged"}}},
				{name: "a bearer credential beside the signature", target: "/orders/7", header: [][2]string{{"Authorization", "Bearer " + bearer}}},
				{name: "an X-Api-Key beside the signature", target: "/admin/users", header: [][2]string{{"X-Api-Key", bearer}}},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					r, err := http.NewRequest(cmpOr(tc.method, "GET"), base+tc.target, nil)
					if err != nil {
						t.Fatal(err)
					}
					gatewaytest.Sign(t, r, nil, k, gatewaytest.Signing{})
					for _, h := range tc.header {
						r.Header[h[0]] = append(r.Header[h[0]], h[1])
					}
					before := calls()
					resp, err := clientFrom("127.0.0.2").Do(r)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					b, _ := io.ReadAll(resp.Body)
					reached := calls() != before
					if !tc.allowed {
						if reached || resp.StatusCode < 400 {
							t.Fatalf("answered %d and reached the API: %v; want a refusal before it", resp.StatusCode, reached)
						}
						return
					}
					if resp.StatusCode != 200 || !reached {
						t.Fatalf("answered %d %s; want the API's answer", resp.StatusCode, resp.Header.Get("X-Latchkey-Code"))
					}
					var got upstreamCall
					if err := json.Unmarshal(b, &got); err != nil {
						t.Fatal(err)
					}
					if id := got.Header.Get("X-Latchkey-Access-Key-Id"); id != k.ID {
						t.Errorf("the API got X-Latchkey-Access-Key-Id %q, want the signing key's %s", id, k.ID)
					}
					for name, v := range got.Header {
						if latchkey.HeaderNameEqual(name[:min(len(name), len("X-Latchkey-"))], "X-Latchkey-") && strings.Contains(strings.Join(v, ","), "forged") ||
							strings.Contains(name, "_") {
							t.Errorf("the API got %s: %q", name, v)
						}
					}
				})
			}
		})
	}
}
