package check

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// latchkeyBinary builds cmd/latchkey of the repository this chart is in.
func latchkeyBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "latchkey")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/latchkey")
	cmd.Dir = "../../.."
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building latchkey: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// postgresDatabase creates a throwaway database on the test server with
// psql and returns its URL.
func postgresDatabase(t *testing.T) string {
	t.Helper()
	psql := need(t, "psql", "Debian package postgresql-client-15")
	base := os.Getenv("LATCHKEY_TEST_POSTGRES_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "helmcheck_" + hex.EncodeToString(b)
	if out, err := exec.Command(psql, base, "-c", "CREATE DATABASE "+name).CombinedOutput(); err != nil {
		t.Fatalf("PostgreSQL is required (LATCHKEY_TEST_POSTGRES_URL): %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(psql, base, "-c", "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)").Run() })
	return strings.Replace(base, "/test?", "/"+name+"?", 1)
}

// TestRenderedContainerRuns runs the real server with the container's
// arguments and environment as the chart renders them (only the listen
// addresses moved to free loopback ports, /data to a temporary directory
// and the Secrets' values supplied), then calls each probe on the port
// it names and the metrics endpoint the ServiceMonitor scrapes. It shows
// that the probes' paths exist on the server, that the metrics address
// in the environment is the port the chart opens, and that SIGTERM within
// the grace period ends the process cleanly. No cluster, no image.
func TestRenderedContainerRuns(t *testing.T) {
	bin := latchkeyBinary(t)
	for _, tc := range []struct {
		name    string
		args    []string
		secrets func(t *testing.T) map[string]string // env name -> value of its Secret
	}{
		{"default values (SQLite)", nil, func(*testing.T) map[string]string { return nil }},
		{"forward auth on its own port", []string{"--set", "forwardAuth.enabled=true"}, func(*testing.T) map[string]string { return nil }},
		{"production values (PostgreSQL, Redis)", []string{"-f", production}, func(t *testing.T) map[string]string {
			return map[string]string{
				"LATCHKEY_DATABASE_URL":     postgresDatabase(t),
				"LATCHKEY_RATE_LIMIT_STORE": "redis://127.0.0.1:6379/0",
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dep := must[appsv1.Deployment](t, render(t, tc.args...))
			c := dep.Spec.Template.Spec.Containers[0]
			runContainer(t, bin, c, *dep.Spec.Template.Spec.TerminationGracePeriodSeconds, tc.secrets(t))
		})
	}
}

func runContainer(t *testing.T, bin string, c corev1.Container, grace int64, secrets map[string]string) {
	data := t.TempDir()
	ports := map[int32]string{} // container port -> loopback port
	var environ []string
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			if e.ValueFrom.SecretKeyRef == nil {
				t.Fatalf("env %s: only secretKeyRef is expected", e.Name)
			}
			var ok bool
			if v, ok = secrets[e.Name]; !ok {
				t.Fatalf("env %s comes from Secret %s, which this test does not supply", e.Name, e.ValueFrom.SecretKeyRef.Name)
			}
		}
		switch e.Name {
		case "LATCHKEY_ADDR", "LATCHKEY_METRICS_ADDR", "LATCHKEY_AUTHORIZE_ADDR":
			if v == "off" {
				break
			}
			host, port, err := net.SplitHostPort(v)
			if err != nil || host != "0.0.0.0" {
				t.Fatalf("%s=%q: want 0.0.0.0:PORT, reachable from outside the pod", e.Name, v)
			}
			n := containerPort(c, port)
			if n == 0 {
				t.Fatalf("%s=%q listens on a port the container does not declare", e.Name, v)
			}
			ports[n] = freePort(t)
			v = "127.0.0.1:" + ports[n]
		default:
			for _, prefix := range []string{"/data", "sqlite:/data"} {
				if rest, ok := strings.CutPrefix(v, prefix); ok && (rest == "" || rest[0] == '/') {
					v = strings.TrimSuffix(prefix, "/data") + data + rest
				}
			}
		}
		environ = append(environ, e.Name+"="+v)
	}
	if c.Args[0] != "serve" {
		t.Fatalf("args %v: want serve first", c.Args)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, c.Args...)
	// Only what the pod has: no variable of this machine leaks in.
	cmd.Env = append([]string{"PATH=/nonexistent"}, environ...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// out is read only once Wait has returned (it copies the output until then).
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	done := false
	defer func() {
		if !done {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("server output:\n%s", out.String())
		}
	}()

	get := func(port intOrName, path string) (int, string, error) {
		n := containerPort(c, string(port))
		if n == 0 || ports[n] == "" {
			return 0, "", fmt.Errorf("port %s is not one the server listens on", port)
		}
		resp, err := http.Get("http://127.0.0.1:" + ports[n] + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}

	// The startup probe as the kubelet runs it: every periodSeconds, at
	// most failureThreshold times.
	sp := c.StartupProbe
	started := false
	for i := int32(0); i < sp.FailureThreshold && !started; i++ {
		select {
		case err := <-exited:
			done = true
			t.Fatalf("the server exited before its startup probe passed: %v", err)
		default:
		}
		if code, _, err := get(intOrName(sp.HTTPGet.Port.String()), sp.HTTPGet.Path); err == nil && code == http.StatusOK {
			started = true
			break
		}
		time.Sleep(time.Duration(sp.PeriodSeconds) * time.Second)
	}
	if !started {
		t.Fatalf("the startup probe GET %s did not pass within %d tries", sp.HTTPGet.Path, sp.FailureThreshold)
	}
	probes := map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe}
	deadline := time.Now().Add(30 * time.Second)
	for name, p := range probes {
		for {
			code, body, err := get(intOrName(p.HTTPGet.Port.String()), p.HTTPGet.Path)
			if err == nil && code == http.StatusOK {
				t.Logf("%s probe GET %s on port %s: %d", name, p.HTTPGet.Path, p.HTTPGet.Port.String(), code)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s probe GET %s: %d %s %v", name, p.HTTPGet.Path, code, body, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if containerPort(c, "metrics") != 0 {
		code, body, err := get("metrics", "/metrics")
		if err != nil || code != http.StatusOK || !strings.Contains(body, "latchkey_") {
			t.Fatalf("GET /metrics on the metrics port: %d %v", code, err)
		}
		// The API's port does not serve it when it has a port of its own.
		if code, _, _ := get("http", "/metrics"); code == http.StatusOK {
			t.Error("/metrics is also served on the API's port")
		}
	}

	if containerPort(c, "forward-auth") != 0 {
		// Forward auth alone: a call without a key is refused by the
		// API's decision; nothing else is served there.
		if code, body, err := get("forward-auth", "/v1/authorize"); err != nil || code != http.StatusUnauthorized {
			t.Fatalf("GET /v1/authorize on the forward-auth port: %d %s %v; want 401", code, body, err)
		}
		if code, _, err := get("forward-auth", "/healthz"); err != nil || code != http.StatusNotFound {
			t.Errorf("GET /healthz on the forward-auth port: %d %v; want 404", code, err)
		}
		t.Log("forward-auth port: GET /v1/authorize without a key 401, GET /healthz 404")
	}

	// The first start wrote the operator's key to /data, not to the log.
	st, err := os.Stat(filepath.Join(data, "credentials"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("credentials file in /data: %v, mode %v; want mode 0600", err, st)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	select {
	case err := <-exited:
		done = true
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
		if strings.Contains(out.String(), "lksk_") {
			t.Error("the server printed a secret")
		}
		t.Logf("stopped on SIGTERM in %s, exit 0 (grace period %ds)", time.Since(t0).Round(time.Millisecond), grace)
	case <-time.After(time.Duration(grace) * time.Second):
		t.Fatalf("still running %ds after SIGTERM (terminationGracePeriodSeconds)", grace)
	}
}

type intOrName string
