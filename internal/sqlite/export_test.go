package sqlite

// SetSnapshotTaken makes scanKeyParts call f once its parts have their
// snapshot, until the returned function is called.
func SetSnapshotTaken(f func()) (reset func()) {
	snapshotTaken = f
	return func() { snapshotTaken = nil }
}

// SetPartSnapshot makes scanKeyParts call f(i) once part i has its
// snapshot, while the write lock is held, until the returned function is
// called.
func SetPartSnapshot(f func(part int)) (reset func()) {
	partSnapshot = f
	return func() { partSnapshot = nil }
}

// OpenRaw opens a rawConn on path and closes it, for a test of its errors.
func OpenRaw(path string) error {
	c, err := openRaw(path)
	if err == nil {
		c.Close()
	}
	return err
}

// MapError is mapError.
var MapError = mapError

// RowidSpanSQL is rowidSpanSQL.
const RowidSpanSQL = rowidSpanSQL
