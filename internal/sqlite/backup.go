package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/sqlstore"
)

// Snapshot describes a latchkey database file: what a backup holds, or what
// a restore put in place.
type Snapshot struct {
	Path          string
	Bytes         int64
	SchemaVersion int
	AccessKeys    int
}

// InUseError reports that another process has the database open, so that
// replacing it would pull the file from under a running server.
type InUseError struct {
	Path string
	PID  int // 0 when the platform does not say
}

func (e *InUseError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = fmt.Sprintf("process %d", e.PID)
	}
	return fmt.Sprintf("the database %s is open in %s (a running latchkey serve?)", e.Path, who)
}

// Backup writes a consistent copy of the database at dbPath to dst while
// other processes keep reading and writing it. The copy is SQLite's VACUUM
// INTO, one read transaction: it holds every transaction committed before
// that transaction began and none committed after, and it waits for no
// writer and blocks none (WAL). It is written to a temporary file beside
// dst, checked with Inspect, synced, and renamed, so dst appears complete
// or not at all.
//
// The database is opened without creating it and without migrating it: a
// backup changes nothing. dst must not exist (fs.ErrExist).
func Backup(ctx context.Context, dbPath, dst string) (Snapshot, error) {
	if _, err := os.Stat(dbPath); err != nil {
		return Snapshot{}, err
	}
	if _, err := os.Lstat(dst); err == nil {
		return Snapshot{}, fmt.Errorf("%s: %w", dst, fs.ErrExist)
	}
	tmp, err := tempPath(dst)
	if err != nil {
		return Snapshot{}, err
	}
	defer os.Remove(tmp)

	db, err := sql.Open("sqlite", fileDSN(dbPath, "mode=rw", "_pragma=busy_timeout(10000)"))
	if err != nil {
		return Snapshot{}, err
	}
	defer db.Close()
	if _, err := schemaVersion(ctx, db); err != nil {
		return Snapshot{}, fmt.Errorf("%s: %w", dbPath, err)
	}
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		return Snapshot{}, fmt.Errorf("copying %s: %w", dbPath, err)
	}
	snap, err := Inspect(ctx, tmp)
	if err != nil {
		return Snapshot{}, fmt.Errorf("checking the copy of %s: %w", dbPath, err)
	}
	if err := syncFile(tmp); err != nil {
		return Snapshot{}, err
	}
	// A link fails where rename would replace a dst made meanwhile.
	if err := os.Link(tmp, dst); err != nil {
		return Snapshot{}, err
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return Snapshot{}, err
	}
	snap.Path = dst
	return snap, nil
}

// Inspect checks that the file at path is a latchkey database that passes
// SQLite's integrity check and whose schema this binary knows, and
// describes it. It opens the file read-only and immutable: it writes
// nothing, not even a -wal or -shm file beside it.
func Inspect(ctx context.Context, path string) (Snapshot, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Snapshot{}, err
	}
	if !fi.Mode().IsRegular() {
		return Snapshot{}, fmt.Errorf("%s is not a regular file", path)
	}
	db, err := sql.Open("sqlite", fileDSN(path, "mode=ro", "immutable=1"))
	if err != nil {
		return Snapshot{}, err
	}
	defer db.Close()
	snap := Snapshot{Path: path, Bytes: fi.Size()}
	if snap.SchemaVersion, err = schemaVersion(ctx, db); err != nil {
		return Snapshot{}, err
	}
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return Snapshot{}, fmt.Errorf("integrity check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return Snapshot{}, err
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return Snapshot{}, fmt.Errorf("integrity check: %w", err)
	}
	if len(problems) > 0 {
		return Snapshot{}, fmt.Errorf("integrity check failed: %s", strings.Join(problems, "; "))
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM access_keys`).Scan(&snap.AccessKeys); err != nil {
		return Snapshot{}, fmt.Errorf("counting access keys: %w", err)
	}
	return snap, nil
}

// Restored is what Restore did.
type Restored struct {
	Snapshot
	// Kept is where the database that was replaced now is (its WAL, if
	// any, beside it as Kept+"-wal"); empty when there was none.
	Kept string
}

// Restore replaces the database at dbPath with the backup at src, after
// checking the backup with Inspect. It refuses (*InUseError) while any
// other process has the database open, and holds SQLite's own locks on it
// while it works, so that no SQLite connection opens it half-replaced. The
// database it replaces is not deleted: it is renamed, with its WAL, to
// dbPath+".before-restore-"+now, which SQLite opens like any database.
//
// The check sees other processes only: a connection that this process
// holds on dbPath is not detected.
func Restore(ctx context.Context, src, dbPath string, now time.Time) (Restored, error) {
	if same, err := sameFile(src, dbPath); err != nil || same {
		if err == nil {
			err = fmt.Errorf("%s is the database itself", src)
		}
		return Restored{}, err
	}
	if _, err := Inspect(ctx, src); err != nil {
		return Restored{}, fmt.Errorf("%s: %w", src, err)
	}
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o700); err != nil {
		return Restored{}, err
	}
	unlock, err := lockDatabase(dbPath)
	if err != nil {
		return Restored{}, err
	}
	defer unlock()

	// What is put in place is a copy, checked again: the backup may sit on
	// another file system, and the copy is what the server will open.
	tmp, err := tempPath(dbPath)
	if err != nil {
		return Restored{}, err
	}
	defer os.Remove(tmp)
	if err := copyFile(src, tmp); err != nil {
		return Restored{}, err
	}
	snap, err := Inspect(ctx, tmp)
	if err != nil {
		return Restored{}, fmt.Errorf("checking the copy of %s: %w", src, err)
	}

	var r Restored
	if _, err := os.Lstat(dbPath); err == nil {
		r.Kept = dbPath + ".before-restore-" + now.UTC().Format("20060102T150405Z")
		if _, err := os.Lstat(r.Kept); err == nil {
			return Restored{}, fmt.Errorf("%s: %w", r.Kept, fs.ErrExist)
		}
		if err := renameWithWAL(dbPath, r.Kept); err != nil {
			return Restored{}, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Restored{}, err
	}
	if err := os.Rename(tmp, dbPath); err != nil {
		if r.Kept != "" {
			// Put the database back, so that a failed restore changes nothing.
			err = errors.Join(err, renameWithWAL(r.Kept, dbPath))
		}
		return Restored{}, err
	}
	if err := syncDir(filepath.Dir(dbPath)); err != nil {
		return Restored{}, err
	}
	snap.Path = dbPath
	r.Snapshot = snap
	return r, nil
}

// renameWithWAL renames a database file and its WAL, if it has one; when
// the WAL cannot be moved it moves the database back.
func renameWithWAL(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return err
	}
	if err := os.Rename(from+"-wal", to+"-wal"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errors.Join(err, os.Rename(to, from))
	}
	return nil
}

// fileDSN is the driver's name for the database file at path with the
// given URI parameters.
func fileDSN(path string, params ...string) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + strings.Join(params, "&")
}

// schemaVersion returns the database's latest applied migration, refusing
// a file that is not a latchkey database or that a newer latchkey wrote.
func schemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var v int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("not a latchkey database (%v)", err)
	}
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return 0, err
	}
	if want := sqlstore.LatestVersion(sub); v > want {
		return 0, fmt.Errorf("schema version %d is newer than this latchkey knows (%d); use a newer latchkey", v, want)
	}
	return v, nil
}

// tempPath names a file that does not exist yet beside path.
func tempPath(path string) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	f.Close()
	// VACUUM INTO refuses to write into an existing non-empty file and
	// accepts an empty one; copyFile truncates. Either way the name is ours.
	return name, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func sameFile(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}
