//go:build unix

package sqlite

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// The bytes SQLite's unix VFS locks with fcntl (see
// https://sqlite.org/walformat.html and the "lock-byte page" of
// https://sqlite.org/fileformat.html). Every connection that has a WAL
// database open holds a shared lock on the "dead man switch" byte of the
// -shm file for as long as it is open, idle or not; a transaction holds a
// lock in the database file's lock-byte range. Other SQLite versions and
// other programs (the sqlite3 shell) use the same bytes: they are the
// protocol that lets different processes share one database.
const (
	shmDMS      = 128        // 120 + SQLITE_SHM_NLOCK
	pendingByte = 0x40000000 // PENDING_BYTE
	lockBytes   = 512        // PENDING, RESERVED and the 510 SHARED bytes
)

// lockDatabase takes the locks of a connection that has the database at
// dbPath to itself: an exclusive lock on the -shm file's dead man switch
// and on the database file's lock bytes. It fails with *InUseError when
// another process has the database open. unlock empties the -shm file
// (the next connection rebuilds it from the database and WAL) and drops
// the locks.
func lockDatabase(dbPath string) (unlock func(), err error) {
	shm, err := os.OpenFile(dbPath+"-shm", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	files := []*os.File{shm}
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	if err := lockRange(shm, dbPath, shmDMS, 1); err != nil {
		closeAll()
		return nil, err
	}
	db, err := os.OpenFile(dbPath, os.O_RDWR, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		closeAll()
		return nil, err
	default:
		files = append(files, db)
		if err := lockRange(db, dbPath, pendingByte, lockBytes); err != nil {
			closeAll()
			return nil, err
		}
	}
	return func() {
		_ = shm.Truncate(0)
		closeAll() // closing drops this process's fcntl locks on the file
	}, nil
}

// lockRange takes a write lock on [start, start+n) of f without waiting.
// When another process holds a lock there, it returns *InUseError with
// that process's ID.
func lockRange(f *os.File, dbPath string, start, n int64) error {
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: start, Len: n}
	err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk)
	if err == nil {
		return nil
	}
	if !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EACCES) {
		return err
	}
	held := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: start, Len: n}
	pid := 0
	if syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &held) == nil && held.Type != syscall.F_UNLCK {
		pid = int(held.Pid)
	}
	return &InUseError{Path: dbPath, PID: pid}
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
