package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchkey/latchkey/internal/credfile"
)

// The tests in this file and the other replica_*_test.go files run several
// `latchkey serve` processes against one PostgreSQL database, as a
// deployment with many replicas does. Each test gets a throwaway database.
// When PostgreSQL (or Redis, for the shared rate limit) cannot be reached
// they fail if CI is set and are skipped otherwise.

// pgAdminURL is the database the tests connect to in order to create and
// drop their own databases.
func pgAdminURL() string {
	if u := os.Getenv("LATCHKEY_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// unreachable fails the test when CI is set, and skips it otherwise.
func unreachable(t *testing.T, what string, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is unreachable: %v", what, err)
	}
	t.Skipf("%s is unreachable: %v", what, err)
}

// pgConnect connects to the database at u.
func pgConnect(t *testing.T, u string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		unreachable(t, "PostgreSQL", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// newPGDatabase creates an empty database for this test, dropped (with
// any connection still open to it) when the test ends, and returns its URL.
func newPGDatabase(t *testing.T) string {
	t.Helper()
	admin := pgConnect(t, pgAdminURL())
	var b [6]byte
	rand.Read(b[:])
	name := "lk_rep_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(t.Context(), "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// Registered after the replicas' cleanups, so it runs before
		// them: FORCE ends their connections.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, pgAdminURL())
		if err != nil {
			t.Errorf("dropping database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	u, err := url.Parse(pgAdminURL())
	if err != nil {
		t.Fatalf("LATCHKEY_TEST_POSTGRES_URL must be a postgres:// URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// cluster is a set of replicas sharing one database, and the first
// operator's credential.
type cluster struct {
	t        *testing.T
	dbURL    string
	home     string
	args     []string
	replicas []*server
	admin    string // Authorization header value
	http     *http.Client
}

// startCluster starts n replicas on the database at dbURL: the first
// alone (it migrates and bootstraps), then the others. Extra args go to
// every replica. It returns when all are ready.
func startCluster(t *testing.T, dbURL string, n int, args ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, dbURL: dbURL, home: t.TempDir(), args: args, http: newHTTPClient(64)}
	for range n {
		c.start()
	}
	f, err := credfile.Read(filepath.Join(c.home, ".latchkey", "credentials"))
	if err != nil {
		t.Fatal(err)
	}
	c.admin = "Bearer " + f.Profile("default")[credfile.KeySecretAccessKey]
	for _, r := range c.replicas {
		c.waitReady(r, 30*time.Second)
	}
	return c
}

// start starts one more replica and returns its index in c.replicas.
func (c *cluster) start() int {
	c.t.Helper()
	// The guard would throttle the test's own address after the
	// NOT_FOUND answers it provokes on purpose.
	args := append([]string{"--database-url", c.dbURL, "--log-level", "info", "--guard-failures", "0"}, c.args...)
	c.replicas = append(c.replicas, startServer(c.t, c.home, args...))
	return len(c.replicas) - 1
}

// waitReady polls /readyz until it answers 200.
func (c *cluster) waitReady(r *server, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, _, err := c.call(r, "GET", "/readyz", "", nil)
		if err == nil && st == 200 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s not ready after %v (status %d, %v)\nstderr:\n%s", r.endpoint, within, st, err, r.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newHTTPClient(conns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns * 4
	tr.MaxIdleConnsPerHost = conns
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

// call sends a request to replica r with the given Authorization header
// and JSON body. It returns the status and the decoded body; err is set
// only when no HTTP answer came (connection refused or reset, timeout).
func (c *cluster) call(r *server, method, path, auth string, body any) (int, map[string]any, error) {
	return callHTTP(c.http, r.endpoint, method, path, auth, body)
}

func callHTTP(hc *http.Client, endpoint, method, path, auth string, body any) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, endpoint+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	out := map[string]any{}
	if len(raw) > 0 && json.Unmarshal(raw, &out) != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: status %d, body is not JSON: %.200s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out, nil
}

// must sends an admin request to replica r and fails the test unless the
// status is want.
func (c *cluster) must(r *server, method, path string, body any, want int) map[string]any {
	c.t.Helper()
	st, out, err := c.call(r, method, path, c.admin, body)
	if err != nil {
		c.t.Fatalf("%s %s on %s: %v", method, path, r.endpoint, err)
	}
	if st != want {
		c.t.Fatalf("%s %s on %s: status %d, want %d: %v", method, path, r.endpoint, st, want, out)
	}
	return out
}

// authorize asks replica r's forward-auth endpoint about secret, as a
// gateway does on every call, and returns the decision code.
func authorize(hc *http.Client, r *server, secret string) (string, error) {
	req, err := http.NewRequest("GET", r.endpoint+"/v1/authorize", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	code := resp.Header.Get("X-Latchkey-Code")
	if code == "" {
		return "", fmt.Errorf("GET /v1/authorize: status %d without X-Latchkey-Code", resp.StatusCode)
	}
	return code, nil
}

// waitCode polls replica r until it answers want for secret, and returns
// when it first did. It gives up at deadline.
func waitCode(hc *http.Client, r *server, secret, want string, deadline time.Time) (time.Time, error) {
	for {
		code, err := authorize(hc, r, secret)
		now := time.Now()
		if err == nil && code == want {
			return now, nil
		}
		if now.After(deadline) {
			if err == nil {
				err = fmt.Errorf("still %s", code)
			}
			return now, fmt.Errorf("%s never answered %s: %w", r.endpoint, want, err)
		}
	}
}

// newKey registers an application and creates one key on replica r,
// returning the key's ID and secret.
func (c *cluster) newKey(r *server, app string, restrictions map[string]any) (id, secret string) {
	c.t.Helper()
	c.must(r, "POST", "/v1/applications", map[string]any{"name": app}, 201)
	body := map[string]any{}
	if restrictions != nil {
		body["restrictions"] = restrictions
	}
	k := c.must(r, "POST", "/v1/applications/"+app+"/access-keys", body, 201)
	return k["access_key_id"].(string), k["secret_access_key"].(string)
}

// durations summarises a sample of durations.
type durations []time.Duration

func (d durations) quantile(q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func (d durations) max() time.Duration { return slices.Max(d) }

func (d durations) String() string {
	if len(d) == 0 {
		return "no samples"
	}
	r := func(x time.Duration) time.Duration { return x.Round(10 * time.Microsecond) }
	return fmt.Sprintf("n=%d p50=%v p90=%v p99=%v max=%v", len(d), r(d.quantile(0.5)), r(d.quantile(0.9)), r(d.quantile(0.99)), r(d.max()))
}
