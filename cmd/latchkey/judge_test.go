package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/latchkey/latchkey"
	lkclient "github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/keyformat"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// servedAPI is the protected API of TestJudgeWhatIsServed: it records every
// call it serves, as it came on the wire.
type servedAPI struct {
	mu    sync.Mutex
	calls []servedCall
}

type servedCall struct {
	// Path is the path the API routes on (escaped).
	Method, RequestURI, Path string
	Header                   http.Header
}

func (a *servedAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.calls = append(a.calls, servedCall{Method: r.Method, RequestURI: r.RequestURI, Path: r.URL.EscapedPath(), Header: r.Header.Clone()})
	a.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "served\n")
}

func (a *servedAPI) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.calls)
}

func (a *servedAPI) last() servedCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[len(a.calls)-1]
}

// rawCall sends one HTTP/1.1 request, byte for byte as given (no client
// library cleans the target or the header names), from the loopback
// address from, and reads the answer.
func rawCall(t *testing.T, from, addr, method, target string, hdr [][2]string) (*http.Response, string) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	conn, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nUser-Agent: judge-test/1\r\n", method, target, addr)
	for _, h := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %q: reading the answer: %v", method, target, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// A variant is one call a hostile client may send, and what every surface
// must make of it.
type variant struct {
	name   string
	method string
	target string // request target, sent as it is; {{HOST}} is the surface's address
	header [][2]string
	// served is the canonical path the API must serve for an allowed
	// call; "" means the call is refused.
	served string
	// code is the decision code of a refusal.
	code string
	// gateway names surfaces whose own server refuses the call before
	// latchkey sees it (a 400 without X-Latchkey-Code); any other
	// surface must answer it with code.
	gateway []string
	// codeOn overrides code for one surface.
	codeOn map[string]string
}

// TestJudgeWhatIsServed sends path-encoding, dot-segment, repeated-slash,
// case, method and header variants through every surface: nginx
// (auth_request) and Caddy (forward_auth) from Debian's packages with the
// configurations docs/integrations.md shows, latchkey's reverse proxy,
// Envoy ext_authz (a real gRPC client; no Envoy here), and the Go SDK
// middleware asking a real server. The key may read shipments and nothing
// else; the rules are the issue's: "* /admin/* admin:all" and
// "GET /shipments/* shipments:read". Every refused call is shown never to
// reach the API, and every allowed one to be served as the path it was
// judged as.
//
// The variants come from RFC 3986 (escapes, dot segments, normalisation),
// RFC 9110 (methods, HEAD), and gateway and framework advisories on path
// confusion: encoded and double-encoded dots and slashes, backslashes,
// Tomcat's ";" path parameters ("/..;/"), NUL and CR/LF, overlong UTF-8,
// case-insensitive routers, absolute-form targets, client-chosen
// X-Original-* and X-Forwarded-* headers, method overrides, and identity
// and client-address headers with "_" for "-".
func TestJudgeWhatIsServed(t *testing.T) {
	api := &servedAPI{}
	upstream := httptest.NewServer(api)
	t.Cleanup(upstream.Close)
	srv, c := adminClient(t, "--trusted-proxies", "127.0.0.1",
		"--scope-rule", "* /admin/* admin:all", "--scope-rule", "GET /shipments/* shipments:read",
		"--proxy-upstream", upstream.URL, "--proxy-addr", "127.0.0.1:0", "--ext-authz-addr", "127.0.0.1:0",
		"--authorize-addr", "127.0.0.1:0")
	proxyAddr := strings.TrimPrefix(srv.waitFor(proxyRE), "http://")
	extAuthz := srv.waitFor(extAuthzRE)
	authorizeAddr := strings.TrimPrefix(srv.waitFor(authorizeRE), "http://")

	c.do("POST", "/v1/applications", map[string]any{"name": "shipping"}, 201)
	k := c.do("POST", "/v1/applications/shipping/access-keys", map[string]any{
		"restrictions": map[string]any{"scopes": []string{"shipments:read"}}}, 201)
	keyID, secret := k["access_key_id"].(string), k["secret_access_key"].(string)
	c.do("POST", "/v1/applications", map[string]any{"name": "leaky"}, 201)
	leaked := c.do("POST", "/v1/applications/leaky/access-keys", map[string]any{}, 201)["secret_access_key"].(string)

	lk := strings.TrimPrefix(srv.endpoint, "http://")
	up := strings.TrimPrefix(upstream.URL, "http://")
	mw, err := lkclient.New(srv.endpoint, lkclient.WithCredentials(lkclient.Credentials{SecretAccessKey: strings.TrimPrefix(c.auth, "Bearer ")}))
	if err != nil {
		t.Fatal(err)
	}
	mwServer := httptest.NewServer(lkclient.Middleware(lkclient.MiddlewareOptions{Client: mw, ScopeRules: true, CacheTTL: -1})(api))
	t.Cleanup(mwServer.Close)
	surfaces := map[string]string{
		"nginx": startNginx(t, lk, up),
		"caddy": startCaddy(t, lk, up),
		// the same gateways asking the forward-auth listener
		// (--authorize-addr) instead of the API's
		"nginx " + onAuthorizeAddr: startNginx(t, authorizeAddr, up),
		"caddy " + onAuthorizeAddr: startCaddy(t, authorizeAddr, up),
		"proxy":                    proxyAddr,
		"middleware":               strings.TrimPrefix(mwServer.URL, "http://"),
	}

	conn, err := grpc.NewClient(extAuthz, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	authz := authv3.NewAuthorizationClient(conn)

	key := [2]string{"X-Api-Key", secret}
	fakeSecret, err := keyformat.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	// forged by the client: none may reach the API
	forged := [][2]string{
		{"X-Latchkey-Scopes", "admin:all"}, {"X_Latchkey_Scopes", "admin:all"}, {"x-latchkey-application", "forged"},
		{"X-LATCHKEY_Account", "forged"}, {"X_latchkey-Access-Key-Id", "LKIAFORGEDFORGEDFORG"}, {"X-Latchkey-Extra", "forged"},
	}
	spoofed := [][2]string{
		{"X-Real-IP", "10.9.9.9"}, {"True-Client-IP", "10.9.9.9"}, {"X-Client-IP", "10.9.9.9"}, {"CF-Connecting-IP", "10.9.9.9"},
		{"Forwarded", "for=10.9.9.9"}, {"X-Forwarded-For", "10.9.9.9"}, {"Fastly-Client-IP", "10.9.9.9"}, {"X-Cluster-Client-IP", "10.9.9.9"},
	}
	overrides := [][2]string{{"X-HTTP-Method-Override", "DELETE"}, {"X-HTTP-Method", "DELETE"}, {"X-Method-Override", "DELETE"}}
	with := func(extra ...[][2]string) [][2]string {
		out := [][2]string{key}
		for _, e := range extra {
			out = append(out, e...)
		}
		return out
	}
	// Go's net/http (Caddy, the proxy, the middleware's server) refuses
	// some request lines itself
	goServers := []string{"caddy", "proxy", "middleware"}
	allHTTP := []string{"nginx", "caddy", "nginx " + onAuthorizeAddr, "caddy " + onAuthorizeAddr, "proxy", "middleware"}

	variants := []variant{
		{name: "allowed path", target: "/shipments/1", served: "/shipments/1"},
		{name: "allowed path with query", target: "/shipments/1?page=2", served: "/shipments/1"},
		{name: "rule's prefix itself", target: "/shipments", served: "/shipments"},
		{name: "forbidden path", target: "/admin/users", code: "SCOPE_DENIED"},
		{name: "forbidden path without its slash", target: "/admin", code: "SCOPE_DENIED"},
		{name: "encoded letter", target: "/%61dmin/users", code: "SCOPE_DENIED"},
		{name: "encoded upper-case letters", target: "/%41DMIN/users", code: "SCOPE_DENIED"},
		{name: "upper case", target: "/ADMIN/users", code: "SCOPE_DENIED"},
		{name: "mixed case", target: "/Admin/Users", code: "SCOPE_DENIED"},
		{name: "dot-dot into the forbidden path", target: "/shipments/../admin/users", code: "AMBIGUOUS_PATH"},
		{name: "dot-dot out of the forbidden path", target: "/admin/../shipments/1", code: "AMBIGUOUS_PATH"},
		{name: "encoded dot-dot", target: "/shipments/%2e%2e/admin/users", code: "AMBIGUOUS_PATH"},
		{name: "half-encoded dot-dot", target: "/shipments/.%2E/admin/users", code: "AMBIGUOUS_PATH"},
		{name: "dot-dot above the root", target: "/../admin/users", code: "AMBIGUOUS_PATH", gateway: []string{"nginx"}},
		{name: "harmless dot segments", target: "/shipments/./1/../2", served: "/shipments/2"},
		{name: "leading double slash", target: "//admin/users", code: "AMBIGUOUS_PATH"},
		{name: "inner double slash, same rule", target: "/shipments//1", served: "/shipments/1"},
		{name: "encoded slash", target: "/shipments/..%2Fadmin/users", code: "AMBIGUOUS_PATH"},
		{name: "encoded slashes only", target: "/shipments%2F..%2Fadmin%2Fusers", code: "AMBIGUOUS_PATH"},
		{name: "encoded backslash", target: "/shipments/..%5Cadmin/users", code: "AMBIGUOUS_PATH"},
		{name: "raw backslash", target: `/shipments/..\admin/users`, code: "AMBIGUOUS_PATH"},
		{name: "Tomcat path parameter", target: "/shipments/..;/admin/users", code: "AMBIGUOUS_PATH"},
		{name: "path parameter on the forbidden segment", target: "/admin;x=1/users", code: "AMBIGUOUS_PATH"},
		{name: "double-encoded dot-dot", target: "/shipments/%252e%252e/admin/users", code: "AMBIGUOUS_PATH"},
		{name: "double-encoded letter", target: "/%2561dmin/users", code: "AMBIGUOUS_PATH"},
		{name: "encoded NUL", target: "/shipments/1%00/../../admin/users", code: "AMBIGUOUS_PATH", gateway: []string{"nginx"}},
		{name: "encoded CR LF", target: "/shipments/1%0d%0aX-Latchkey-Scopes:%20admin:all", code: "AMBIGUOUS_PATH"},
		{name: "overlong UTF-8 slash", target: "/shipments/..%c0%afadmin/users", code: "AMBIGUOUS_PATH"},
		{name: "invalid UTF-8", target: "/shipments/%ff", code: "AMBIGUOUS_PATH"},
		// Caddy asks about "/admin/users%23/shipments/1", its
		// re-encoding, which the rules refuse
		{name: "raw fragment", target: "/admin/users#/shipments/1", code: "AMBIGUOUS_PATH", codeOn: map[string]string{"caddy": "SCOPE_DENIED"}},
		{name: "invalid escape", target: "/shipments/%zz", code: "AMBIGUOUS_PATH", gateway: append([]string{"nginx"}, goServers...)},
		{name: "absolute-form target", target: "http://{{HOST}}/admin/users", code: "SCOPE_DENIED"},
		{name: "absolute-form target, allowed", target: "http://{{HOST}}/shipments/1", served: "/shipments/1"},
		{name: "_method query parameter", target: "/shipments/1?_method=DELETE", code: "AMBIGUOUS_PATH"},
		{name: "encoded _method query parameter", target: "/shipments/1?%5Fmethod=DELETE", code: "AMBIGUOUS_PATH"},
		{name: "key in the query", target: "/shipments/1?api_key=" + leaked, code: "CREDENTIALS_IN_URL"},
		{name: "key in the path, encoded", target: "/shipments/%6c" + strings.TrimPrefix(leaked, "l"), code: "CREDENTIALS_IN_URL"},

		{name: "method no rule names", method: "DELETE", target: "/shipments/1", code: "SCOPE_DENIED"},
		{name: "POST where only GET is named", method: "POST", target: "/shipments/1", code: "SCOPE_DENIED"},
		{name: "HEAD judged as GET", method: "HEAD", target: "/shipments/1", served: "/shipments/1"},
		{name: "HEAD on the forbidden path", method: "HEAD", target: "/admin/users", code: "SCOPE_DENIED"},
		{name: "lower-case method", method: "get", target: "/admin/users", code: "AMBIGUOUS_PATH", gateway: []string{"nginx"}},
		{name: "lower-case method on the allowed path", method: "get", target: "/shipments/1", code: "AMBIGUOUS_PATH", gateway: []string{"nginx"}},
		{name: "unknown method", method: "PROPFIND", target: "/shipments/1", code: "SCOPE_DENIED"},
		{name: "OPTIONS where only GET is named", method: "OPTIONS", target: "/shipments/1", code: "SCOPE_DENIED"},
		{name: "OPTIONS on the forbidden path", method: "OPTIONS", target: "/admin/users", code: "SCOPE_DENIED"},

		{name: "client-chosen X-Original-URI", target: "/admin/users", header: with([][2]string{{"X-Original-Method", "GET"}, {"X-Original-URI", "/shipments/1"}}), code: "SCOPE_DENIED"},
		{name: "client-chosen X-Forwarded-Uri", target: "/admin/users", header: with([][2]string{{"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "/shipments/1"}}), code: "SCOPE_DENIED"},
		{name: "client-chosen method header", method: "DELETE", target: "/shipments/1", header: with([][2]string{{"X-Original-Method", "GET"}, {"X-Forwarded-Method", "GET"}}), code: "SCOPE_DENIED"},
		{name: "key hidden behind a client-chosen URI", target: "/shipments/1?key=" + leaked, header: with([][2]string{{"X-Original-URI", "/shipments/1"}, {"X-Forwarded-Uri", "/shipments/1"}}), code: "CREDENTIALS_IN_URL"},
		{name: "method overrides", target: "/shipments/1", header: with(overrides), served: "/shipments/1"},
		{name: "forged identity headers", target: "/shipments/1", header: with(forged), served: "/shipments/1"},
		{name: "spoofed client address", target: "/shipments/1", header: with(spoofed), served: "/shipments/1"},
		{name: "no key", target: "/shipments/1", header: [][2]string{}, code: "MISSING"},
		{name: "unknown key", target: "/shipments/1", header: [][2]string{{"X-Api-Key", fakeSecret}}, code: "NOT_FOUND"},
	}

	normalised := map[string][]string{} // surface -> variants its own server refused
	for _, v := range variants {
		if v.method == "" {
			v.method = "GET"
		}
		if v.header == nil {
			v.header = with()
		}
		t.Run(v.name, func(t *testing.T) {
			for _, name := range allHTTP {
				addr := surfaces[name]
				target := strings.ReplaceAll(v.target, "{{HOST}}", addr)
				before := api.count()
				resp, body := rawCall(t, "127.0.0.2", addr, v.method, target, v.header)
				reached := api.count() - before
				lkCode := resp.Header.Get("X-Latchkey-Code")
				if v.served == "" {
					if reached != 0 {
						last := api.last()
						t.Errorf("%s: a refused call reached the API as %s %s", name, last.Method, last.RequestURI)
					}
					if resp.StatusCode < 400 || resp.StatusCode >= 500 {
						t.Errorf("%s: status %d for a call that must be refused; body %q", name, resp.StatusCode, body)
					}
					want := v.code
					if c, ok := v.codeOn[gatewayOf(name)]; ok {
						want = c
					}
					if lkCode == "" && contains(v.gateway, gatewayOf(name)) {
						normalised[name] = append(normalised[name], v.name)
						continue
					}
					if lkCode != want {
						t.Errorf("%s: status %d, X-Latchkey-Code %q, want %q; body %q", name, resp.StatusCode, lkCode, want, body)
					}
					continue
				}
				if resp.StatusCode == 400 && lkCode == "" && contains(v.gateway, gatewayOf(name)) {
					normalised[name] = append(normalised[name], v.name)
					continue
				}
				if resp.StatusCode != 200 || reached != 1 {
					t.Errorf("%s: status %d (%s), %d calls served, want 200 and 1; body %q", name, resp.StatusCode, lkCode, reached, body)
					continue
				}
				checkServed(t, name, api.last(), v, keyID)
			}
			checkExtAuthz(t, authz, v, keyID)
		})
	}
	// what each gateway refused by itself, for the record (docs/security.md)
	names := make([]string, 0, len(normalised))
	for n := range normalised {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Logf("refused by %s before latchkey saw it: %s", n, strings.Join(normalised[n], "; "))
	}
}

// onAuthorizeAddr names, after a gateway's name, the surface where that
// gateway asks serve's forward-auth listener (--authorize-addr).
const onAuthorizeAddr = "asking --authorize-addr"

// gatewayOf is the gateway of a surface's name: a gateway refuses the
// same calls itself whichever of latchkey's listeners it asks.
func gatewayOf(surface string) string {
	name, _, _ := strings.Cut(surface, " ")
	return name
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// checkServed checks what the API got for an allowed call: the path it
// was judged as, the method, the identity latchkey set and none of the
// client's, and on the gateways the client's address as seen.
func checkServed(t *testing.T, surface string, got servedCall, v variant, keyID string) {
	t.Helper()
	cp, err := latchkey.CanonicalizePath(got.Path, 0)
	if err != nil || cp.Path != v.served || (surface == "middleware" && got.Path != cp.Escaped) {
		t.Errorf("%s: the API served %q (canonical %q, %v), judged as %q", surface, got.RequestURI, cp.Path, err, v.served)
	}
	if want := strings.ToUpper(v.method); got.Method != want {
		t.Errorf("%s: the API served method %q, judged %q", surface, got.Method, want)
	}
	for _, h := range []string{"Authorization", "X-Api-Key"} {
		// the middleware runs inside the API, which has the request
		if got.Header.Get(h) != "" && surface != "middleware" {
			t.Errorf("%s: the API saw %s", surface, h)
		}
	}
	for k, vs := range got.Header {
		if latchkey.IsIdentityHeader(k) || latchkey.IsMethodOverrideHeader(k) {
			if strings.Contains(strings.Join(vs, ","), "forged") || strings.Contains(strings.Join(vs, ","), "admin:all") ||
				latchkey.IsMethodOverrideHeader(k) || len(vs) != 1 {
				t.Errorf("%s: the API saw the client's %s: %q", surface, k, vs)
			}
		}
	}
	if surface != "middleware" {
		want := map[string]string{"X-Latchkey-Access-Key-Id": keyID, "X-Latchkey-Application": "shipping",
			"X-Latchkey-Account": "default", "X-Latchkey-Scopes": "shipments:read"}
		for h, w := range want {
			if g := got.Header.Get(h); g != w {
				t.Errorf("%s: the API saw %s %q, want %q", surface, h, g, w)
			}
		}
		for _, h := range []string{"X-Real-Ip", "X-Forwarded-For"} {
			if g := got.Header.Values(h); len(g) != 1 || g[0] != "127.0.0.2" {
				t.Errorf("%s: the API saw %s %q, want the client's address 127.0.0.2", surface, h, g)
			}
		}
		for _, h := range []string{"True-Client-Ip", "X-Client-Ip", "Cf-Connecting-Ip", "Forwarded", "Fastly-Client-Ip", "X-Cluster-Client-Ip"} {
			if g := got.Header.Get(h); g != "" {
				t.Errorf("%s: the API saw the client's %s %q", surface, h, g)
			}
		}
	}
}

// checkExtAuthz asks the ext_authz service about the variant as Envoy
// would, with the request target as Envoy's :path (Envoy with its own
// path normalisation off, the harder case), and checks that a refused call
// is denied with its code and an allowed one gets the identity and loses
// the client's identity and method-override headers.
func checkExtAuthz(t *testing.T, authz authv3.AuthorizationClient, v variant, keyID string) {
	t.Helper()
	target := strings.ReplaceAll(v.target, "{{HOST}}", "api.example")
	if strings.ContainsAny(target, "#") || strings.Contains(target, "%zz") {
		return // Envoy's codec refuses these before ext_authz
	}
	hdr := map[string]string{}
	for _, h := range v.header {
		hdr[strings.ToLower(h[0])] = h[1]
	}
	resp, err := authz.Check(t.Context(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "127.0.0.2", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: v.method, Path: target, Host: "api.example", Headers: hdr}},
	}})
	if err != nil {
		t.Fatalf("ext_authz: %v", err)
	}
	if v.served == "" {
		d := resp.GetDeniedResponse()
		if resp.GetStatus().GetCode() == int32(codes.OK) || d == nil {
			t.Errorf("ext_authz allowed a call that must be refused: %v", resp)
			return
		}
		var e struct{ Error struct{ Code string } }
		_ = json.Unmarshal([]byte(d.GetBody()), &e)
		want := v.code
		if c, ok := v.codeOn["ext_authz"]; ok {
			want = c
		}
		if e.Error.Code != want {
			t.Errorf("ext_authz: refused with %q, want %q", e.Error.Code, want)
		}
		return
	}
	ok := resp.GetOkResponse()
	if resp.GetStatus().GetCode() != int32(codes.OK) || ok == nil {
		t.Errorf("ext_authz refused an allowed call: %v", resp)
		return
	}
	set := map[string]string{}
	for _, h := range ok.GetHeaders() {
		set[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	if set["x-latchkey-access-key-id"] != keyID || set["x-latchkey-scopes"] != "shipments:read" {
		t.Errorf("ext_authz: identity headers %v", set)
	}
	removed := map[string]bool{}
	for _, h := range ok.GetHeadersToRemove() {
		removed[h] = true
	}
	for k := range hdr {
		if (latchkey.IsIdentityHeader(k) || latchkey.IsMethodOverrideHeader(k)) && !removed[k] && set[k] == "" {
			t.Errorf("ext_authz: the client's %s is neither removed nor replaced", k)
		}
	}
}
