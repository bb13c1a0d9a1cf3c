package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestVerifyThroughputPostgresVsSQLite runs one replica on SQLite and one
// on PostgreSQL and loads them in turn, from a Go client in this process,
// with verifications of a known key: the cache-hit path, the same code on
// both stores, which never touches the database. It reports calls per
// second for each, and fails if PostgreSQL saw more than one transaction
// per hundred verifications beyond its background rate measured idle
// (the usage flush, the watcher), which would mean the hot path reached
// the database. The rates themselves are not asserted: on a shared
// machine they vary too much.
//
// In CI the servers are race-detector builds and the rounds are short.
// LATCHKEY_BENCH=1 builds a normal binary and runs longer rounds, for
// docs/benchmarks.md.
func TestVerifyThroughputPostgresVsSQLite(t *testing.T) {
	rounds, round, workers := 3, time.Second, 16
	if os.Getenv("LATCHKEY_BENCH") == "1" {
		rounds, round = 5, 4*time.Second
		useBinary(t, benchBinary(t))
	}
	dbURL := newPGDatabase(t)
	sqliteURL := "sqlite:" + filepath.Join(t.TempDir(), "lk.db")
	type target struct {
		name   string
		c      *cluster
		secret string
		rates  map[string][]float64 // per endpoint
	}
	var targets []*target
	for _, tc := range []struct{ name, url string }{{"SQLite", sqliteURL}, {"PostgreSQL", dbURL}} {
		c := startCluster(t, tc.url, 1)
		_, secret := c.newKey(c.replicas[0], "bench", nil)
		targets = append(targets, &target{name: tc.name, c: c, secret: secret, rates: map[string][]float64{}})
	}
	hc := newHTTPClient(workers)
	load := func(tg *target, endpoint string) float64 {
		r := tg.c.replicas[0]
		var n atomic.Int64
		stop := time.Now().Add(round)
		start := time.Now()
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for time.Now().Before(stop) {
					var code string
					var err error
					if endpoint == "GET /v1/authorize" {
						code, err = authorize(hc, r, tg.secret)
					} else {
						var st int
						var out map[string]any
						st, out, err = callHTTP(hc, r.endpoint, "POST", "/v1/verify", tg.c.admin, map[string]string{"key": tg.secret})
						code, _ = out["code"].(string)
						if err == nil && st != 200 {
							err = fmt.Errorf("status %d", st)
						}
					}
					if err != nil || code != "VALID" {
						t.Errorf("%s on %s: %s %v", endpoint, tg.name, code, err)
						return
					}
					n.Add(1)
				}
			})
		}
		wg.Wait()
		return float64(n.Load()) / time.Since(start).Seconds()
	}
	db := pgConnect(t, dbURL)
	transactions := func() int64 {
		t.Helper()
		var n int64
		if err := db.QueryRow(t.Context(), `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(t.Context(), `SELECT pg_stat_clear_snapshot()`); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The replica's own background transactions (usage flush, watch,
	// dispatcher) come at a rate per second, whatever the load: measure
	// it idle, so that a loaded machine, which makes fewer verifications
	// in the same time, is not taken for a hot path that reaches the
	// database.
	idle := 2 * time.Second
	txIdle := transactions()
	time.Sleep(idle)
	idleRate := float64(transactions()-txIdle) / idle.Seconds()
	tx0, loadStart := transactions(), time.Now()
	endpoints := []string{"GET /v1/authorize", "POST /v1/verify"}
	for _, ep := range endpoints {
		for range rounds {
			for _, tg := range targets { // alternating, so both see the same machine
				tg.rates[ep] = append(tg.rates[ep], load(tg, ep))
			}
		}
	}
	if t.Failed() {
		return
	}
	txs, elapsed := transactions()-tx0, time.Since(loadStart).Seconds()
	var calls float64
	for _, ep := range endpoints {
		for _, r := range targets[1].rates[ep] {
			calls += r * round.Seconds()
		}
	}
	// Allowed: the idle rate, plus a usage flush a second (the key is in
	// use now), plus one transaction per hundred verifications. A hot path
	// that reached the database would add one per verification.
	background := (idleRate + 1) * elapsed
	t.Logf("PostgreSQL: %d transactions (pg_stat_database) in %.1f s with about %.0f verifications; idle rate %.1f/s",
		txs, elapsed, calls, idleRate)
	if float64(txs)-background > calls/100 {
		t.Errorf("PostgreSQL saw %d transactions in %.1f s (%.0f expected in the background) for about %.0f verifications: does the hot path reach the database?",
			txs, elapsed, background, calls)
	}
	median := func(xs []float64) float64 {
		s := slices.Clone(xs)
		slices.Sort(s)
		return s[len(s)/2]
	}
	for _, ep := range endpoints {
		lite, pg := median(targets[0].rates[ep]), median(targets[1].rates[ep])
		t.Logf("%-17s  SQLite %7.0f/s  PostgreSQL %7.0f/s  (PostgreSQL/SQLite %.2f; medians of %d rounds of %v, %d concurrent clients; rounds: %.0f vs %.0f)",
			ep, lite, pg, pg/lite, rounds, round, workers, targets[0].rates[ep], targets[1].rates[ep])
	}
}

var noRace struct {
	once sync.Once
	path string
	err  error
}

// benchBinary builds latchkey without the race detector, once per run,
// next to the race build that TestMain made.
func benchBinary(t *testing.T) string {
	t.Helper()
	noRace.once.Do(func() {
		noRace.path = filepath.Join(filepath.Dir(binPath), "latchkey-norace")
		if out, err := exec.Command("go", "build", "-o", noRace.path, ".").CombinedOutput(); err != nil {
			noRace.err = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if noRace.err != nil {
		t.Fatalf("building latchkey without -race: %v", noRace.err)
	}
	return noRace.path
}

// useBinary makes startServer run bin until the test ends. The tests of
// this package do not run in parallel, so swapping the global is safe.
func useBinary(t *testing.T, bin string) {
	old := binPath
	binPath = bin
	t.Cleanup(func() { binPath = old })
}
