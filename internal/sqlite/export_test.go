package sqlite

// SetSnapshotTaken makes scanKeyParts call f once its parts have their
// snapshot, until the returned function is called.
func SetSnapshotTaken(f func()) (reset func()) {
	snapshotTaken = f
	return func() { snapshotTaken = nil }
}
