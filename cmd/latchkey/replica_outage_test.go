package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestReplicasDatabaseOutage cuts two replicas off their database through
// a proxy, first as a stopped server (connections reset, new ones
// refused), then as a network partition (nothing answers, nothing fails):
// verification of known keys keeps working, management calls fail with a
// 503 in bounded time, /readyz says 503, and once the database is back
// everything recovers without restarting latchkey.
func TestReplicasDatabaseOutage(t *testing.T) {
	dbURL := newPGDatabase(t)
	proxy, viaProxy := newPGProxy(t, dbURL)
	// A short resync, so that the partition outlasts one: the change
	// feed must notice its dead connection (a bounded ping) and reconnect.
	c := startCluster(t, viaProxy, 2, "--resync-interval", "2s")
	for _, tc := range []struct {
		name string
		app  string
		cut  func()
		hold time.Duration
	}{
		{"server down", "down", proxy.down, 2 * time.Second},
		{"network partition", "partition", proxy.partition, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkOutage(t, c, dbURL, tc.app, tc.cut, proxy.up, tc.hold)
		})
	}
}

// outageBound is how long a management call may take to fail while the
// database is unreachable: twice the store's operation timeout (5s),
// because a read of usage first waits for a usage flush that may be
// waiting for the database itself, and a margin for a busy machine.
const outageBound = 12 * time.Second

// recoveryBound is how long the replicas may take to be ready again once
// the database is back: the change feed's longest reconnection delay
// (10s), and a margin.
const recoveryBound = 15 * time.Second

// checkOutage creates two keys, cuts the database off with cut, checks
// the replicas' answers for at least hold, restores the database with
// restore, and checks the recovery: ready again, management calls work,
// a deactivation reaches every replica, and the uses verified during the
// outage are stored.
func checkOutage(t *testing.T, c *cluster, dbURL, app string, cut, restore func(), hold time.Duration) {
	r0 := c.replicas[0]
	mustOK := func(r *server, method, path string, body any, want int) map[string]any {
		t.Helper()
		st, out, err := c.call(r, method, path, c.admin, body)
		if err != nil || st != want {
			t.Fatalf("%s %s on %s: %d %v %v, want %d", method, path, r.endpoint, st, out, err, want)
		}
		return out
	}
	mustOK(r0, "POST", "/v1/applications", map[string]any{"name": app}, 201)
	k1 := mustOK(r0, "POST", "/v1/applications/"+app+"/access-keys", map[string]any{}, 201)
	k2 := mustOK(r0, "POST", "/v1/applications/"+app+"/access-keys", map[string]any{}, 201)
	id1, sec1 := k1["access_key_id"].(string), k1["secret_access_key"].(string)
	id2, sec2 := k2["access_key_id"].(string), k2["secret_access_key"].(string)
	var uses atomic.Int64 // of key 1
	for _, r := range c.replicas {
		for _, s := range []string{sec1, sec2} {
			if _, err := waitCode(c.http, r, s, "VALID", time.Now().Add(5*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		uses.Add(1)
	}

	cut()
	cutAt := time.Now()
	restored := false
	defer func() {
		if !restored {
			restore()
		}
	}()

	// Verification goes on from the index, on every replica, the whole
	// time.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, r := range c.replicas {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, err := authorize(c.http, r, sec1)
				if err != nil || code != "VALID" {
					t.Errorf("%s during the outage: authorize %s %v, want VALID", r.endpoint, code, err)
					return
				}
				uses.Add(1)
				time.Sleep(2 * time.Millisecond)
			}
		})
	}

	// Every replica reports not ready.
	for _, r := range c.replicas {
		deadline := time.Now().Add(5 * time.Second)
		for {
			st, out, err := c.call(r, "GET", "/readyz", "", nil)
			if err == nil && st == 503 {
				t.Logf("%s: /readyz 503 %v after the cut: %v", r.endpoint, time.Since(cutAt).Round(time.Millisecond), out["error"])
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /readyz still %d %v 5s into the outage", r.endpoint, st, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Management calls fail with a clear 503, in bounded time, on every
	// replica. One write per replica: a replica makes its writes one at a
	// time (internal/manage), so a second would wait for the first.
	type mcall struct {
		method, path string
		body         any
	}
	callsOn := func(i int) []mcall {
		calls := []mcall{
			{"GET", "/v1/applications", nil},
			{"GET", "/v1/access-keys/" + id1 + "/last-used", nil},
		}
		if i%2 == 0 {
			return append(calls, mcall{"POST", "/v1/applications", map[string]any{"name": app + "-during"}})
		}
		return append(calls, mcall{"PATCH", "/v1/access-keys/" + id2, map[string]any{"description": "during the outage"}})
	}
	var mwg sync.WaitGroup
	for i, r := range c.replicas {
		for _, call := range callsOn(i) {
			mwg.Go(func() {
				start := time.Now()
				st, out, err := c.call(r, call.method, call.path, c.admin, call.body)
				took := time.Since(start)
				e, _ := out["error"].(map[string]any)
				if err != nil || st != 503 || e["code"] != "ServiceUnavailable" || e["message"] == "" {
					t.Errorf("%s %s on %s during the outage: %d %v %v, want 503 ServiceUnavailable", call.method, call.path, r.endpoint, st, out, err)
				}
				if took > outageBound {
					t.Errorf("%s %s on %s during the outage took %v, want at most %v", call.method, call.path, r.endpoint, took, outageBound)
				}
				t.Logf("%s %s on %s: %d %v in %v", call.method, call.path, r.endpoint, st, e["message"], took.Round(time.Millisecond))
			})
		}
	}
	mwg.Wait()
	if rest := hold - time.Since(cutAt); rest > 0 {
		time.Sleep(rest)
	}

	restore()
	restored = true
	upAt := time.Now()
	for _, r := range c.replicas {
		c.waitReady(r, recoveryBound)
		t.Logf("%s: ready again %v after the database came back (outage %v)", r.endpoint, time.Since(upAt).Round(time.Millisecond), upAt.Sub(cutAt).Round(time.Millisecond))
	}
	close(stop)
	wg.Wait()

	// Management works again, and a change reaches every replica.
	mustOK(r0, "PATCH", "/v1/access-keys/"+id2, map[string]any{"status": "Inactive"}, 200)
	acked := time.Now()
	for _, r := range c.replicas {
		if _, err := waitCode(c.http, r, sec2, "INACTIVE", acked.Add(time.Second)); err != nil {
			// Say how late it came, if it came, and what the replica's
			// change feed logged meanwhile (its log holds no secret).
			late, lerr := waitCode(c.http, r, sec2, "INACTIVE", acked.Add(15*time.Second))
			t.Errorf("after the outage: %v (then: after %v, %v)\nits log, last lines:\n%s", err, late.Sub(acked).Round(time.Millisecond), lerr, lastLines(r.stderr.String(), 40))
		}
	}
	// The uses verified during the outage are stored, once.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	want := uses.Load()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int64
		if err := db.QueryRow(ctx, "SELECT COALESCE((SELECT use_count FROM key_usage WHERE access_key_id = $1), 0)", id1).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == want {
			t.Logf("%d uses of the key, most of them during the outage, all stored", n)
			break
		}
		if n > want || time.Now().After(deadline) {
			t.Fatalf("use_count %d, want %d", n, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReplicasPostgresRestart stops and starts the real PostgreSQL server
// (pg_ctlcluster) under two replicas, with the checks of
// TestReplicasDatabaseOutage. The server is shared by every PostgreSQL
// test, including those of other packages that `go test ./...` runs at
// the same time, so this test runs only when LATCHKEY_TEST_PG_RESTART=1,
// on its own:
//
//	LATCHKEY_TEST_PG_RESTART=1 go test -race -count=1 -run '^TestReplicasPostgresRestart$' ./cmd/latchkey
func TestReplicasPostgresRestart(t *testing.T) {
	if os.Getenv("LATCHKEY_TEST_PG_RESTART") != "1" {
		t.Skip("stops the shared PostgreSQL server, which other packages' tests use at the same time: run it alone with LATCHKEY_TEST_PG_RESTART=1")
	}
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(versions) != 1 {
		t.Fatalf("want one PostgreSQL cluster under /etc/postgresql: %v %v", versions, err)
	}
	version := versions[0].Name()
	ctl := func(action string) {
		t.Helper()
		args := []string{"--skip-systemctl-redirect", version, "main", action}
		if action == "stop" {
			args = append(args, "-m", "fast")
		}
		out, err := exec.Command("pg_ctlcluster", args...).CombinedOutput()
		if err != nil {
			t.Errorf("pg_ctlcluster %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	dbURL := newPGDatabase(t)
	c := startCluster(t, dbURL, 2)
	// Started again whatever happens; registered last, so it runs first.
	t.Cleanup(func() {
		if exec.Command("pg_isready", "-q", "-h", "127.0.0.1").Run() != nil {
			ctl("start")
		}
	})
	checkOutage(t, c, dbURL, "restart", func() { ctl("stop") }, func() { ctl("start") }, 2*time.Second)
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
