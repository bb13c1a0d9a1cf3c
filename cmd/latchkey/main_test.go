package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/credfile"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "latchkey-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "latchkey")
	out, err := exec.Command("go", "build", "-race", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building latchkey: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a `latchkey serve` process.
type server struct {
	t        *testing.T
	cmd      *exec.Cmd
	endpoint string
	stdout   *syncBuffer
	stderr   *syncBuffer
	home     string
	exited   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// goraceEnv is GORACE without the race runtime's one-second sleep at exit,
// which every stop of the race-built binary would otherwise pay.
func goraceEnv() string {
	return "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")
}

var listenRE = regexp.MustCompile(`listening on (https?://\S+)`)

// startServer runs latchkey serve with HOME set to home and waits until it
// prints its address.
func startServer(t *testing.T, home string, args ...string) *server {
	t.Helper()
	return startBinary(t, binPath, home, args...)
}

// startBinary is startServer with another build of latchkey.
func startBinary(t *testing.T, bin, home string, args ...string) *server {
	t.Helper()
	s := &server{t: t, home: home, stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan error, 1)}
	s.cmd = exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-level", "debug"}, args...)...)
	s.cmd.Env = append(os.Environ(), "HOME="+home, "XDG_DATA_HOME=", "LATCHKEY_SHARED_CREDENTIALS_FILE=", goraceEnv())
	pr, pw := io.Pipe()
	s.cmd.Stdout = io.MultiWriter(s.stdout, pw)
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait(); pw.Close() }()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
	found := make(chan string, 1)
	go func() {
		// Report the first listening line, then keep draining, so that the
		// server never blocks writing to its stdout.
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	select {
	case ep, ok := <-found:
		if !ok {
			t.Fatalf("server exited before listening\nstdout:\n%s\nstderr:\n%s", s.stdout, s.stderr)
		}
		s.endpoint = ep
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start\nstderr:\n%s", s.stderr)
	}
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		if err != nil {
			s.t.Fatalf("server exited with %v\nstderr:\n%s", err, s.stderr)
		}
	case <-time.After(30 * time.Second):
		s.t.Fatal("server did not stop on SIGTERM")
	}
}

type client struct {
	t        *testing.T
	endpoint string
	auth     string
}

func (c *client) do(method, path string, body any, want int) map[string]any {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.endpoint+path, rd)
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	out := map[string]any{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			c.t.Fatalf("%s %s: body is not JSON: %s", method, path, raw)
		}
	}
	return out
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// TestWalkthrough follows the README's five-minute walk-through against a
// real server process, then restarts it to check that usage was flushed on
// SIGTERM and that no secret reached stdout or stderr.
func TestWalkthrough(t *testing.T) {
	home := t.TempDir()
	srv := startServer(t, home)

	credPath := filepath.Join(home, ".latchkey", "credentials")
	st, err := os.Stat(credPath)
	if err != nil {
		t.Fatalf("credentials file not written: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode %04o, want 0600", st.Mode().Perm())
	}
	f, err := credfile.Read(credPath)
	if err != nil {
		t.Fatal(err)
	}
	prof := f.Profile("default")
	adminID, adminSecret := prof[credfile.KeyAccessKeyID], prof[credfile.KeySecretAccessKey]
	if !strings.Contains(srv.stdout.String(), credPath) || !strings.Contains(srv.stdout.String(), adminID) {
		t.Errorf("stdout does not name the credentials file and key ID:\n%s", srv.stdout)
	}
	if prof[credfile.KeyEndpointURL] != srv.endpoint {
		t.Errorf("profile endpoint_url = %q, want %q", prof[credfile.KeyEndpointURL], srv.endpoint)
	}

	c := &client{t: t, endpoint: srv.endpoint, auth: "Bearer " + adminSecret}
	c.do("GET", "/healthz", nil, 200)
	c.do("GET", "/readyz", nil, 200)
	c.do("POST", "/v1/applications", map[string]string{"name": "shipments", "description": "shipment tracker"}, 201)
	k1 := c.do("POST", "/v1/applications/shipments/access-keys", map[string]string{"description": "v1"}, 201)
	k2 := c.do("POST", "/v1/applications/shipments/access-keys", map[string]string{"description": "v2"}, 201)
	third := c.do("POST", "/v1/applications/shipments/access-keys", map[string]string{}, 409)
	if errCode(third) != "LimitExceeded" {
		t.Errorf("third key: code %q, want LimitExceeded", errCode(third))
	}
	id1, sec1 := k1["access_key_id"].(string), k1["secret_access_key"].(string)
	sec2 := k2["secret_access_key"].(string)

	v := c.do("POST", "/v1/verify", map[string]string{"key": sec1, "ip": "198.51.100.7", "user_agent": "walkthrough/1"}, 200)
	if v["valid"] != true || v["code"] != "VALID" || v["access_key_id"] != id1 {
		t.Errorf("verify valid key = %v", v)
	}
	c.do("PATCH", "/v1/access-keys/"+id1, map[string]string{"status": "Inactive"}, 200)
	v = c.do("POST", "/v1/verify", map[string]string{"key": sec1, "ip": "198.51.100.8", "user_agent": "old-client/0.9"}, 200)
	if v["valid"] != false || v["code"] != "INACTIVE" {
		t.Errorf("verify inactive key = %v", v)
	}
	lu := c.do("GET", "/v1/access-keys/"+id1+"/last-used", nil, 200)
	rej, _ := lu["last_rejected"].(map[string]any)
	if rej["ip"] != "198.51.100.8" || rej["user_agent"] != "old-client/0.9" || rej["reason"] != "INACTIVE" {
		t.Errorf("last_rejected = %v", lu["last_rejected"])
	}
	c.do("PATCH", "/v1/access-keys/"+id1, map[string]string{"status": "Active"}, 200)
	if v := c.do("POST", "/v1/verify", map[string]string{"key": sec1}, 200); v["code"] != "VALID" {
		t.Errorf("reactivated key: %v", v)
	}
	if d := c.do("DELETE", "/v1/access-keys/"+id1, nil, 409); errCode(d) != "KeyActive" {
		t.Errorf("delete active: %v", d)
	}
	c.do("PATCH", "/v1/access-keys/"+id1, map[string]string{"status": "Inactive"}, 200)
	c.do("DELETE", "/v1/access-keys/"+id1, nil, 204)
	if v := c.do("POST", "/v1/verify", map[string]string{"key": sec1}, 200); v["code"] != "NOT_FOUND" {
		t.Errorf("deleted key: %v", v)
	}
	// the second key is used, then the server stops: its usage must be
	// flushed on SIGTERM and be there after a restart.
	for range 5 {
		c.do("POST", "/v1/verify", map[string]string{"key": sec2, "ip": "192.0.2.44"}, 200)
	}
	id2 := k2["access_key_id"].(string)

	audit := c.do("GET", "/v1/audit-events?limit=100", nil, 200)
	var actions []string
	for _, e := range audit["audit_events"].([]any) {
		actions = append(actions, e.(map[string]any)["action"].(string))
	}
	wantActions := []string{
		"access_key.delete", "access_key.update", "access_key.update", "access_key.update",
		"access_key.create", "access_key.create", "application.create",
		"access_key.create", "principal.create", "account.create",
	}
	if strings.Join(actions, ",") != strings.Join(wantActions, ",") {
		t.Errorf("audit actions:\n got %v\nwant %v", actions, wantActions)
	}

	srv.stop()
	for _, out := range []string{srv.stdout.String(), srv.stderr.String()} {
		for _, sec := range []string{adminSecret, sec1, sec2} {
			if strings.Contains(out, sec) {
				t.Fatalf("a secret appeared in the server's output")
			}
		}
	}

	srv2 := startServer(t, home)
	c.endpoint = srv2.endpoint
	if strings.Contains(srv2.stdout.String(), "First start") {
		t.Error("second start bootstrapped again")
	}
	lu = c.do("GET", "/v1/access-keys/"+id2+"/last-used", nil, 200)
	if lu["use_count"] != float64(5) {
		t.Errorf("after restart use_count = %v, want 5 (usage not flushed on shutdown?)", lu["use_count"])
	}
	if u, _ := lu["last_used"].(map[string]any); u["ip"] != "192.0.2.44" {
		t.Errorf("after restart last_used = %v", lu["last_used"])
	}
	srv2.stop()
}

func TestServeFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad database url", []string{"--database-url", "mysql://x"}, "--database-url"},
		{"bad trusted proxy", []string{"--trusted-proxies", "10.0.0.0/33"}, "--trusted-proxies"},
		{"webhook range with host bits", []string{"--webhook-allow-cidr", "10.1.2.3/24"}, "--webhook-allow-cidr"},
		{"webhook range not an address", []string{"--webhook-allow-cidr", "intranet.corp"}, "--webhook-allow-cidr"},
		{"bad log level", []string{"--log-level", "loud"}, "--log-level"},
		{"audit sink of no known kind", []string{"--audit-sink", "udp://siem:514"}, "--audit-sink"},
		{"audit sink syslog without TLS", []string{"--audit-sink", "syslog://siem:514"}, "--audit-sink"},
		{"audit syslog cert without key", []string{"--audit-sink", "syslog+tls://siem", "--audit-syslog-cert", "c.pem"}, "--audit-syslog-key"},
		{"audit syslog CA missing", []string{"--audit-sink", "syslog+tls://siem", "--audit-syslog-ca", "/nonexistent/ca.pem"}, "--audit-syslog-ca"},
		{"audit file too small", []string{"--audit-sink", "file:/tmp/a.jsonl", "--audit-file-max-mb", "0"}, "--audit-file-max-mb"},
		{"audit stream lease too short", []string{"--audit-stream-lease", "10ms"}, "--audit-stream-lease"},
		{"bad max keys", []string{"--max-keys-per-application", "0"}, "--max-keys-per-application"},
		{"unknown flag", []string{"--nope"}, "unknown flag"},
		{"bad policy period", []string{"--max-key-age", "ninety"}, "--max-key-age"},
		{"bad policy interval", []string{"--policy-interval", "1ms"}, "--policy-interval"},
		{"metrics address taken", []string{"--metrics-addr", "256.0.0.1:0"}, "--metrics-addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binPath, append([]string{"serve", "--addr", "127.0.0.1:0"}, tt.args...)...)
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_DATA_HOME=")
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if err == nil || !errorsAs(err, &ee) {
				t.Fatalf("serve %v succeeded; want an error", tt.args)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("output %q does not name %q", out, tt.want)
			}
			if strings.Contains(string(out), "panic") {
				t.Errorf("panic: %s", out)
			}
		})
	}
}

func errorsAs(err error, target **exec.ExitError) bool {
	ee, ok := err.(*exec.ExitError)
	if ok {
		*target = ee
	}
	return ok
}

func TestServeEnvAddrAndDatabase(t *testing.T) {
	home := t.TempDir()
	db := filepath.Join(home, "custom", "lk.db")
	cmd := exec.Command(binPath, "serve")
	cmd.Env = append(os.Environ(), "HOME="+home, "LATCHKEY_ADDR=127.0.0.1:0", "LATCHKEY_DATABASE_URL=sqlite:"+db)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("no listening line:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "sqlite:"+db) {
		t.Errorf("output does not name the database %s:\n%s", db, out.String())
	}
	if st, err := os.Stat(db); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("database file: %v, mode %v", err, st)
	}
}

func TestUsageSeriesOverHTTP(t *testing.T) {
	srv, c := adminClient(t)
	c.do("POST", "/v1/applications", map[string]any{"name": "chart"}, 201)
	k := c.do("POST", "/v1/applications/chart/access-keys", map[string]any{}, 201)
	id, sec := k["access_key_id"].(string), k["secret_access_key"].(string)
	for range 4 {
		c.do("POST", "/v1/verify", map[string]any{"key": sec}, 200)
	}
	c.do("PATCH", "/v1/access-keys/"+id, map[string]string{"status": "Inactive"}, 200)
	for range 2 {
		c.do("POST", "/v1/verify", map[string]any{"key": sec}, 200)
	}
	sum := func() (valid, inactive float64) {
		u := c.do("GET", "/v1/access-keys/"+id+"/usage?step=5m", nil, 200)
		for _, p := range u["series"].([]any) {
			pt := p.(map[string]any)
			valid += pt["valid"].(float64)
			if r, ok := pt["rejected"].(map[string]any); ok {
				n, _ := r["INACTIVE"].(float64)
				inactive += n
			}
		}
		return
	}
	// counted live from memory, then the same once flushed to the store
	if v, i := sum(); v != 4 || i != 2 {
		t.Fatalf("live series: valid %v inactive %v, want 4 and 2", v, i)
	}
	// after a restart, from the store alone
	srv.stop()
	srv2 := startServer(t, srv.home)
	c.endpoint = srv2.endpoint
	if v, i := sum(); v != 4 || i != 2 {
		t.Fatalf("stored series: valid %v inactive %v, want 4 and 2", v, i)
	}
	bad := c.do("GET", "/v1/access-keys/"+id+"/usage?step=10s", nil, 400)
	if errCode(bad) != "InvalidArgument" {
		t.Errorf("bad step: %v", bad)
	}
}
