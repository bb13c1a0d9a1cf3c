package main

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/credfile"
)

// write is one management write of the load: an application created, or
// a key created in the application the writer created just before.
type write struct {
	app, secret string // secret is set for a key
	acked       time.Time
}

// loadWriter makes management writes at a steady pace until stop closes,
// alternating an application and a key in it. It records each write when
// its 201 arrives.
func loadWriter(c *client, prefix string, every time.Duration, stop <-chan struct{}) ([]write, error) {
	hc := newHTTPClient(1)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var done []write
	for n := 0; ; n++ {
		select {
		case <-stop:
			return done, nil
		case <-tick.C:
		}
		w := write{app: fmt.Sprintf("%s-%05d", prefix, n-n%2)}
		path, body := "/v1/applications", map[string]any{"name": w.app}
		if n%2 == 1 {
			path, body = "/v1/applications/"+w.app+"/access-keys", map[string]any{}
		}
		code, out, err := callHTTP(hc, c.endpoint, "POST", path, c.auth, body)
		if err != nil || code != 201 {
			return done, fmt.Errorf("write %d of %s: status %d, %v: %v", n, prefix, code, out, err)
		}
		w.acked = time.Now()
		if n%2 == 1 {
			w.secret, _ = out["secret_access_key"].(string)
		}
		done = append(done, w)
	}
}

// runLatchkey runs the latchkey binary bin with args and returns its
// combined output and exit code.
func runLatchkey(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), goraceEnv())
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// integrityCheck runs SQLite's integrity check on the database file at
// path, read-only.
func integrityCheck(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity check of %s: %q, %v", path, res, err)
	}
}

// TestBackupUnderLoad takes a backup with `latchkey backup` while eight
// clients make 200 management writes a second, then restores it as an
// operator would: restore is refused while the server runs, and accepted
// once it is stopped. The backup and the restored database pass SQLite's
// integrity check; every write acknowledged before the backup began is in
// the restored database, and each writer's writes that are there are a
// prefix of what it wrote (a snapshot, not a torn copy); the restored
// server verifies every key those writes created.
func TestBackupUnderLoad(t *testing.T) {
	bin := plainBinary(t)
	// Usage is flushed once a minute rather than every second: each flush
	// checkpoints the WAL into the database file, and without them the
	// writes stay in the WAL, where a backup that copied the file alone
	// would miss them (this test then fails).
	srv := startBinary(t, bin, t.TempDir(), "--usage-flush-interval", "1m")
	creds, err := credfile.Read(filepath.Join(srv.home, ".latchkey", "credentials"))
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, endpoint: srv.endpoint, auth: "Bearer " + creds.Profile("default")[credfile.KeySecretAccessKey]}
	db := filepath.Join(srv.home, ".local", "share", "latchkey", "latchkey.db")
	backup := filepath.Join(t.TempDir(), "latchkey-backup.db")

	const writers, perWriter = 8, 25 // writes a second each: 200 in all
	stop := make(chan struct{})
	results := make([][]write, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			results[i], errs[i] = loadWriter(c, fmt.Sprintf("w%d", i), time.Second/perWriter, stop)
		})
	}
	loadStart := time.Now()
	time.Sleep(2 * time.Second) // the load reaches its pace
	began := time.Now()
	out, code := runLatchkey(t, bin, "backup", "--database-url", "sqlite:"+db, "--to", backup)
	ended := time.Now()
	time.Sleep(time.Second) // writes after the backup, which it must not hold
	close(stop)
	wg.Wait()
	loadEnd := time.Now()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if code != 0 || !strings.Contains(out, "integrity check ok") {
		t.Fatalf("latchkey backup (exit %d):\n%s", code, out)
	}

	var total, before, during int
	for _, ws := range results {
		for _, w := range ws {
			total++
			switch {
			case w.acked.Before(began):
				before++
			case w.acked.Before(ended):
				during++
			}
		}
	}
	rate := float64(total) / loadEnd.Sub(loadStart).Seconds()
	duringRate := float64(during) / ended.Sub(began).Seconds()
	t.Logf("backup under load: %.0f writes/s overall, %.0f writes/s while the backup ran (%d writes in %s); %d writes acknowledged before it began",
		rate, duringRate, during, ended.Sub(began).Round(time.Millisecond), before)
	if during == 0 {
		t.Fatal("no write was acknowledged while the backup ran: the backup was not taken under load")
	}
	// The writers are paced at 200 a second. Among the other packages'
	// tests (go test ./... on two cores) the server may not keep that up,
	// and the checks below hold at any rate; CI also runs this test alone
	// with LATCHKEY_TEST_BACKUP_LOAD=strict, and then a load under half
	// the pace fails it.
	if rate < writers*perWriter/2 && os.Getenv("LATCHKEY_TEST_BACKUP_LOAD") == "strict" {
		t.Errorf("the load reached %.0f writes/s, want about %d", rate, writers*perWriter)
	}
	integrityCheck(t, backup)

	// The server is running: restore must refuse, and change nothing.
	out, code = runLatchkey(t, bin, "restore", "--database-url", "sqlite:"+db, "--from", backup)
	if code != 1 || !strings.Contains(out, fmt.Sprintf("process %d", srv.cmd.Process.Pid)) || !strings.Contains(out, "nothing was changed") {
		t.Fatalf("restore while the server runs (exit %d), want a refusal naming process %d:\n%s", code, srv.cmd.Process.Pid, out)
	}
	newest := ""
	for _, w := range results[0] {
		if w.secret != "" {
			newest = w.secret
		}
	}
	if v := c.do("POST", "/v1/verify", map[string]string{"key": newest}, 200); v["code"] != "VALID" {
		t.Errorf("after the refused restore, the running server's newest key: %v", v)
	}

	srv.stop()
	out, code = runLatchkey(t, bin, "restore", "--database-url", "sqlite:"+db, "--from", backup)
	if code != 0 || !strings.Contains(out, "kept as "+db+".before-restore-") {
		t.Fatalf("restore with the server stopped (exit %d):\n%s", code, out)
	}
	integrityCheck(t, db)

	srv2 := startBinary(t, bin, srv.home)
	if strings.Contains(srv2.stdout.String(), "First start") {
		t.Fatal("the restored server bootstrapped again: the operator key was not restored")
	}
	c.endpoint = srv2.endpoint
	hc := newHTTPClient(1)
	verified := 0
	for i, ws := range results {
		present := make([]bool, len(ws))
		for j, w := range ws {
			if w.secret == "" {
				code, _, err := callHTTP(hc, c.endpoint, "GET", "/v1/applications/"+w.app, c.auth, nil)
				if err != nil || (code != 200 && code != 404) {
					t.Fatalf("GET application %s: %d %v", w.app, code, err)
				}
				present[j] = code == 200
				continue
			}
			v := c.do("POST", "/v1/verify", map[string]string{"key": w.secret}, 200)
			switch v["code"] {
			case "VALID":
				present[j] = true
				verified++
			case "NOT_FOUND":
			default:
				t.Fatalf("restored server, key of %s: %v", w.app, v)
			}
		}
		for j, w := range ws {
			if w.acked.Before(began) && !present[j] {
				t.Errorf("writer %d: write %d (%s), acknowledged %s before the backup began, is not in the restored database",
					i, j, w.app, began.Sub(w.acked).Round(time.Millisecond))
			}
			if j > 0 && present[j] && !present[j-1] {
				t.Errorf("writer %d: write %d is restored but write %d is not: not a snapshot", i, j, j-1)
			}
			if w.acked.After(ended) && present[j] {
				t.Errorf("writer %d: write %d, acknowledged after the backup ended, is in it", i, j)
			}
		}
	}
	t.Logf("backup under load: the restored server verified %d keys; every write acknowledged before the backup began was restored", verified)
	srv2.stop()
}

func TestBackupRestoreFlagErrors(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "latchkey.db")
	if out, code := runLatchkey(t, binPath, "migrate", "--database-url", "sqlite:"+db); code != 0 {
		t.Fatalf("migrate (exit %d): %s", code, out)
	}
	existing := filepath.Join(dir, "existing.db")
	junk := filepath.Join(dir, "junk.db")
	for _, f := range []string{existing, junk} {
		if err := os.WriteFile(f, []byte("not a database"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	url := "sqlite:" + db
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"backup without --to", []string{"backup", "--database-url", url}, 2, "--to is required"},
		{"backup to an existing file", []string{"backup", "--database-url", url, "--to", existing}, 2, "--to " + existing + ": the file exists"},
		{"backup of no database", []string{"backup", "--database-url", "sqlite:" + filepath.Join(dir, "none.db"), "--to", filepath.Join(dir, "b.db")}, 2, "--database-url"},
		{"backup of PostgreSQL", []string{"backup", "--database-url", "postgres://db/latchkey", "--to", filepath.Join(dir, "b.db")}, 2, "use pg_dump"},
		{"backup of another database", []string{"backup", "--database-url", "mysql://db/latchkey", "--to", filepath.Join(dir, "b.db")}, 2, "--database-url"},
		{"restore without --from", []string{"restore", "--database-url", url}, 2, "--from is required"},
		{"restore from no file", []string{"restore", "--database-url", url, "--from", filepath.Join(dir, "none.db")}, 2, "--from"},
		{"restore of PostgreSQL", []string{"restore", "--database-url", "postgres://db/latchkey", "--from", junk}, 2, "use pg_restore"},
		{"restore from a file that is no backup", []string{"restore", "--database-url", url, "--from", junk}, 1, "nothing was changed"},
		{"restore with an argument", []string{"restore", "--database-url", url, junk}, 2, "give the file with --from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runLatchkey(t, binPath, tt.args...)
			if code != tt.wantCode || !strings.Contains(out, tt.want) {
				t.Errorf("latchkey %v: exit %d, output %q; want exit %d and %q", tt.args, code, out, tt.wantCode, tt.want)
			}
			if strings.Contains(out, "panic") {
				t.Errorf("panic: %s", out)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "b.db")); err == nil {
		t.Error("a refused backup wrote its file")
	}
}
