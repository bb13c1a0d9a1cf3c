package keyformat

import "encoding/binary"

// Checking a secret's 46-character body one byte at a time through
// base62Index costs about 15 ns, a twentieth of a verification
// (SecretShaped), and IndexSecret makes the same check for every '_' of
// the text it masks. base62Body checks eight bytes at a time in a machine
// word instead (SWAR): for a byte b below 0x80, b + (0x80 - lo) sets the
// byte's top bit exactly when b >= lo and never carries into the next
// byte, so two additions bound a range, and the letters are one range
// once the 0x20 bit (upper to lower case) is set. A byte with its top bit
// set is never base62.

const (
	lowBytes = 0x0101010101010101 // 1 in every byte
	topBits  = 0x8080808080808080 // the top bit of every byte
)

// base62Word returns topBits when all eight bytes of x are in the base62
// alphabet (0-9A-Za-z), and otherwise lacks the top bit of each byte that
// is not.
func base62Word(x uint64) uint64 {
	y := x &^ topBits // each byte below 0x80: the additions below cannot carry
	digit := (y + (0x80-'0')*lowBytes) &^ (y + (0x80-'9'-1)*lowBytes)
	f := y | 0x20*lowBytes // A-Z onto a-z; only letters land in a-z
	letter := (f + (0x80-'a')*lowBytes) &^ (f + (0x80-'z'-1)*lowBytes)
	return (digit | letter) &^ x & topBits
}

// base62Body reports whether every byte of body, a secret's random part
// and checksum (bodyLen bytes), is base62: six words, the last overlapping
// the one before it. Written out, the offsets are constants and the loads
// need no bounds checks.
func base62Body(body string) bool {
	b := stringBytes(body)[:bodyLen]
	le := binary.LittleEndian
	ok := base62Word(le.Uint64(b[0:])) & base62Word(le.Uint64(b[8:])) & base62Word(le.Uint64(b[16:])) &
		base62Word(le.Uint64(b[24:])) & base62Word(le.Uint64(b[32:])) & base62Word(le.Uint64(b[bodyLen-8:]))
	return ok == topBits
}

// The six words above cover bodyLen bytes only if 40 < bodyLen <= 48.
const (
	_ uint = bodyLen - 41
	_ uint = 48 - bodyLen
)
