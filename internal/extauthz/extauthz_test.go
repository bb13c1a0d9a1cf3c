package extauthz_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/extauthz"
	"github.com/latchkey/latchkey/internal/gatewaytest"
	"github.com/latchkey/latchkey/internal/httpapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// dial starts the ext_authz service on a real TCP socket and returns a gRPC
// client of it, built from the same protos Envoy uses.
func dial(t *testing.T, env *gatewaytest.Env) authv3.AuthorizationClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	(&extauthz.Server{API: env.API}).Register(g)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// call is an HTTP call that Envoy asks about.
type call struct {
	method, path string
	source       string // the downstream peer's IP
	headers      map[string]string
}

func (c call) checkRequest(raw bool) *authv3.CheckRequest {
	method := c.method
	if method == "" {
		method = "GET"
	}
	src := c.source
	if src == "" {
		src = "192.0.2.10"
	}
	h := &authv3.AttributeContext_HttpRequest{Method: method, Path: c.path, Host: "api.example.test", Scheme: "http", Protocol: "HTTP/1.1",
		Headers: map[string]string{":method": method, ":path": c.path, ":authority": "api.example.test", "user-agent": "test/1"}}
	for k, v := range c.headers {
		h.Headers[strings.ToLower(k)] = v
	}
	if raw { // encode_raw_headers: the same headers, as a list
		for k, v := range h.Headers {
			h.HeaderMap = &corev3.HeaderMap{Headers: append(h.GetHeaderMap().GetHeaders(), &corev3.HeaderValue{Key: k, RawValue: []byte(v)})}
		}
		h.Headers = nil
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: src, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
		Request: &authv3.AttributeContext_Request{Http: h},
	}}
}

// headerMap flattens header options, checking that each replaces any
// header of its name.
func headerMap(t *testing.T, opts []*corev3.HeaderValueOption) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, o := range opts {
		if o.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			t.Errorf("header %s: append action %v, want OVERWRITE_IF_EXISTS_OR_ADD", o.GetHeader().GetKey(), o.GetAppendAction())
		}
		m[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
	}
	return m
}

func TestCheck(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{TrustedProxies: []string{"10.0.0.0/8"},
		ScopeRules: []string{"GET /shipments* shipments:read", "POST /shipments* shipments:write"}})
	good := env.Key(t, "web", &latchkey.Restrictions{Scopes: []string{"shipments:read"}})
	goodExternalID := "cus_42"
	if _, err := env.Service.UpdateAccessKey(t.Context(), env.Operator, good.ID, latchkey.AccessKeyUpdate{ExternalID: &goodExternalID,
		Metadata: json.RawMessage(`{"plan":"pro"}`)}); err != nil {
		t.Fatal(err)
	}
	inactive := env.Key(t, "cron", nil)
	env.SetStatus(t, inactive.ID, latchkey.StatusInactive)
	fenced := env.Key(t, "fenced", &latchkey.Restrictions{AllowedIPs: []string{"192.0.2.0/24"}})
	limited := env.Key(t, "limited", &latchkey.Restrictions{RateLimit: &latchkey.RateLimit{PerMinute: 1}})
	leaked := env.Key(t, "leaky", nil)
	c := dial(t, env)

	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(good.ID+":"+good.Secret))
	tests := []struct {
		name   string
		call   call
		status int // HTTP status Envoy answers a refusal with; 200 = allowed
		code   string
		key    gatewaytest.Key
	}{
		{"bearer", call{path: "/shipments/1?x=1", headers: map[string]string{"authorization": "Bearer " + good.Secret}}, 200, "VALID", good},
		{"basic", call{path: "/shipments/1", headers: map[string]string{"authorization": basic}}, 200, "VALID", good},
		{"x-api-key, forged identity", call{path: "/shipments/1", headers: map[string]string{"x-api-key": good.Secret,
			"x-latchkey-application": "admin", "x-latchkey-forged": "1", "x-latchkey-external-id": "cus_forged"}}, 200, "VALID", good},
		{"forged external ID and metadata on a key without them", call{path: "/", source: "10.1.2.3", headers: map[string]string{"x-api-key": fenced.Secret,
			"x-forwarded-for": "192.0.2.9", "x-latchkey-external-id": "cus_forged", "x-latchkey-metadata": "eyJwbGFuIjoiZnJlZSJ9"}}, 200, "VALID", fenced},
		{"missing", call{path: "/"}, 401, "MISSING", gatewaytest.Key{}},
		{"malformed", call{path: "/", headers: map[string]string{"x-api-key": "lksk_typo"}}, 401, "MALFORMED", gatewaytest.Key{}},
		{"inactive", call{path: "/", headers: map[string]string{"x-api-key": inactive.Secret}}, 401, "INACTIVE", gatewaytest.Key{}},
		{"wrong source address", call{path: "/", source: "198.51.100.1", headers: map[string]string{"x-api-key": fenced.Secret}}, 403, "IP_NOT_ALLOWED", gatewaytest.Key{}},
		{"x-forwarded-for from an untrusted peer is ignored", call{path: "/", source: "198.51.100.1",
			headers: map[string]string{"x-api-key": fenced.Secret, "x-forwarded-for": "192.0.2.9"}}, 403, "IP_NOT_ALLOWED", gatewaytest.Key{}},
		{"x-forwarded-for from a trusted peer", call{path: "/", source: "10.1.2.3",
			headers: map[string]string{"x-api-key": fenced.Secret, "x-forwarded-for": "192.0.2.9"}}, 200, "VALID", fenced},
		{"scope by rule", call{method: "POST", path: "/shipments", headers: map[string]string{"x-api-key": good.Secret}}, 403, "SCOPE_DENIED", gatewaytest.Key{}},
		{"first call of a limited key", call{path: "/", headers: map[string]string{"x-api-key": limited.Secret}}, 200, "VALID", limited},
		{"rate limited", call{path: "/", headers: map[string]string{"x-api-key": limited.Secret}}, 429, "RATE_LIMITED", gatewaytest.Key{}},
		{"secret in the path", call{path: "/x?token=" + leaked.Secret, headers: map[string]string{"x-api-key": good.Secret}}, 403, "CREDENTIALS_IN_URL", gatewaytest.Key{}},
	}
	for _, tt := range tests {
		for _, raw := range []bool{false, true} {
			name := tt.name
			if raw {
				name += " (raw headers)"
				if tt.key == limited || tt.code == "RATE_LIMITED" {
					continue // the bucket is spent once
				}
			}
			t.Run(name, func(t *testing.T) {
				resp, err := c.Check(t.Context(), tt.call.checkRequest(raw))
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if tt.status == 200 {
					ok := resp.GetOkResponse()
					if resp.GetStatus().GetCode() != int32(codes.OK) || ok == nil {
						t.Fatalf("refused: %v", resp)
					}
					want := map[string]string{"x-latchkey-access-key-id": tt.key.ID, "x-latchkey-application": tt.key.Application,
						"x-latchkey-account": latchkey.DefaultAccount}
					if tt.key == good {
						want["x-latchkey-scopes"] = "shipments:read"
						want["x-latchkey-external-id"] = goodExternalID
						want["x-latchkey-metadata"] = base64.RawURLEncoding.EncodeToString([]byte(`{"plan":"pro"}`))
					}
					if diff := cmp.Diff(want, headerMap(t, ok.GetHeaders())); diff != "" {
						t.Errorf("headers to the upstream (-want +got):\n%s", diff)
					}
					remove := ok.GetHeadersToRemove()
					for _, h := range []string{"authorization", "x-api-key"} {
						if !slices.Contains(remove, h) {
							t.Errorf("headers_to_remove %v lacks %s", remove, h)
						}
					}
					for _, h := range []string{"x-latchkey-forged", "x-latchkey-external-id", "x-latchkey-metadata"} {
						if _, forged := tt.call.headers[h]; forged && !slices.Contains(remove, h) {
							t.Errorf("headers_to_remove %v lacks the client's %s", remove, h)
						}
					}
					if tt.key == limited && headerMap(t, ok.GetResponseHeadersToAdd())["ratelimit-limit"] != "1" {
						t.Errorf("response headers %v lack ratelimit-limit", ok.GetResponseHeadersToAdd())
					}
					return
				}
				d := resp.GetDeniedResponse()
				if resp.GetStatus().GetCode() == int32(codes.OK) || d == nil {
					t.Fatalf("allowed: %v", resp)
				}
				if int(d.GetStatus().GetCode()) != tt.status {
					t.Errorf("HTTP status %d, want %d", d.GetStatus().GetCode(), tt.status)
				}
				h := headerMap(t, d.GetHeaders())
				var body httpapi.ErrorBody
				if err := json.Unmarshal([]byte(d.GetBody()), &body); err != nil || body.Error.Code != tt.code ||
					h["x-latchkey-code"] != tt.code || h["content-type"] != "application/json" {
					t.Errorf("body %q, headers %v; want code %s in JSON", d.GetBody(), h, tt.code)
				}
				if tt.status == 401 && h["www-authenticate"] == "" {
					t.Errorf("401 without www-authenticate: %v", h)
				}
				if tt.status == 429 && h["retry-after"] == "" {
					t.Errorf("429 without retry-after: %v", h)
				}
			})
		}
	}
	if where := env.Exposed(t, leaked.ID); where != "URL of a GET request to /x" {
		t.Errorf("leaked key: exposed where = %q", where)
	}
}

// TestSameAsForwardAuth: for the same call, ext_authz's refusal is, byte
// for byte, what /v1/authorize answers.
func TestSameAsForwardAuth(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{ScopeRules: []string{"GET /* read", "DELETE /* admin"}, TrustedProxies: []string{"127.0.0.1/32"}})
	k := env.Key(t, "web", &latchkey.Restrictions{AllowedIPs: []string{"192.0.2.0/24"}, Scopes: []string{"read"}})
	off := env.Key(t, "off", nil)
	env.SetStatus(t, off.ID, latchkey.StatusInactive)
	c := dial(t, env)
	fa := env.API.Handler()

	for _, tc := range []call{
		{path: "/a"},
		{path: "/a", headers: map[string]string{"x-api-key": off.Secret}},
		{path: "/a", source: "198.51.100.7", headers: map[string]string{"x-api-key": k.Secret}},
		{method: "DELETE", path: "/a", headers: map[string]string{"x-api-key": k.Secret}},
		{method: "PUT", path: "/a", headers: map[string]string{"x-api-key": k.Secret}},
		{path: "/%61/../b%2Fc", headers: map[string]string{"x-api-key": k.Secret}},
		{path: "/a/..;/b", headers: map[string]string{"x-api-key": k.Secret}},
	} {
		resp, err := c.Check(t.Context(), tc.checkRequest(false))
		if err != nil {
			t.Fatal(err)
		}
		d := resp.GetDeniedResponse()

		// the same call to /v1/authorize, asked by a trusted gateway
		// for a client at the same address
		r := httptest.NewRequestWithContext(t.Context(), "GET", "/v1/authorize", nil)
		for k, v := range tc.headers {
			r.Header.Set(k, v)
		}
		r.Header.Set("X-Original-Method", or(tc.method, "GET"))
		r.Header.Set("X-Original-URI", tc.path)
		r.Header.Set("User-Agent", "test/1")
		r.Header.Set("X-Forwarded-For", or(tc.source, "192.0.2.10"))
		r.RemoteAddr = "127.0.0.1:40000"
		rec := httptest.NewRecorder()
		fa.ServeHTTP(rec, r)
		body, _ := io.ReadAll(rec.Body)
		if int(d.GetStatus().GetCode()) != rec.Code || d.GetBody() != string(body) {
			t.Errorf("%+v: ext_authz %d %q, /v1/authorize %d %q", tc, d.GetStatus().GetCode(), d.GetBody(), rec.Code, body)
		}
		h := headerMap(t, d.GetHeaders())
		for k := range rec.Header() {
			if h[strings.ToLower(k)] != rec.Header().Get(k) {
				t.Errorf("%+v: header %s: ext_authz %q, /v1/authorize %q", tc, k, h[strings.ToLower(k)], rec.Header().Get(k))
			}
		}
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
