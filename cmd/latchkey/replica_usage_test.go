package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestReplicasUsageMerge verifies one key through three replicas and
// checks that the stored use count is the total of all three and that the
// stored last use is the newest, whichever replica flushes last.
func TestReplicasUsageMerge(t *testing.T) {
	dbURL := newPGDatabase(t)
	c := startCluster(t, dbURL, 3)
	db := pgConnect(t, dbURL)
	id, secret := c.newKey(c.replicas[0], "merge", nil)
	for _, r := range c.replicas {
		if _, err := waitCode(c.http, r, secret, "VALID", time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	// waitCode used the key too: count from what is stored once those
	// uses are flushed.
	var total int64
	waitUses := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			var n int64
			if err := db.QueryRow(t.Context(), "SELECT COALESCE((SELECT use_count FROM key_usage WHERE access_key_id = $1), 0)", id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n > want {
				t.Fatalf("use_count %d, more than the %d uses made", n, want)
			}
			if n == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("use_count %d after 5s, want %d", n, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(1500 * time.Millisecond) // longer than the flush interval
	if err := db.QueryRow(t.Context(), "SELECT COALESCE((SELECT use_count FROM key_usage WHERE access_key_id = $1), 0)", id).Scan(&total); err != nil {
		t.Fatal(err)
	}

	verify := func(r *server, ip, ua string) {
		t.Helper()
		out := c.must(r, "POST", "/v1/verify", map[string]string{"key": secret, "ip": ip, "user_agent": ua}, 200)
		if out["code"] != "VALID" {
			t.Fatalf("verify on %s: %v", r.endpoint, out)
		}
		total++
	}
	// Many uses on every replica, concurrently.
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, r := range c.replicas {
		n := 30 + 20*i
		wg.Go(func() {
			for range n {
				st, out, err := c.call(r, "POST", "/v1/verify", c.admin, map[string]string{"key": secret, "ip": "192.0.2.1"})
				if err != nil || st != 200 || out["code"] != "VALID" {
					t.Errorf("verify on %s: %d %v %v", r.endpoint, st, out, err)
					return
				}
				mu.Lock()
				total++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	waitUses(total)

	// Newest wins: in each round an older use on one replica and a newer
	// one on another; the replicas flush on their own clocks, so across
	// the rounds both orders of arrival happen.
	pairs := [][2]int{{0, 2}, {2, 1}, {1, 0}, {0, 1}}
	for i, p := range pairs {
		older, newer := c.replicas[p[0]], c.replicas[p[1]]
		verify(older, fmt.Sprintf("198.51.100.%d", i+1), "older")
		time.Sleep(5 * time.Millisecond)
		newIP := fmt.Sprintf("203.0.113.%d", i+1)
		verify(newer, newIP, fmt.Sprintf("newer/%d", i))
		waitUses(total)
		var ip, ua string
		if err := db.QueryRow(t.Context(), "SELECT last_used_ip, last_used_ua FROM key_usage WHERE access_key_id = $1", id).Scan(&ip, &ua); err != nil {
			t.Fatal(err)
		}
		if ip != newIP || ua != fmt.Sprintf("newer/%d", i) {
			t.Errorf("round %d: last used from %s (%s), want the newer use from %s", i, ip, ua, newIP)
		}
	}
	// Every replica answers the same.
	last := fmt.Sprintf("203.0.113.%d", len(pairs))
	for _, r := range c.replicas {
		lu := c.must(r, "GET", "/v1/access-keys/"+id+"/last-used", nil, 200)
		used, _ := lu["last_used"].(map[string]any)
		if lu["use_count"] != float64(total) || used["ip"] != last {
			t.Errorf("%s: use_count %v, last_used %v; want %d from %s", r.endpoint, lu["use_count"], used, total, last)
		}
	}
	t.Logf("%d uses through 3 replicas: use_count %d, last used from the newest", total, total)
}

// TestReplicasUsageWritesBounded measures the write transactions that
// usage causes, at a low and at the highest verification rate three
// replicas sustain here: about one per replica per flush interval either
// way.
func TestReplicasUsageWritesBounded(t *testing.T) {
	dbURL := newPGDatabase(t)
	c := startCluster(t, dbURL, 3)
	db := pgConnect(t, dbURL)
	_, secret := c.newKey(c.replicas[0], "writes", nil)
	for _, r := range c.replicas {
		if _, err := waitCode(c.http, r, secret, "VALID", time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	// Count the transactions that write usage counters: a row per
	// updated key, with the writing transaction's ID.
	for _, q := range []string{
		`CREATE TABLE usage_writes (at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(), xid BIGINT NOT NULL DEFAULT txid_current())`,
		`CREATE FUNCTION count_usage_write() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN INSERT INTO usage_writes DEFAULT VALUES; RETURN NULL; END $$`,
		`CREATE TRIGGER count_usage_write AFTER UPDATE ON key_usage FOR EACH ROW
			WHEN (OLD.use_count IS DISTINCT FROM NEW.use_count) EXECUTE FUNCTION count_usage_write()`,
		`CREATE TRIGGER count_usage_insert AFTER INSERT ON key_usage FOR EACH ROW EXECUTE FUNCTION count_usage_write()`,
	} {
		if _, err := db.Exec(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}

	const window = 3 * time.Second
	type phase struct {
		name    string
		workers int
		pause   time.Duration // between calls, per worker
	}
	for _, ph := range []phase{{"low", 3, 100 * time.Millisecond}, {"high", 12, 0}} {
		var calls atomic.Int64
		from, commits0 := dbClock(t, db)
		stop := time.Now().Add(window)
		var wg sync.WaitGroup
		for w := range ph.workers {
			r := c.replicas[w%len(c.replicas)]
			wg.Go(func() {
				for time.Now().Before(stop) {
					if code, err := authorize(c.http, r, secret); err != nil || code != "VALID" {
						t.Errorf("authorize on %s: %s %v", r.endpoint, code, err)
						return
					}
					calls.Add(1)
					time.Sleep(ph.pause)
				}
			})
		}
		wg.Wait()
		to, commits1 := dbClock(t, db)
		var writes int
		if err := db.QueryRow(t.Context(), `SELECT count(DISTINCT xid) FROM usage_writes WHERE at >= $1 AND at < $2`, from, to).Scan(&writes); err != nil {
			t.Fatal(err)
		}
		secs := to.Sub(from).Seconds()
		t.Logf("%-4s rate: %6.0f verifications/s through 3 replicas; %4.1f usage write transactions/s; %5.1f commits/s in the database (all transactions, from pg_stat_database)",
			ph.name, float64(calls.Load())/secs, float64(writes)/secs, float64(commits1-commits0)/secs)
		// One flush per replica per second (the default interval), and
		// one more each for a flush that straddles the window's edges.
		if limit := 3 * (int(secs) + 2); writes > limit {
			t.Errorf("%s rate: %d usage write transactions in %.1fs, want at most %d", ph.name, writes, secs, limit)
		}
		if calls.Load() == 0 {
			t.Fatalf("%s rate: no verification made", ph.name)
		}
	}
}

// dbClock returns the database's clock and its committed transactions so
// far. pg_stat_database lags (backends report at most once a second), so
// commit rates from it are approximate.
func dbClock(t *testing.T, db *pgx.Conn) (time.Time, int64) {
	t.Helper()
	var now time.Time
	var commits int64
	err := db.QueryRow(t.Context(), `SELECT clock_timestamp(), xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&now, &commits)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(t.Context(), `SELECT pg_stat_clear_snapshot()`); err != nil {
		t.Fatal(err)
	}
	return now, commits
}
