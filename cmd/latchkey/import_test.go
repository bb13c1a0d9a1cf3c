package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/spaolacci/murmur3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// TestImportedKeysEverySurface imports keys that are not latchkey-shaped
// (a Tyk 5 token hashed with murmur64 as Tyk stores it, an Unkey key by its
// base64 SHA-256, a raw secret of a hand-rolled table) into a serve
// process and presents each, as its clients already send it (Bearer or
// X-Api-Key), on every surface: POST /v1/verify, forward auth behind the
// real nginx and Caddy, the reverse proxy and Envoy ext_authz.
func TestImportedKeysEverySurface(t *testing.T) {
	api, calls := recordingAPI(t)
	srv, c := adminClient(t, "--trusted-proxies", "127.0.0.1", "--proxy-upstream", api.URL, "--proxy-addr", "127.0.0.1:0", "--ext-authz-addr", "127.0.0.1:0")
	proxyURL := srv.waitFor(proxyRE)
	extAuthz := srv.waitFor(extAuthzRE)

	rnd := func(n int) string {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(b)
	}
	tyk := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, `{"org":"%s","id":"%s","h":"murmur64"}`, rnd(12), rnd(16)))
	h := murmur3.New64()
	h.Write([]byte(tyk))
	unkey := "sk_live_" + rnd(16)
	unkeySum := sha256.Sum256([]byte(unkey))
	raw := "tok-" + rnd(20)
	c.do("POST", "/v1/applications", map[string]any{"name": "legacy"}, 201)
	rep := c.do("POST", "/v1/import", map[string]any{"group_by": "key", "application": "legacy", "keys": []map[string]any{
		{"row": 1, "digest": hex.EncodeToString(h.Sum(nil)), "hash_format": "tyk-murmur64", "external_id": "cust-1"},
		{"row": 2, "id": "key_3x9", "digest": base64.StdEncoding.EncodeToString(unkeySum[:]), "hash_format": "unkey-sha256", "external_id": "cust-2"},
		{"row": 3, "secret": raw, "external_id": "cust-3"},
	}}, 200)
	results := rep["results"].([]any)
	keys := []struct{ name, secret, id string }{{"tyk", tyk, ""}, {"unkey", unkey, ""}, {"raw", raw, ""}}
	for i, r := range results {
		m := r.(map[string]any)
		if m["outcome"] != "created" {
			t.Fatalf("row %d: %v", i+1, m)
		}
		keys[i].id = m["access_key_id"].(string)
	}
	unknown := "tok-" + rnd(20)

	conn, err := grpc.NewClient(extAuthz, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	authz := authv3.NewAuthorizationClient(conn)
	lk := strings.TrimPrefix(srv.endpoint, "http://")
	up := strings.TrimPrefix(api.URL, "http://")
	nginx := "http://" + startNginx(t, lk, up)
	caddy := "http://" + startCaddy(t, lk, up)

	// httpSurface calls base with the secret in header h and returns the
	// status and the access key ID the API saw.
	httpSurface := func(base string) func(secret, h string) (int, string) {
		return func(secret, h string) (int, string) {
			t.Helper()
			req, err := http.NewRequestWithContext(t.Context(), "GET", base+"/orders/7", nil)
			if err != nil {
				t.Fatal(err)
			}
			if h == "Authorization" {
				req.Header.Set(h, "Bearer "+secret)
			} else {
				req.Header.Set(h, secret)
			}
			resp, err := clientFrom("127.0.0.2").Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var got upstreamCall
			if resp.StatusCode == 200 {
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("API answer %s: %v", body, err)
				}
			}
			return resp.StatusCode, got.Header.Get("X-Latchkey-Access-Key-Id")
		}
	}
	surfaces := map[string]func(secret, h string) (int, string){
		"verify": func(secret, h string) (int, string) {
			res := c.do("POST", "/v1/verify", map[string]any{"key": secret}, 200)
			id, _ := res["access_key_id"].(string)
			if res["valid"] == true {
				return 200, id
			}
			return 401, ""
		},
		"nginx": httpSurface(nginx),
		"caddy": httpSurface(caddy),
		"proxy": httpSurface(proxyURL),
		"ext_authz": func(secret, h string) (int, string) {
			hdr := map[string]string{"x-api-key": secret}
			if h == "Authorization" {
				hdr = map[string]string{"authorization": "Bearer " + secret}
			}
			resp, err := authz.Check(t.Context(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
				Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
					SocketAddress: &corev3.SocketAddress{Address: "192.0.2.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 1234}}}}},
				Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/orders/7", Headers: hdr}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetStatus().GetCode() != int32(codes.OK) {
				return 401, ""
			}
			for _, o := range resp.GetOkResponse().GetHeaders() {
				if strings.EqualFold(o.GetHeader().GetKey(), "X-Latchkey-Access-Key-Id") {
					return 200, o.GetHeader().GetValue()
				}
			}
			return 200, ""
		},
	}
	for name, use := range surfaces {
		t.Run(name, func(t *testing.T) {
			for _, k := range keys {
				for _, h := range []string{"Authorization", "X-Api-Key"} {
					if status, id := use(k.secret, h); status != 200 || id != k.id {
						t.Errorf("%s key in %s: status %d, key %q; want 200 and %s", k.name, h, status, id, k.id)
					}
				}
			}
			before := calls()
			if status, _ := use(unknown, "X-Api-Key"); status != 401 {
				t.Errorf("unknown key: status %d, want 401", status)
			}
			if calls() != before {
				t.Error("a refused call reached the API")
			}
		})
	}
	srv.stop()
}
