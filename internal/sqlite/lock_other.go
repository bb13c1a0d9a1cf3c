//go:build !unix

package sqlite

import "errors"

// lockDatabase is implemented with fcntl locks on unix only: SQLite's
// Windows VFS locks with LockFileEx, and restore has not been tried there.
func lockDatabase(string) (func(), error) {
	return nil, errors.New("restore is supported on Linux and macOS only; on this system stop latchkey and replace the database file by hand (docs/operations.md)")
}

// syncDir does nothing: directories cannot be synced here.
func syncDir(string) error { return nil }
