package verify

import (
	"testing"
	"unsafe"
)

// TestRecLayout: a record is three cache lines, the first holding what a
// lookup compares and copies, the second the flags and the usage counters
// a decision updates.
func TestRecLayout(t *testing.T) {
	var r rec
	if s := unsafe.Sizeof(r); s != 192 {
		t.Errorf("rec is %d bytes, want 192", s)
	}
	if o := unsafe.Offsetof(r.rules); o != 64 {
		t.Errorf("rec.rules at %d, want 64 (the second line)", o)
	}
	if o, end := unsafe.Offsetof(r.usage), unsafe.Offsetof(r.usage)+unsafe.Sizeof(r.usage); o < 64 || end > 128 {
		t.Errorf("rec.usage at %d-%d, want within the second line", o, end)
	}
	if o := unsafe.Offsetof(r.cert); o != 128 {
		t.Errorf("rec.cert at %d, want 128 (the third line)", o)
	}
}

// TestTableAgainstMap: random inserts and removals, with hashes that
// collide on purpose (few distinct homes, equal tags), keep the table
// equal to a map: every number present is found, every removed one is
// not, and the table grows and shrinks on the way.
func TestTableAgainstMap(t *testing.T) {
	for _, spread := range []uint64{61, 1 << 40} {
		var tb table
		want := map[uint32]uint64{}
		hashOf := func(num uint32) uint64 { return (uint64(num) % spread) * 0x9e3779b97f4a7c15 }
		next := uint32(1)
		rng := uint64(1)
		grew, shrank := 0, 0
		for step := range 40_000 {
			rng = rng*6364136223846793005 + 1442695040888963407
			size := len(tb.slots)
			// Grow to a few thousand entries, then drain, twice.
			adding := (step/10_000)%2 == 0
			if adding && rng>>60 < 12 || len(want) == 0 {
				num := next
				next++
				tb.insert(hashOf(num), num)
				want[num] = hashOf(num)
			} else {
				for num, h := range want {
					if !tb.remove(h, num) {
						t.Fatalf("spread %d: remove(%d) found nothing", spread, num)
					}
					delete(want, num)
					break
				}
			}
			switch {
			case len(tb.slots) > size && size > 0:
				grew++
			case len(tb.slots) < size:
				shrank++
			}
			if tb.n != len(want) {
				t.Fatalf("spread %d: n = %d, want %d", spread, tb.n, len(want))
			}
			if step%3001 == 0 {
				for num, h := range want {
					if got := tb.find(h, func(n uint32) bool { return n == num }); got != num {
						t.Fatalf("spread %d step %d: find(%d) = %d", spread, step, num, got)
					}
				}
			}
		}
		if grew == 0 || shrank == 0 {
			t.Errorf("spread %d: the table grew %d and shrank %d times; want both", spread, grew, shrank)
		}
	}
}
