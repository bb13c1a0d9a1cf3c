package verify

import (
	"encoding/binary"
	"hash/maphash"
	"sync/atomic"
	"unsafe"

	"github.com/latchkey/latchkey/keyformat"
)

// The index's storage holds no Go pointer per key, so that the garbage
// collector has next to nothing to mark however many keys are loaded:
//
//   - rec: one fixed-size record per key ID, in chunks that never move,
//     numbered from 1 (0 is "none"). A record's number is stable while its
//     ID is in the index, so its usage counters survive replacement, as
//     the usage cell did.
//   - usage slots: a used key's usage counters (atomics) and last client
//     address, in chunks like the records', made on the key's first use
//     and tied to its record for good (rec.use): a key loaded and never
//     used costs its record only.
//   - arena: the records' strings (ID, application or principal name,
//     account), in byte chunks that are only ever appended to: a string
//     read from them stays valid and unchanged after its key is replaced,
//     deleted or compacted away.
//   - table: per shard, an open-addressing hash table (linear probing,
//     backward-shift deletion, power-of-two size) of uint64 slots, each a
//     32-bit tag of the key's hash and the record number. A shard grows on
//     its own, so a growing index never holds two copies of itself.
//   - rules: a key with restrictions, a rate limit, a quota, metadata, a
//     public key or a certificate binding keeps its *rules in its shard's
//     side slice, referenced from the record by index; a key without
//     them adds no pointer.

// strRef is a string in the index's arena: the chunk (high bits) and the
// position in it of the string's length (a uvarint), which the string's
// bytes follow. 0 is the empty string: chunk 0 is never used.
type strRef uint32

const (
	arenaChunkBits = 20 // 1 MiB chunks
	arenaChunkSize = 1 << arenaChunkBits
	maxArenaChunks = 1 << (32 - arenaChunkBits)
)

// arena holds the index's strings. Written under Index.mu; read by
// anyone holding a strRef published under a shard lock.
type arena struct {
	chunks [maxArenaChunks]atomic.Pointer[byte]
	cur    []byte   // the chunk being filled (len = bytes used)
	curIdx uint32   // its index in chunks
	used   []uint32 // indexes of the chunks in use
	free   []uint32 // indexes of chunks given up by a compaction
	next   uint32   // index of the next chunk never used
	live   int64    // bytes referenced by records (interned names count once; lengths included)
	dead   int64    // bytes no record references any more
}

// put copies s into the arena. A string longer than a chunk gets a chunk
// of its own.
func (a *arena) put(s string) strRef {
	if s == "" {
		return 0
	}
	need := uvarintLen(len(s)) + len(s)
	if len(a.cur)+need > cap(a.cur) || a.cur == nil {
		var idx uint32
		switch n := len(a.free); {
		case n > 0:
			idx = a.free[n-1]
			a.free = a.free[:n-1]
		case a.next < maxArenaChunks:
			a.next = max(a.next, 1) // 0 stays unused: strRef 0 is ""
			idx = a.next
			a.next++
		default:
			// 4 GiB of live strings: far beyond the keys the records
			// can hold (maxRecChunks); refuse loudly rather than
			// corrupt.
			panic("verify: index string arena full")
		}
		a.cur = make([]byte, 0, max(arenaChunkSize, need))
		a.curIdx = idx
		a.chunks[idx].Store(unsafe.SliceData(a.cur[:1]))
		a.used = append(a.used, idx)
	}
	pos := len(a.cur)
	a.cur = binary.AppendUvarint(a.cur, uint64(len(s)))
	a.cur = append(a.cur, s...)
	a.live += int64(need)
	return strRef(a.curIdx<<arenaChunkBits | uint32(pos))
}

func uvarintLen(n int) int {
	l := 1
	for ; n >= 0x80; n >>= 7 {
		l++
	}
	return l
}

// drop notes that no record references r any more.
func (a *arena) drop(r strRef) {
	n := int64(len(a.str(r)))
	if n == 0 {
		return
	}
	n += int64(uvarintLen(int(n)))
	a.live -= n
	a.dead += n
}

// lenByte is a string's length as a record caches it: 255 for 255 and
// longer, whose length only the arena holds.
func lenByte(s string) uint8 { return uint8(min(len(s), 255)) }

// strN returns the string r refers to, whose length byte (lenByte) is n,
// reading the arena's length only for a long string: a lookup that copies
// a record's strings touches none of their bytes.
func (a *arena) strN(r strRef, n uint8) string {
	switch n {
	case 0:
		return ""
	case 255:
		return a.str(r)
	}
	off := r&(arenaChunkSize-1) + 1
	if n >= 0x80 {
		off++ // a two-byte length
	}
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(a.chunks[r>>arenaChunkBits].Load()), off)), n)
}

// str returns the string r refers to, without copying it.
func (a *arena) str(r strRef) string {
	if r == 0 {
		return ""
	}
	p := unsafe.Add(unsafe.Pointer(a.chunks[r>>arenaChunkBits].Load()), r&(arenaChunkSize-1))
	var n uint
	for shift := 0; ; shift += 7 {
		b := *(*byte)(p)
		p = unsafe.Add(p, 1)
		n |= uint(b&0x7f) << shift
		if b < 0x80 {
			break
		}
	}
	return unsafe.String((*byte)(p), n)
}

// rec is the index's record of one key: 80 bytes, what a lookup
// compares and copies and what the index itself needs. What only some
// keys have is elsewhere: a bound key's certificate thumbprint in its
// rules, and the usage counters and last client address in a usage slot
// (usageSlot) made on the key's first use, so that a key loaded and never
// used costs no more than its record. Its plain fields are written under
// Index.mu and the lock of the shard its digest is in, and read under that
// shard's lock.
type rec struct {
	digest  keyformat.Digest
	expires int64 // Unix nanoseconds; 0 = never
	id      strRef
	owner   strRef
	account strRef

	rules uint32 // index in the shard's rules; 0 = none
	// gen changes when the record is deleted, so that usage recorded
	// for a deleted key through an old Entry is dropped.
	gen  atomic.Uint32
	seen uint32 // the Sync pass that last read the key (under Index.mu)
	// use is the number of the record's usage slot, 0 until the key is
	// first used. Once set it stays: a deleted key's slot is zeroed and
	// serves the next key given the record, so that a slot only ever
	// belongs to one record number (and its usage stripe).
	use     atomic.Uint32
	kind    uint8
	format  uint8
	flags   uint8
	live    bool // in the index (under Index.mu)
	ownerIn bool // owner is interned (not counted as dead when replaced)
	// the strings' lengths (lenByte), so that a lookup reads no arena
	idLen, ownerLen, accountLen uint8
}

// usageSlot is a used key's usage counters and last client address
// (usage.go): 72 bytes, pointer-free, in chunks like the records.
type usageSlot struct {
	usageCounters
	ip     [16]byte // the last client address (under the key's usage stripe lock)
	hasIP  bool
	listed bool // in Recorder.held (under the stripe lock)
}

// rec.flags
const (
	flagActive uint8 = 1 << iota
	flagCanary
	flagSigning
	flagBound
	flagCertBad
)

const (
	recChunkBits = 12
	recChunkSize = 1 << recChunkBits
	maxRecChunks = 1 << 14 // 67M keys
)

// digestHash mixes the whole digest, so that imported formats whose
// digests are mostly zero (murmur32) spread as well as SHA-256.
func digestHash(d *keyformat.Digest) uint64 {
	h := binary.LittleEndian.Uint64(d[0:]) ^ binary.LittleEndian.Uint64(d[8:])*0x9e3779b97f4a7c15 ^
		binary.LittleEndian.Uint64(d[16:])*0xc2b2ae3d27d4eb4f ^ binary.LittleEndian.Uint64(d[24:])*0x165667b19e3779f9
	h ^= h >> 31
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 29
	return h
}

var idSeed = maphash.MakeSeed()

func idHash(id string) uint64 { return maphash.String(idSeed, id) }

// table is an open-addressing hash table of record numbers: each slot
// holds the hash's high 32 bits, which give the slot's home and a tag that
// spares most probes a record read, and the record number; 0 is an empty
// slot. The shard is chosen by the hash's low bits, so the two are
// independent.
type table struct {
	slots []uint64
	n     int
	// aim, when not 0, is the size a load expects the table to reach
	// (aimFor): growth below it quadruples, never past it.
	aim int
}

// slotOf packs h's high bits and num.
func slotOf(h uint64, num uint32) uint64 { return h&^0xffffffff | uint64(num) }

// home is where a probe for h (or for slot s) starts.
func home(h uint64, mask uint64) uint64 { return (h >> 32) & mask }

// find returns the number of the record that match accepts among those
// whose hash is h, or 0.
func (t *table) find(h uint64, match func(num uint32) bool) uint32 {
	if len(t.slots) == 0 {
		return 0
	}
	mask := uint64(len(t.slots) - 1)
	tag := h &^ 0xffffffff
	for i := home(h, mask); ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return 0
		}
		if s&^0xffffffff == tag && match(uint32(s)) {
			return uint32(s)
		}
	}
}

// insert adds num under hash h, growing the table when it is 3/4 full.
// The caller knows num is not in the table.
func (t *table) insert(h uint64, num uint32) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	mask := uint64(len(t.slots) - 1)
	i := home(h, mask)
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = slotOf(h, num)
	t.n++
}

// grow doubles the table, or quadruples it while that stays within aim.
// A slot holds what its new place needs, so no record is read.
func (t *table) grow() {
	size := max(16, 2*len(t.slots))
	if t.aim > size {
		size = min(t.aim, 2*size)
	}
	t.resize(size)
}

// sizeFor is the size doubling takes a table to for n entries: the
// smallest power of two, at least 16, that holds them at most 3/4 full
// (insert).
func sizeFor(n int) int {
	size := 16
	for n*4 > size*3 {
		size *= 2
	}
	return size
}

// aimFor sets the size the table is expected to reach, for n entries:
// on its way there it grows by four at a time, moving each slot about a
// third as often as doubling does (each growth moves every slot). It
// allocates nothing: an aim too high costs at most a table twice the size
// its entries need, until trim.
func (t *table) aimFor(n int) { t.aim = sizeFor(n) }

// trim ends the aim, and shrinks a table that quadrupling left larger
// than its entries need to the size doubling would have given it.
func (t *table) trim() {
	t.aim = 0
	if size := sizeFor(t.n); size < len(t.slots) {
		t.resize(size)
	}
}

// resize moves every slot to a table of size slots (a power of two that
// holds them).
func (t *table) resize(size int) {
	old := t.slots
	t.slots = make([]uint64, size)
	mask := uint64(size - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := home(s, mask)
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// remove deletes num (whose hash is h) by shifting back the slots after
// it, so that no tombstone is left: a probe still ends at the first empty
// slot.
func (t *table) remove(h uint64, num uint32) bool {
	if len(t.slots) == 0 {
		return false
	}
	mask := uint64(len(t.slots) - 1)
	i := home(h, mask)
	for {
		s := t.slots[i]
		if s == 0 {
			return false
		}
		if uint32(s) == num {
			break
		}
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		s := t.slots[j]
		if s == 0 {
			break
		}
		// s can fill the hole at i unless its home lies cyclically in
		// (i, j]: then a probe for it starts after the hole.
		k := home(s, mask)
		if (j > i && (k <= i || k > j)) || (j < i && k <= i && k > j) {
			t.slots[i] = s
			i = j
		}
	}
	t.slots[i] = 0
	t.n--
	// Shrink a table that a mass deletion left mostly empty, so that
	// memory follows the keys down as well as up.
	if len(t.slots) > 64 && t.n*8 < len(t.slots) {
		t.shrink()
	}
	return true
}

func (t *table) shrink() { t.resize(len(t.slots) / 2) }
