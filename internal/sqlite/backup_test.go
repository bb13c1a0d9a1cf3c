package sqlite_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/storetest"
)

// holdEnv makes the test binary a process that keeps a database open (see
// TestMain), as a running server does.
const holdEnv = "LATCHKEY_TEST_HOLD_DATABASE"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdEnv); path != "" {
		os.Exit(holdDatabase(path))
	}
	os.Exit(m.Run())
}

// holdDatabase opens the store at path, reads from it, says "ready" and
// keeps it open, idle, until its standard input closes.
func holdDatabase(path string) int {
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	if err := s.Ping(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

// startHolder runs the test binary as a process that holds the database
// at path open, and returns its PID and a function that makes it close
// the database and exit.
func startHolder(t *testing.T, path string) (pid int, stop func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			in.Close()
			if err := cmd.Wait(); err != nil {
				t.Errorf("holder process: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("holder process did not open %s (said %q)", path, line)
	}
	return cmd.Process.Pid, stop
}

func seeded(t *testing.T, path string, keys int) []string {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return storetest.SeedKeys(t, s, keys)
}

func keyIDs(t *testing.T, path string) []string {
	t.Helper()
	s := open(t, path)
	var ids []string
	err := s.ScanAccessKeys(t.Context(), func(k *latchkey.AccessKey) error {
		ids = append(ids, k.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	slices.Sort(ids)
	return ids
}

func TestBackupAndRestore(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "data", "latchkey.db")
	// Another process keeps the database open, as the server does, so
	// that the seed stays in the WAL: a copy of the file alone would miss
	// it.
	_, stop := startHolder(t, db)
	want := seeded(t, db, 20)
	slices.Sort(want)
	if fi, err := os.Stat(db + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("expected the seed in the WAL: %v", err)
	}

	dst := filepath.Join(dir, "backups", "latchkey.backup.db")
	if err := os.Mkdir(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	snap, err := sqlite.Backup(t.Context(), db, dst)
	if err != nil {
		t.Fatalf("Backup while another process has the database open: %v", err)
	}
	if snap.Path != dst || snap.AccessKeys != 20 || snap.SchemaVersion == 0 || snap.Bytes == 0 {
		t.Errorf("Backup = %+v", snap)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v, mode %v; want mode 0600 (it holds webhook secrets)", err, fi.Mode())
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "backups", "*"))
	if len(leftovers) != 1 {
		t.Errorf("files beside the backup: %v, want only the backup", leftovers)
	}
	stop()

	fresh := filepath.Join(dir, "elsewhere", "latchkey.db")
	r, err := sqlite.Restore(t.Context(), dst, fresh, time.Now())
	if err != nil {
		t.Fatalf("Restore to a new path: %v", err)
	}
	if r.Kept != "" || r.AccessKeys != 20 || r.Path != fresh {
		t.Errorf("Restore = %+v", r)
	}
	if got := keyIDs(t, fresh); !slices.Equal(got, want) {
		t.Errorf("restored keys differ:\n got %v\nwant %v", got, want)
	}

	// Restoring over a database keeps that database, WAL included.
	other := filepath.Join(dir, "other.db")
	otherKeys := seeded(t, other, 4)
	slices.Sort(otherKeys)
	snapOther, err := sqlite.Backup(t.Context(), other, other+".backup")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	r, err = sqlite.Restore(t.Context(), snapOther.Path, db, now)
	if err != nil {
		t.Fatalf("Restore over a database: %v", err)
	}
	if wantKept := db + ".before-restore-20260506T070809Z"; r.Kept != wantKept {
		t.Errorf("Kept = %q, want %q", r.Kept, wantKept)
	}
	if got := keyIDs(t, db); !slices.Equal(got, otherKeys) {
		t.Errorf("after restore: keys %v, want %v", got, otherKeys)
	}
	if got := keyIDs(t, r.Kept); !slices.Equal(got, want) {
		t.Errorf("the replaced database, kept: keys %v, want %v", got, want)
	}
}

func TestRestoreRefusesOpenDatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "latchkey.db")
	want := seeded(t, db, 6)
	slices.Sort(want)
	backup := filepath.Join(dir, "backup.db")
	other := filepath.Join(dir, "other.db")
	seeded(t, other, 2)
	if _, err := sqlite.Backup(t.Context(), other, backup); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}

	pid, stop := startHolder(t, db)
	_, err = sqlite.Restore(t.Context(), backup, db, time.Now())
	var inUse *sqlite.InUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("Restore over a database another process has open: %v, want *InUseError", err)
	}
	if inUse.PID != pid || inUse.Path != db {
		t.Errorf("InUseError = %+v, want PID %d and path %s", inUse, pid, db)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(pid)) {
		t.Errorf("message %q does not name process %d", err, pid)
	}
	if after, _ := os.ReadFile(db); string(after) != string(before) {
		t.Error("the refused restore changed the database file")
	}
	if m, _ := filepath.Glob(db + ".before-restore-*"); len(m) > 0 {
		t.Errorf("the refused restore moved files: %v", m)
	}
	stop()

	if _, err := sqlite.Restore(t.Context(), backup, db, time.Now()); err != nil {
		t.Fatalf("Restore once the process has closed the database: %v", err)
	}
	if got := keyIDs(t, db); len(got) != 2 {
		t.Errorf("after restore: %d keys, want the backup's 2", len(got))
	}
}

func TestBackupErrors(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "latchkey.db")
	seeded(t, db, 2)
	existing := filepath.Join(dir, "existing")
	if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	notLatchkey := filepath.Join(dir, "plain.db")
	writeFile(t, notLatchkey, "not a database at all")

	tests := []struct {
		name    string
		db, dst string
		want    string
		is      error
	}{
		{"destination exists", db, existing, "existing", fs.ErrExist},
		{"no database", filepath.Join(dir, "missing.db"), filepath.Join(dir, "b1"), "missing.db", fs.ErrNotExist},
		{"not a database", notLatchkey, filepath.Join(dir, "b2"), "plain.db", nil},
		{"destination directory missing", db, filepath.Join(dir, "nodir", "b3"), "nodir", fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sqlite.Backup(t.Context(), tt.db, tt.dst)
			if err == nil {
				t.Fatal("Backup succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Error("Backup overwrote an existing file")
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("Backup created the database it was to copy")
	}
}

func TestRestoreRefusesBadBackup(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "latchkey.db")
	seeded(t, db, 3)
	good := filepath.Join(dir, "good.db")
	if _, err := sqlite.Backup(t.Context(), db, good); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// Damage every page after the first two (the schema stays readable)
	// so that the b-trees no longer add up.
	damaged := slices.Clone(raw)
	for i := 2 * 4096; i < len(damaged); i += 97 {
		damaged[i] ^= 0x5a
	}
	newer := filepath.Join(dir, "newer.db")
	copyTo(t, good, newer)
	s := open(t, newer)
	if _, err := s.Write.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()

	tests := []struct {
		name, file string
		content    []byte
		want       string
	}{
		{"missing", filepath.Join(dir, "missing.db"), nil, "missing.db"},
		{"not a database", filepath.Join(dir, "text.db"), []byte("hello"), "not a latchkey database"},
		{"damaged", filepath.Join(dir, "damaged.db"), damaged, "malformed"},
		{"newer schema", newer, nil, "newer"},
		{"the database itself", db, nil, "the database itself"},
	}
	before, _ := os.ReadFile(db)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.content != nil {
				writeFile(t, tt.file, string(tt.content))
			}
			_, err := sqlite.Restore(t.Context(), tt.file, db, time.Now())
			if err == nil {
				t.Fatal("Restore succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if after, _ := os.ReadFile(db); string(after) != string(before) {
				t.Error("the refused restore changed the database file")
			}
		})
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".latchkey.db.tmp-*")); len(m) > 0 {
		t.Errorf("temporary files left behind: %v", m)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyTo(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dst, string(b))
}
