package keyformat

import "unsafe"

// stringBytes views s as a byte slice without copying, so that checking a
// secret does not allocate. The slice must not be modified.
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
