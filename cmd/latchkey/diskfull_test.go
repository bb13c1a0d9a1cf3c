package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/credfile"
	"github.com/latchkey/latchkey/internal/pgtest"
)

// mountTmpfs mounts a tmpfs of the given size on a new directory, unmounted
// when the test ends. It needs root (CAP_SYS_ADMIN): the test fails under
// CI without it, and is skipped elsewhere.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mounting a tmpfs (needs root): %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			// still in use by a process the test could not stop: detach
			_ = exec.Command("umount", "-l", dir).Run()
			t.Logf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file in dir until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			break
		}
	}
	// and the last few bytes, in small writes
	for _, err := f.Write(buf[:512]); err == nil; _, err = f.Write(buf[:512]) {
	}
	return path
}

// operatorClient returns a client signed in with the key serve saved in
// home on its first start.
func operatorClient(t *testing.T, srv *server) *client {
	t.Helper()
	f, err := credfile.Read(filepath.Join(srv.home, ".latchkey", "credentials"))
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, endpoint: srv.endpoint, auth: "Bearer " + f.Profile("default")[credfile.KeySecretAccessKey]}
}

// TestDiskFullSQLite: with the database's file system full, writes are
// refused with 503 ServiceUnavailable and a message that says so, reads
// and verification go on, and once space is freed writes succeed again,
// without a restart.
func TestDiskFullSQLite(t *testing.T) {
	mnt := mountTmpfs(t, "4m")
	srv := startServer(t, t.TempDir(), "--database-url", "sqlite:"+filepath.Join(mnt, "lk.db"), "--usage-flush-interval", "50ms")
	c := operatorClient(t, srv)
	c.do("POST", "/v1/applications", map[string]string{"name": "billing"}, 201)
	k := c.do("POST", "/v1/applications/billing/access-keys", map[string]string{}, 201)
	id, secret := k["access_key_id"].(string), k["secret_access_key"].(string)

	filler := fill(t, mnt)
	// Writes until the database needs a page it cannot get. The first few
	// may still fit in space SQLite holds already.
	refused := map[string]any(nil)
	for i := 0; i < 200 && refused == nil; i++ {
		body := map[string]string{"description": strings.Repeat("x", 1000) + string(rune('a'+i%26))}
		st, out := c.try("PATCH", "/v1/access-keys/"+id, body)
		switch st {
		case 200:
		case 503:
			refused = out
		default:
			t.Fatalf("write %d on a full disk: status %d %v, want 200 or 503", i, st, out)
		}
	}
	if refused == nil {
		t.Fatal("200 writes on a full disk all succeeded")
	}
	if e, _ := refused["error"].(map[string]any); e["code"] != "ServiceUnavailable" || !strings.Contains(e["message"].(string), "disk is full") {
		t.Errorf("answer on a full disk: %v, want ServiceUnavailable saying the disk is full", refused)
	}
	for _, path := range []string{"/v1/applications", "/v1/access-keys/" + id, "/v1/audit-events?limit=5"} {
		c.do("GET", path, nil, 200)
	}
	for range 20 {
		if v := c.do("POST", "/v1/verify", map[string]string{"key": secret}, 200); v["code"] != "VALID" {
			t.Fatalf("verification on a full disk: %v", v)
		}
	}
	if st, out := c.try("POST", "/v1/applications", map[string]string{"name": "orders"}); st != 503 {
		t.Errorf("create on a full disk: %d %v", st, out)
	}
	time.Sleep(200 * time.Millisecond) // usage flushes fail meanwhile, and are kept

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c.do("POST", "/v1/applications", map[string]string{"name": "orders"}, 201)
	c.do("PATCH", "/v1/access-keys/"+id, map[string]string{"status": "Inactive"}, 200)
	if v := c.do("POST", "/v1/verify", map[string]string{"key": secret}, 200); v["code"] != "INACTIVE" {
		t.Errorf("after space was freed: %v", v)
	}
	// the usage recorded while the disk was full reached the database
	deadline := time.Now().Add(5 * time.Second)
	for {
		lu := c.do("GET", "/v1/access-keys/"+id+"/last-used", nil, 200)
		if lu["use_count"] == float64(20) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("use_count %v, want 20", lu["use_count"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.stop()
	srv2 := startServer(t, srv.home, "--database-url", "sqlite:"+filepath.Join(mnt, "lk.db"))
	c.endpoint = srv2.endpoint
	if lu := c.do("GET", "/v1/access-keys/"+id+"/last-used", nil, 200); lu["use_count"] != float64(20) {
		t.Errorf("after a restart use_count %v, want 20", lu["use_count"])
	}
	c.do("GET", "/v1/applications/orders", nil, 200)
	srv2.stop()
}

// TestReadOnlyDatabaseSQLite: the database turns read-only under a running
// server: writes are 503 ServiceUnavailable with a message that names the
// cause, verification goes on, and writes succeed again once it is
// writable, without a restart. A server started on a read-only database
// says why and exits.
//
// A file system cannot be remounted read-only while the server holds its
// files open for writing, so the database file, its WAL and their
// directory are made immutable (chattr +i), which on ext4 refuses writes
// through descriptors already open, as a read-only mount does. The -shm
// file is left alone: SQLite maps it into memory, and a store to a mapped
// page the kernel refuses is SIGBUS, which no program survives.
func TestReadOnlyDatabaseSQLite(t *testing.T) {
	// On the temporary directory's file system (ext4 here), not a tmpfs:
	// tmpfs lets writes through descriptors opened before chattr +i.
	mnt := t.TempDir()
	db := filepath.Join(mnt, "lk.db")
	srv := startServer(t, t.TempDir(), "--database-url", "sqlite:"+db)
	c := operatorClient(t, srv)
	c.do("POST", "/v1/applications", map[string]string{"name": "billing"}, 201)
	k := c.do("POST", "/v1/applications/billing/access-keys", map[string]string{}, 201)
	id, secret := k["access_key_id"].(string), k["secret_access_key"].(string)

	immutable(t, true, mnt, db, db+"-wal")
	st, out := c.try("PATCH", "/v1/access-keys/"+id, map[string]string{"status": "Inactive"})
	if e, _ := out["error"].(map[string]any); st != 503 || e["code"] != "ServiceUnavailable" || !strings.Contains(e["message"].(string), "cannot be written") {
		t.Errorf("write to a read-only database: %d %v, want 503 ServiceUnavailable saying it cannot be written", st, out)
	}
	if v := c.do("POST", "/v1/verify", map[string]string{"key": secret}, 200); v["code"] != "VALID" {
		t.Errorf("verification on a read-only database: %v", v)
	}
	c.do("GET", "/v1/access-keys/"+id, nil, 200)

	// a second server cannot start on it, and says why
	cmd := exec.Command(binPath, "serve", "--addr", "127.0.0.1:0", "--database-url", "sqlite:"+filepath.Join(mnt, "new.db"))
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_DATA_HOME=")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "cannot be opened for writing") {
		t.Errorf("serve on a read-only file system: %v\n%s", err, out)
	}

	immutable(t, false, mnt, db, db+"-wal")
	c.do("PATCH", "/v1/access-keys/"+id, map[string]string{"status": "Inactive"}, 200)
	if v := c.do("POST", "/v1/verify", map[string]string{"key": secret}, 200); v["code"] != "INACTIVE" {
		t.Errorf("after the remount: %v", v)
	}
	srv.stop()
}

// immutable sets or clears the immutable attribute of files (chattr +i),
// and clears it when the test ends.
func immutable(t *testing.T, on bool, paths ...string) {
	t.Helper()
	flag := "-i"
	if on {
		flag = "+i"
		t.Cleanup(func() { _ = exec.Command("chattr", append([]string{"-i"}, paths...)...).Run() })
	}
	if out, err := exec.Command("chattr", append([]string{flag}, paths...)...).CombinedOutput(); err != nil {
		t.Fatalf("chattr %s: %v: %s", flag, err, out)
	}
}

// TestReadOnlyDatabasePostgres: the database turns read-only (as a
// promoted-then-demoted primary, or default_transaction_read_only): writes
// are 503, /readyz says not ready, verification goes on, and writes
// succeed again once it is writable.
func TestReadOnlyDatabasePostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	name := url[strings.LastIndex(url, "/")+1:]
	if i := strings.IndexByte(name, '?'); i >= 0 {
		name = name[:i]
	}
	srv := startServer(t, t.TempDir(), "--database-url", url)
	c := operatorClient(t, srv)
	c.do("POST", "/v1/applications", map[string]string{"name": "billing"}, 201)
	k := c.do("POST", "/v1/applications/billing/access-keys", map[string]string{}, 201)
	id, secret := k["access_key_id"].(string), k["secret_access_key"].(string)

	setReadOnly := func(on bool) {
		v := "off"
		if on {
			v = "on"
		}
		pgtest.Exec(t, "ALTER DATABASE "+name+" SET default_transaction_read_only = "+v)
		// existing sessions keep the old default: end them
		pgtest.Exec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)
	}
	setReadOnly(true)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, out := c.try("PATCH", "/v1/access-keys/"+id, map[string]string{"status": "Inactive"})
		if st == 503 {
			if e, _ := out["error"].(map[string]any); e["code"] != "ServiceUnavailable" {
				t.Errorf("write to a read-only database: %v", out)
			}
			break
		}
		if st == 200 || time.Now().After(deadline) {
			t.Fatalf("write to a read-only database: %d %v", st, out)
		}
		time.Sleep(50 * time.Millisecond) // a connection the pool had not yet noticed was ended
	}
	if st, out := c.try("GET", "/readyz", nil); st != 503 {
		t.Errorf("/readyz on a read-only database: %d %v", st, out)
	}
	if v := c.do("POST", "/v1/verify", map[string]string{"key": secret}, 200); v["code"] != "VALID" {
		t.Errorf("verification on a read-only database: %v", v)
	}

	setReadOnly(false)
	deadline = time.Now().Add(10 * time.Second)
	for {
		st, out := c.try("PATCH", "/v1/access-keys/"+id, map[string]string{"status": "Inactive"})
		if st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("write once writable again: %d %v", st, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// ready again once the change feed has reconnected too
	for st, out := c.try("GET", "/readyz", nil); st != 200; st, out = c.try("GET", "/readyz", nil) {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz once writable again: %d %v", st, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := c.do("POST", "/v1/verify", map[string]string{"key": secret}, 200); v["code"] != "INACTIVE" {
		t.Errorf("after the database is writable again: %v", v)
	}
	srv.stop()
}

// try sends a request and returns the status and JSON body, whatever they
// are.
func (c *client) try(method, path string, body any) (int, map[string]any) {
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
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}
