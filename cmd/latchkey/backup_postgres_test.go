package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pgTool returns the path of a PostgreSQL client program (pg_dump,
// pg_restore), failing under CI when it is missing and skipping otherwise.
func pgTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required (Debian package postgresql-client): %v", name, err)
		}
		t.Skipf("%s not found (Debian package postgresql-client)", name)
	}
	return p
}

// TestPostgresDumpRestore follows the PostgreSQL procedure of
// docs/operations.md ("Backup and restore"): pg_dump of a database that a
// replica is serving, pg_restore --no-owner into a new database, and
// replicas started on it. The restored replicas verify the same keys with
// the same decisions, accept the same operator key, and still follow each
// other's changes through the restored triggers' LISTEN/NOTIFY (the resync
// is set to an hour, so nothing else could carry the change).
func TestPostgresDumpRestore(t *testing.T) {
	pgDump, pgRestore := pgTool(t, "pg_dump"), pgTool(t, "pg_restore")
	src := newPGDatabase(t)
	c := startCluster(t, src, 1)
	r := c.replicas[0]
	activeID, active := c.newKey(r, "billing", map[string]any{"allowed_ips": []string{"192.0.2.0/24"}})
	inactiveID, inactive := c.newKey(r, "shipping", nil)
	c.must(r, "PATCH", "/v1/access-keys/"+inactiveID, map[string]string{"status": "Inactive"}, 200)

	var serverVersion string
	if err := pgConnect(t, src).QueryRow(t.Context(), "SHOW server_version").Scan(&serverVersion); err != nil {
		t.Fatal(err)
	}
	ver, _ := exec.Command(pgDump, "--version").Output()
	t.Logf("pg_dump: %s; server: PostgreSQL %s", strings.TrimSpace(string(ver)), serverVersion)

	dump := filepath.Join(t.TempDir(), "latchkey.dump")
	if out, err := exec.Command(pgDump, "--format=custom", "--file="+dump, src).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump while a replica serves: %v\n%s", err, out)
	}
	dst := newPGDatabase(t)
	if out, err := exec.Command(pgRestore, "--no-owner", "--exit-on-error", "--dbname="+dst, dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}

	restored := &cluster{t: t, dbURL: dst, home: c.home, admin: c.admin, http: newHTTPClient(8), args: []string{"--resync-interval", "1h"}}
	restored.start()
	restored.start()
	for _, rr := range restored.replicas {
		restored.waitReady(rr, 30*time.Second)
		if strings.Contains(rr.stdout.String(), "First start") {
			t.Fatal("a replica on the restored database bootstrapped again")
		}
	}
	a, b := restored.replicas[0], restored.replicas[1]
	for _, tt := range []struct {
		name, key, ip, want string
	}{
		{"active key, allowed address", active, "192.0.2.7", "VALID"},
		{"active key, other address", active, "198.51.100.7", "IP_NOT_ALLOWED"},
		{"inactive key", inactive, "192.0.2.7", "INACTIVE"},
	} {
		got := restored.must(b, "POST", "/v1/verify", map[string]string{"key": tt.key, "ip": tt.ip}, 200)
		if got["code"] != tt.want {
			t.Errorf("%s: restored replica answers %v, want %s", tt.name, got["code"], tt.want)
		}
	}

	// A change on one restored replica reaches the other by NOTIFY.
	restored.must(a, "PATCH", "/v1/access-keys/"+activeID, map[string]string{"status": "Inactive"}, 200)
	if _, err := waitCode(restored.http, b, active, "INACTIVE", time.Now().Add(10*time.Second)); err != nil {
		t.Errorf("change feed on the restored database: %v", err)
	}
}
