package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

var (
	proxyRE    = regexp.MustCompile(`reverse proxy on (http://\S+) to `)
	extAuthzRE = regexp.MustCompile(`Envoy ext_authz gRPC service on (\S+)`)
	// authorizeRE: the forward-auth listener's address, as http://host:port
	authorizeRE = regexp.MustCompile(`forward auth on (http://\S+)/v1/authorize`)
)

// waitFor returns the first submatch of re in the server's output, waiting
// for the line to be printed.
func (s *server) waitFor(re *regexp.Regexp) string {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := re.FindStringSubmatch(s.stdout.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no line matching %s:\nstdout:\n%s\nstderr:\n%s", re, s.stdout, s.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServeGateways runs serve with the reverse proxy and the ext_authz
// service: both decide with serve's own key index, so a key deactivated
// through the API stops passing through them at once.
func TestServeGateways(t *testing.T) {
	api, _ := recordingAPI(t)
	srv, c := adminClient(t, "--proxy-upstream", api.URL, "--proxy-addr", "127.0.0.1:0", "--ext-authz-addr", "127.0.0.1:0")
	proxyURL := srv.waitFor(proxyRE)
	extAuthz := srv.waitFor(extAuthzRE)

	c.do("POST", "/v1/applications", map[string]any{"name": "shop"}, 201)
	k := c.do("POST", "/v1/applications/shop/access-keys", map[string]any{}, 201)
	id, secret := k["access_key_id"].(string), k["secret_access_key"].(string)

	conn, err := grpc.NewClient(extAuthz, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	authz := authv3.NewAuthorizationClient(conn)

	throughProxy := func() (int, upstreamCall) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", proxyURL+"/orders/1", nil)
		req.Header.Set("X-Api-Key", secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got upstreamCall
		if resp.StatusCode == 200 {
			_ = json.NewDecoder(resp.Body).Decode(&got)
		}
		return resp.StatusCode, got
	}
	check := func() *authv3.CheckResponse {
		t.Helper()
		resp, err := authz.Check(t.Context(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
				SocketAddress: &corev3.SocketAddress{Address: "192.0.2.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 1234}}}}},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Path: "/orders/1", Headers: map[string]string{"authorization": "Bearer " + secret}}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	status, got := throughProxy()
	if status != 200 || got.Header.Get("X-Latchkey-Access-Key-Id") != id || got.Header.Get("X-Api-Key") != "" {
		t.Fatalf("through the proxy: %d, upstream saw %v", status, got.Header)
	}
	if r := check(); r.GetStatus().GetCode() != int32(codes.OK) {
		t.Fatalf("ext_authz: %v", r)
	}

	c.do("PATCH", "/v1/access-keys/"+id, map[string]any{"status": "Inactive"}, 200)
	if status, _ := throughProxy(); status != 401 {
		t.Errorf("through the proxy after deactivation: %d, want 401", status)
	}
	r := check()
	if d := r.GetDeniedResponse(); d == nil || d.GetStatus().GetCode() != 401 || !strings.Contains(d.GetBody(), "INACTIVE") {
		t.Errorf("ext_authz after deactivation: %v", r)
	}
	srv.stop()
}

func TestServeGatewayFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"upstream not a URL", []string{"--proxy-upstream", "127.0.0.1:9000"}, "--proxy-upstream"},
		{"upstream with credentials", []string{"--proxy-upstream", "http://u:p@127.0.0.1:9000"}, "--proxy-upstream"},
		{"proxy address taken", []string{"--proxy-upstream", "http://127.0.0.1:9", "--proxy-addr", "256.0.0.1:1"}, "--proxy-addr"},
		{"ext_authz address", []string{"--ext-authz-addr", "256.0.0.1:1"}, "--ext-authz-addr"},
		{"forward-auth address", []string{"--authorize-addr", "256.0.0.1:1"}, "--authorize-addr 256.0.0.1:1"},
		{"negative timeout", []string{"--proxy-upstream", "http://127.0.0.1:9", "--proxy-response-header-timeout", "-1s"}, "--proxy-response-header-timeout"},
		{"no body timeout", []string{"--proxy-upstream", "http://127.0.0.1:9", "--proxy-body-timeout", "0s"}, "--proxy-body-timeout 0s: expected 100ms to 1h"},
		{"send timeout too long", []string{"--proxy-upstream", "http://127.0.0.1:9", "--proxy-send-timeout", "2h"}, "--proxy-send-timeout 2h0m0s: expected 100ms to 1h"},
		{"header timeout too short", []string{"--proxy-upstream", "http://127.0.0.1:9", "--proxy-read-header-timeout", "10ms"}, "--proxy-read-header-timeout"},
		{"idle timeout negative", []string{"--proxy-upstream", "http://127.0.0.1:9", "--proxy-idle-timeout", "-5s"}, "--proxy-idle-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binPath, append([]string{"serve", "--addr", "127.0.0.1:0"}, tt.args...)...)
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_DATA_HOME=")
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("serve %v succeeded; want an error", tt.args)
			}
			if !strings.Contains(string(out), tt.want) || strings.Contains(string(out), "panic") {
				t.Errorf("output %q does not name %q", out, tt.want)
			}
		})
	}
}
