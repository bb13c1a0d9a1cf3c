package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// The gateway configurations that docs/integrations.md shows. The tests run
// these files as they are, with only the {{...}} placeholders filled in.
const (
	nginxConf = "../../docs/integrations/nginx.conf"
	caddyfile = "../../docs/integrations/Caddyfile"
)

// requireBinary returns path, or skips the test when it is missing; with
// CI set a missing binary fails the test, since .ci/run installs it.
func requireBinary(t *testing.T, path, pkg string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing (CI is set; .ci/run installs the Debian package %s)", path, pkg)
		}
		t.Skipf("%s is missing: apt-get install %s", path, pkg)
	}
	return path
}

// freeAddr returns a 127.0.0.1 address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// render fills the placeholders of a documented configuration.
func render(t *testing.T, path string, vars map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for k, v := range vars {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	if strings.Contains(s, "{{") {
		t.Fatalf("%s: a placeholder was left unfilled", path)
	}
	return s
}

// startGateway runs a gateway in its own process group until the test
// ends and waits until it accepts connections; command builds the
// gateway's command for the address it is to listen on, and startGateway
// returns that address. freeAddr's port is free when it returns but not
// reserved: another socket (a test's client bound to a loopback address,
// say) may take it before the gateway binds it, and Caddy binds the
// site's port on every address. A gateway that exits because its
// address is in use (Go's "address already in use", Caddy's; the C
// library's "Address already in use", nginx's) is started again on a new
// port, three tries in all.
func startGateway(t *testing.T, name string, command func(listen string) *exec.Cmd) string {
	t.Helper()
	const tries = 3
	for try := 1; ; try++ {
		listen := freeAddr(t)
		out, err := process(t, name, command(listen), listen)
		if err == nil {
			return listen
		}
		if try == tries || !strings.Contains(strings.ToLower(out), "address already in use") {
			t.Fatalf("%v\n%s", err, out)
		}
		t.Logf("%s: %s was taken before it bound it; trying another port:\n%s", name, listen, out)
	}
}

// process runs cmd in its own process group until the test ends, and
// waits until it accepts connections on listen. It returns an error, and
// the process's output, when the process exits, or when it does not
// accept connections within 15 s (it is then killed). The output is
// logged at the end of a test that failed.
func process(t *testing.T, name string, cmd *exec.Cmd, listen string) (string, error) {
	t.Helper()
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("starting %s: %w", name, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited: // its group may be gone, and its number another's: no signal
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) // the group: nginx's workers too
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			c.Close()
			return "", nil
		}
		select {
		case <-exited:
			return out.String(), fmt.Errorf("%s exited: %v", name, waitErr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			return out.String(), fmt.Errorf("%s is not accepting connections on %s", name, listen)
		}
	}
}

// startNginx runs Debian's nginx with the documented configuration
// (nginxAt) in front of latchkey and upstream.
func startNginx(t *testing.T, latchkey, upstream string) string {
	t.Helper()
	return startNginxWith(t, nginxConf, map[string]string{"LATCHKEY": latchkey, "UPSTREAM": upstream})
}

// startNginxWith runs nginx with the documented configuration conf, its
// placeholders filled from vars and {{LISTEN}} (nginxAt); it returns the
// address nginx listens on.
func startNginxWith(t *testing.T, confPath string, vars map[string]string) string {
	t.Helper()
	return startGateway(t, "nginx", nginxAt(t, confPath, vars))
}

// nginxAt returns what builds the command that runs Debian's nginx with
// the documented configuration conf for an address, its placeholders
// filled from vars and {{LISTEN}}, included in the http block of a
// minimal main configuration (the headers-more module it needs, pid file,
// temporary paths and logs in a test directory) as conf.d files are.
func nginxAt(t *testing.T, confPath string, vars map[string]string) func(listen string) *exec.Cmd {
	t.Helper()
	bin := requireBinary(t, "/usr/sbin/nginx", "nginx")
	headersMore := requireBinary(t, "/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so", "libnginx-mod-http-headers-more-filter")
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // nginx's workers run as nobody when started as root
		t.Fatal(err)
	}
	return func(listen string) *exec.Cmd {
		vars["LISTEN"] = listen
		conf := render(t, confPath, vars)
		if err := os.WriteFile(filepath.Join(dir, "latchkey.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		main := fmt.Sprintf(`load_module %[2]s;
pid %[1]s/nginx.pid;
error_log stderr notice;
worker_processes 1;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/latchkey.conf;
}
`, dir, headersMore)
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644); err != nil {
			t.Fatal(err)
		}
		return exec.Command(bin, "-e", "stderr", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;")
	}
}

// startCaddy runs Debian's caddy with the documented Caddyfile (caddyAt).
func startCaddy(t *testing.T, latchkey, upstream string) string {
	t.Helper()
	bin := requireBinary(t, "/usr/bin/caddy", "caddy")
	dir := t.TempDir()
	return startGateway(t, "caddy", func(listen string) *exec.Cmd {
		return caddyAt(t, bin, dir, latchkey, upstream, listen)
	})
}

// caddyAt returns the command that runs caddy (bin) with the documented
// Caddyfile for listen, imported after a global option that keeps it from
// opening its admin endpoint, with its configuration, data and home in
// dir.
func caddyAt(t *testing.T, bin, dir, latchkey, upstream, listen string) *exec.Cmd {
	t.Helper()
	main := "{\n\tadmin off\n}\n\nimport latchkey.Caddyfile\n"
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := render(t, caddyfile, map[string]string{"LATCHKEY": latchkey, "UPSTREAM": upstream, "LISTEN": listen})
	if err := os.WriteFile(filepath.Join(dir, "latchkey.Caddyfile"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", filepath.Join(dir, "Caddyfile"), "--adapter", "caddyfile")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir+"/data", "XDG_CONFIG_HOME="+dir+"/config")
	return cmd
}

// upstreamCall is what the protected API received.
type upstreamCall struct {
	Method, URI string
	Header      http.Header
}

// recordingAPI is the protected API: it answers each call with what it saw.
func recordingAPI(t *testing.T) (*httptest.Server, func() int) {
	t.Helper()
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(upstreamCall{Method: r.Method, URI: r.RequestURI, Header: r.Header})
	}))
	t.Cleanup(srv.Close)
	return srv, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// clientFrom returns an HTTP client whose connections come from ip, one of
// the loopback addresses: the gateway sees each test's client at its own
// address, and latchkey must see that address, not the gateway's.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// TestStartGatewayRetriesATakenPort takes the port of startGateway's first
// address before the real gateway starts on it, with a connection from it
// as a test's clients make: each gateway must come up on another port,
// not fail the test. Caddy and nginx say so in different words.
func TestStartGatewayRetriesATakenPort(t *testing.T) {
	elsewhere := httptest.NewServer(http.NotFoundHandler())
	defer elsewhere.Close()
	for _, gw := range []struct {
		name    string
		command func(t *testing.T) func(listen string) *exec.Cmd
	}{
		{"caddy", func(t *testing.T) func(listen string) *exec.Cmd {
			bin := requireBinary(t, "/usr/bin/caddy", "caddy")
			dir := t.TempDir()
			return func(listen string) *exec.Cmd { return caddyAt(t, bin, dir, "127.0.0.1:9", "127.0.0.1:9", listen) }
		}},
		{"nginx", func(t *testing.T) func(listen string) *exec.Cmd {
			return nginxAt(t, nginxConf, map[string]string{"LATCHKEY": "127.0.0.1:9", "UPSTREAM": "127.0.0.1:9"})
		}},
	} {
		t.Run(gw.name, func(t *testing.T) {
			command := gw.command(t)
			var tried []string
			listen := startGateway(t, gw.name, func(listen string) *exec.Cmd {
				tried = append(tried, listen)
				if len(tried) == 1 { // a client's connection from listen's port
					local, err := net.ResolveTCPAddr("tcp", listen)
					if err != nil {
						t.Fatal(err)
					}
					c, err := (&net.Dialer{LocalAddr: local}).Dial("tcp", elsewhere.Listener.Addr().String())
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { c.Close() })
				}
				return command(listen)
			})
			if len(tried) != 2 || listen != tried[1] || tried[0] == tried[1] {
				t.Fatalf("addresses tried %v, started on %s: want a second, different address", tried, listen)
			}
		})
	}
}

// TestGateways puts nginx (auth_request) and Caddy (forward_auth), each from
// Debian's packages and configured by the files docs/integrations.md shows,
// in front of a small API, with a latchkey serve process deciding.
func TestGateways(t *testing.T) {
	gateways := []struct {
		name  string
		start func(t *testing.T, latchkey, upstream string) string
		// dropsAnyLatchkeyHeader: the gateway removes every client-sent
		// X-Latchkey-* header (both do: Caddy with request_header, nginx
		// with the headers-more module).
		dropsAnyLatchkeyHeader bool
	}{
		{"nginx", startNginx, true},
		{"caddy", startCaddy, true},
		// the same, asking serve's forward-auth listener
		{"nginx " + onAuthorizeAddr, startNginx, true},
		{"caddy " + onAuthorizeAddr, startCaddy, true},
	}
	for _, gw := range gateways {
		t.Run(gw.name, func(t *testing.T) {
			args := []string{"--trusted-proxies", "127.0.0.1", "--scope-rule", "GET /orders* orders:read", "--scope-rule", "POST /orders* orders:write"}
			onListener := strings.HasSuffix(gw.name, onAuthorizeAddr)
			if onListener {
				args = append(args, "--authorize-addr", "127.0.0.1:0")
			}
			srv, c := adminClient(t, args...)
			// shop belongs to an identity (the customer); batch to none
			idn := c.do("POST", "/v1/identities", map[string]any{"name": "acme", "external_id": "cus_idn"}, 201)
			idnID := idn["id"].(string)
			c.do("POST", "/v1/applications", map[string]any{"name": "shop", "identity_id": idnID}, 201)
			c.do("POST", "/v1/applications", map[string]any{"name": "cron"}, 201)
			c.do("POST", "/v1/applications", map[string]any{"name": "batch"}, 201)
			good := c.do("POST", "/v1/applications/shop/access-keys", map[string]any{"restrictions": map[string]any{
				"allowed_ips": []string{"127.0.0.2/32"}, "scopes": []string{"orders:read"}},
				"external_id": "cus_42", "metadata": map[string]any{"plan": "pro", "limits": map[string]any{"seats": 5}}}, 201)
			goodMetadata := base64.RawURLEncoding.EncodeToString([]byte(`{"limits":{"seats":5},"plan":"pro"}`))
			goodID, goodSecret := good["access_key_id"].(string), good["secret_access_key"].(string)
			leaked := c.do("POST", "/v1/applications/shop/access-keys", map[string]any{}, 201)
			off := c.do("POST", "/v1/applications/cron/access-keys", map[string]any{}, 201)
			c.do("PATCH", "/v1/access-keys/"+off["access_key_id"].(string), map[string]any{"status": "Inactive"}, 200)
			limited := c.do("POST", "/v1/applications/batch/access-keys", map[string]any{"restrictions": map[string]any{
				"rate_limit": map[string]any{"per_minute": 1}}}, 201)
			unknown, err := keyformat.NewSecret()
			if err != nil {
				t.Fatal(err)
			}

			api, calls := recordingAPI(t)
			lk := strings.TrimPrefix(srv.endpoint, "http://")
			if onListener {
				lk = strings.TrimPrefix(srv.waitFor(authorizeRE), "http://")
			}
			listen := gw.start(t, lk, strings.TrimPrefix(api.URL, "http://"))
			base := "http://" + listen

			tests := []struct {
				name   string
				from   string
				method string
				target string
				header map[string]string
				status int
				code   string
			}{
				{name: "valid key", from: "127.0.0.2", target: "/orders/7?page=2", header: map[string]string{"Authorization": "Bearer " + goodSecret,
					"X-Latchkey-Application": "forged", "X-Latchkey-Access-Key-Id": "LKIAFORGEDFORGEDFORG", "X-Latchkey-Extra": "forged",
					"X-Latchkey-External-Id": "cus_forged", "X-Latchkey-Metadata": "eyJwbGFuIjoiZnJlZSJ9", "X-Latchkey-Identity-Id": "idn_forgedforgedforg"}, status: 200},
				// Underscore twins, which CGI, WSGI and Rack servers merge with
				// the real names.
				{name: "valid key with underscore twins", from: "127.0.0.2", target: "/orders/7", header: map[string]string{"X-Api-Key": goodSecret,
					"X_Latchkey_External_Id": "cus_forged", "X-Latchkey_Metadata": "eyJwbGFuIjoiZnJlZSJ9", "X_Latchkey-Application": "forged",
					"X_Latchkey_Identity_Id": "idn_forgedforgedforg"}, status: 200},
				{name: "valid key in X-Api-Key", from: "127.0.0.2", target: "/orders/7", header: map[string]string{"X-Api-Key": goodSecret}, status: 200},
				{name: "no key", from: "127.0.0.2", target: "/orders/7", status: 401, code: "MISSING"},
				{name: "unknown key", from: "127.0.0.2", target: "/orders/7", header: map[string]string{"X-Api-Key": unknown}, status: 401, code: "NOT_FOUND"},
				{name: "two credentials", from: "127.0.0.2", target: "/orders/7", header: map[string]string{"Authorization": "Bearer " + goodSecret, "X-Api-Key": unknown},
					status: 401, code: "CREDENTIAL_AMBIGUOUS"},
				{name: "a comma-joined list", from: "127.0.0.2", target: "/orders/7", header: map[string]string{"X-Api-Key": goodSecret + "," + unknown},
					status: 401, code: "CREDENTIAL_AMBIGUOUS"},
				{name: "inactive key", from: "127.0.0.2", target: "/orders/7", header: map[string]string{"X-Api-Key": off["secret_access_key"].(string)}, status: 401, code: "INACTIVE"},
				{name: "wrong ip", from: "127.0.0.3", target: "/orders/7", header: map[string]string{"X-Api-Key": goodSecret}, status: 403, code: "IP_NOT_ALLOWED"},
				{name: "wrong ip claiming the right one", from: "127.0.0.3", target: "/orders/7", header: map[string]string{"X-Api-Key": goodSecret,
					"X-Forwarded-For": "127.0.0.2"}, status: 403, code: "IP_NOT_ALLOWED"},
				{name: "scope of the method", from: "127.0.0.2", method: "POST", target: "/orders", header: map[string]string{"X-Api-Key": goodSecret}, status: 403, code: "SCOPE_DENIED"},
				{name: "key in the url", from: "127.0.0.2", target: "/orders?api_key=" + leaked["secret_access_key"].(string), header: map[string]string{"X-Api-Key": goodSecret},
					status: 403, code: "CREDENTIALS_IN_URL"},
				{name: "rate-limited key, first call", from: "127.0.0.4", target: "/reports", header: map[string]string{"X-Api-Key": limited["secret_access_key"].(string),
					"X-Latchkey-External-Id": "cus_forged", "X-Latchkey-Metadata": "eyJwbGFuIjoiZnJlZSJ9", "X-Latchkey-Identity-Id": "idn_forgedforgedforg"}, status: 200},
				{name: "rate-limited key", from: "127.0.0.4", target: "/reports", header: map[string]string{"X-Api-Key": limited["secret_access_key"].(string)}, status: 429, code: "RATE_LIMITED"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					before := calls()
					req, err := http.NewRequestWithContext(t.Context(), cmpOr(tt.method, "GET"), base+tt.target, nil)
					if err != nil {
						t.Fatal(err)
					}
					for k, v := range tt.header {
						req.Header.Set(k, v)
					}
					resp, err := clientFrom(tt.from).Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					body, _ := io.ReadAll(resp.Body)
					if resp.StatusCode != tt.status {
						t.Fatalf("status %d, want %d; headers %v; body %s", resp.StatusCode, tt.status, resp.Header, body)
					}
					if sv := resp.Header.Get("Server"); !strings.HasPrefix(strings.ToLower(sv), gatewayOf(gw.name)) {
						t.Errorf("Server %q: the answer did not come through %s", sv, gw.name)
					}
					if tt.status != 200 {
						checkRefusal(t, resp, body, tt.code)
						if calls() != before {
							t.Error("a refused call reached the API")
						}
						return
					}
					var got upstreamCall
					if err := json.Unmarshal(body, &got); err != nil {
						t.Fatalf("API's answer %s: %v", body, err)
					}
					if got.Method != cmpOr(tt.method, "GET") || got.URI != tt.target {
						t.Errorf("API saw %s %s, want %s %s", got.Method, got.URI, cmpOr(tt.method, "GET"), tt.target)
					}
					for _, h := range []string{"Authorization", "X-Api-Key"} {
						if v := got.Header.Get(h); v != "" {
							t.Errorf("the API saw %s", h)
						}
					}
					for h := range got.Header {
						if strings.Contains(h, "_") && latchkey.IsIdentityHeader(h) {
							t.Errorf("the API saw %s: %q", h, got.Header[h])
						}
					}
					if gw.dropsAnyLatchkeyHeader && got.Header.Get("X-Latchkey-Extra") != "" {
						t.Error("a client's X-Latchkey-Extra reached the API")
					}
					want := map[string]string{"X-Latchkey-Application": "batch", "X-Latchkey-Account": "default",
						"X-Latchkey-Access-Key-Id": limited["access_key_id"].(string), "X-Latchkey-Scopes": "", "X-Latchkey-Code": "VALID",
						"X-Latchkey-External-Id": "", "X-Latchkey-Metadata": "", "X-Latchkey-Identity-Id": ""}
					if tt.from == "127.0.0.2" {
						want["X-Latchkey-Application"], want["X-Latchkey-Access-Key-Id"], want["X-Latchkey-Scopes"] = "shop", goodID, "orders:read"
						want["X-Latchkey-External-Id"], want["X-Latchkey-Metadata"] = "cus_42", goodMetadata
						want["X-Latchkey-Identity-Id"] = idnID
					}
					gotID := map[string]string{}
					for h := range want {
						if vs := got.Header.Values(h); len(vs) > 1 {
							t.Errorf("the API saw %d %s headers: %q", len(vs), h, vs)
						}
						gotID[h] = got.Header.Get(h)
					}
					if diff := cmp.Diff(want, gotID); diff != "" {
						t.Errorf("identity at the API (-want +got):\n%s", diff)
					}
				})
			}
			// the key sent in a URL is flagged exposed
			k := c.do("GET", "/v1/access-keys/"+leaked["access_key_id"].(string), nil, 200)
			if ex, _ := k["exposed"].(map[string]any); ex == nil || ex["where"] != "URL of a GET request to /orders" {
				t.Errorf("key sent in a URL through %s: exposed = %v", gw.name, k["exposed"])
			}
		})
	}
}

// checkRefusal checks a refusal as the gateway's client gets it: latchkey's
// JSON error with the decision code, and the headers that go with it.
func checkRefusal(t *testing.T, resp *http.Response, body []byte, code string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(bytes.TrimSpace(body), &e); err != nil || e.Error.Code != code || e.Error.Message == "" {
		t.Errorf("body %q (%v); want a JSON error with code %s and a message", body, err, code)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	if got := resp.Header.Get("X-Latchkey-Code"); got != code {
		t.Errorf("X-Latchkey-Code %q, want %s", got, code)
	}
	switch resp.StatusCode {
	case 401:
		// RFC 6750 section 3.1: no error code when no credential was
		// sent, invalid_request for more than one
		want := latchkey.BearerChallenge(latchkey.Code(code))
		if vs := resp.Header.Values("WWW-Authenticate"); len(vs) != 1 || vs[0] != want {
			t.Errorf("WWW-Authenticate %q, want %q", vs, want)
		}
	case 429:
		if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Errorf("429 with Retry-After %q", ra)
		}
		if code == "RATE_LIMITED" {
			for _, h := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy"} {
				if resp.Header.Get(h) == "" {
					t.Errorf("429 RATE_LIMITED without %s: %v", h, resp.Header)
				}
			}
		}
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestIntegrationsDoc: docs/integrations.md shows each configuration the
// gateway tests run, byte for byte, under its gateway's heading.
func TestIntegrationsDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/integrations.md")
	if err != nil {
		t.Fatal(err)
	}
	md := string(doc)
	for _, h := range []string{"## nginx", "## Caddy", "## Traefik", "## Envoy", "## Reverse proxy", "## Go SDK"} {
		if !strings.Contains(md, "\n"+h+"\n") {
			t.Errorf("docs/integrations.md has no %q heading", h)
		}
	}
	tests := []struct {
		file, heading, fence string
	}{
		{nginxConf, "## nginx", "```nginx\n"},
		{caddyfile, "## Caddy", "```caddy\n"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			b, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			block := tt.fence + string(b) + "```\n"
			i := strings.Index(md, block)
			if i < 0 {
				t.Fatalf("docs/integrations.md does not show %s as it is, in a %q block", tt.file, strings.TrimSpace(tt.fence))
			}
			// under its own heading: the nearest heading above it
			if h := md[strings.LastIndex(md[:i], "\n## ")+1:]; !strings.HasPrefix(h, tt.heading+"\n") {
				t.Errorf("%s is shown under %q", tt.file, h[:strings.Index(h, "\n")])
			}
		})
	}
}
