package verify

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/latchkey/latchkey"
)

// TestRecLayout: a record is 80 bytes, with no usage counters, client
// address or certificate thumbprint (those are in a usage slot made on a
// key's first use, and in a bound key's rules); a usage slot is 72.
func TestRecLayout(t *testing.T) {
	if s := unsafe.Sizeof(rec{}); s != 80 {
		t.Errorf("rec is %d bytes, want 80", s)
	}
	if s := unsafe.Sizeof(usageSlot{}); s != 72 {
		t.Errorf("usageSlot is %d bytes, want 72", s)
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

// TestArenaCompacts: deleting most keys, and renaming applications, leaves
// the arena mostly strings no key uses; the index then copies what is
// left into fresh chunks and gives up the old ones, and every key still
// reads the same, as do entries read before.
func TestArenaCompacts(t *testing.T) {
	ix := NewIndex()
	const n = 200_000
	put := func(i int, app string) {
		ix.Put(&latchkey.AccessKey{ID: fmt.Sprintf("LKIACOMPACT%09d", i), Account: "acme", Application: app,
			Status: latchkey.StatusActive, SecretDigest: sha256.Sum256([]byte(strconv.Itoa(i)))})
	}
	for i := range n {
		put(i, fmt.Sprintf("application-%d", i))
	}
	early := ix.Get("LKIACOMPACT000000001")
	ix.mu.Lock()
	chunks := len(ix.arena.used)
	ix.mu.Unlock()
	for i := range n {
		switch {
		case i%10 == 1:
			put(i, fmt.Sprintf("renamed-%d", i))
		case i%10 != 0:
			ix.Delete(fmt.Sprintf("LKIACOMPACT%09d", i))
		}
	}
	ix.mu.Lock()
	after, dead, live, free := len(ix.arena.used), ix.arena.dead, ix.arena.live, len(ix.arena.free)
	ix.mu.Unlock()
	if after >= chunks || free == 0 || dead > live+4<<20 {
		t.Errorf("arena: %d chunks before, %d after (%d given up); %d bytes dead, %d live", chunks, after, free, dead, live)
	}
	for i := range n {
		e := ix.Get(fmt.Sprintf("LKIACOMPACT%09d", i))
		want := ""
		switch i % 10 {
		case 0:
			want = fmt.Sprintf("application-%d", i)
		case 1:
			want = fmt.Sprintf("renamed-%d", i)
		}
		if got := ""; e != nil {
			got = e.Application()
			if got != want || e.Account != "acme" || e.ID != fmt.Sprintf("LKIACOMPACT%09d", i) {
				t.Fatalf("key %d after compaction: %q %q %q, want application %q", i, e.ID, e.Account, got, want)
			}
		} else if want != "" {
			t.Fatalf("key %d gone after compaction", i)
		}
	}
	if early.ID != "LKIACOMPACT000000001" || early.Application() != "application-1" {
		t.Errorf("an entry read before the compaction changed: %q %q", early.ID, early.Application())
	}
}

// keyScan hands out keys to Sync without a database.
type keyScan struct {
	latchkey.Store
	keys []*latchkey.AccessKey
}

func (s *keyScan) ScanKeyIndex(_ context.Context, fn func(*latchkey.AccessKey) error) error {
	for _, k := range s.keys {
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

// TestSyncMemoryFlat: a full resync of the same keys, some with rules and
// some changed, takes no new records, no new table slots and no new
// arena bytes beyond the changed names: memory stays flat.
func TestSyncMemoryFlat(t *testing.T) {
	const n = 20_000
	keys := make([]*latchkey.AccessKey, n)
	for i := range keys {
		keys[i] = &latchkey.AccessKey{ID: fmt.Sprintf("LKIAFLAT%012d", i), Account: "acme", Application: fmt.Sprintf("app-%d", i),
			Status: latchkey.StatusActive, SecretDigest: sha256.Sum256([]byte(strconv.Itoa(i)))}
		if i%10 == 0 {
			keys[i].Restrictions = &latchkey.Restrictions{Scopes: []string{"read"}}
		}
	}
	ix := NewIndex()
	type usage struct {
		recs          uint32
		slots, idSlot int
		chunks        int
		live          int64
	}
	measure := func() usage {
		ix.mu.Lock()
		defer ix.mu.Unlock()
		u := usage{recs: ix.nrecs, chunks: len(ix.arena.used), live: ix.arena.live}
		for i := range ix.shards {
			u.slots += len(ix.shards[i].t.slots)
			u.idSlot += len(ix.ids[i].slots)
		}
		return u
	}
	scan := &keyScan{keys: keys}
	if got, err := ix.Sync(t.Context(), scan); err != nil || got != n {
		t.Fatalf("Sync = %d, %v", got, err)
	}
	first := measure()
	for round := range 3 {
		// Each round renames 1% of the applications and resyncs.
		for i := round; i < n; i += 100 {
			k := *keys[i]
			k.Application = fmt.Sprintf("renamed-%d-%d", round, i)
			keys[i] = &k
		}
		if _, err := ix.Sync(t.Context(), scan); err != nil {
			t.Fatal(err)
		}
		got := measure()
		if got.recs != first.recs || got.slots != first.slots || got.idSlot != first.idSlot || got.chunks != first.chunks ||
			got.live > first.live+int64(n/100*20) {
			t.Errorf("round %d: %+v after the resync, %+v after the load", round, got, first)
		}
	}
	if ix.Len() != n {
		t.Errorf("Len = %d, want %d", ix.Len(), n)
	}
}

// TestArenaStrings: strings of every length class (one- to three-byte
// lengths, and longer than a chunk) read back as put, and 0 is "".
func TestArenaStrings(t *testing.T) {
	var a arena
	if a.str(0) != "" || a.put("") != 0 {
		t.Fatal("the empty string is not ref 0")
	}
	var refs []strRef
	var want []string
	for i, n := range []int{1, 127, 128, 254, 255, 256, 300, 16383, 16384, arenaChunkSize + 5, 3} {
		s := strings.Repeat(string(rune('a'+i)), n)
		refs = append(refs, a.put(s))
		want = append(want, s)
	}
	for i, r := range refs {
		if r == 0 || a.str(r) != want[i] || a.strN(r, lenByte(want[i])) != want[i] {
			t.Errorf("string %d (%d bytes) did not read back", i, len(want[i]))
		}
	}
	for _, r := range refs {
		a.drop(r)
	}
	if a.live != 0 {
		t.Errorf("live = %d after dropping every string, want 0", a.live)
	}
}

// TestUsageSlotLazy: a key gets its usage slot on its first use, not when
// it is loaded; reading a never-used key's pending usage makes none; a
// deleted key's slot is zeroed and serves the next key given its record.
func TestUsageSlotLazy(t *testing.T) {
	ix := NewIndex()
	put := func(id string) uint32 {
		ix.Put(&latchkey.AccessKey{ID: id, Account: "acme", Application: "app", Status: latchkey.StatusActive,
			SecretDigest: sha256.Sum256([]byte(id))})
		ix.mu.Lock()
		defer ix.mu.Unlock()
		return ix.numOf(id)
	}
	a, b := put("LKIAAAAAAAAAAAAAAAAA"), put("LKIABBBBBBBBBBBBBBBB")
	if ix.usageOf(a) != nil || ix.usageOf(b) != nil {
		t.Fatal("a loaded key has a usage slot")
	}
	e := ix.Get("LKIAAAAAAAAAAAAAAAAA")
	var r *Recorder
	r.use(ix, e, time.Unix(1_800_000_000, 0), netip.MustParseAddr("192.0.2.7"), "curl")
	if ix.usageOf(a) == nil {
		t.Fatal("a used key has no usage slot")
	}
	if p := ix.PendingUsage(e.ID); p.Uses != 1 || p.LastUsed == nil || p.LastUsed.IP != "192.0.2.7" || p.LastUsed.UserAgent != "curl" {
		t.Errorf("pending usage %+v, want one use from 192.0.2.7 with curl", p)
	}
	if p := ix.PendingUsage("LKIABBBBBBBBBBBBBBBB"); p.Uses != 0 || p.LastUsed != nil || ix.usageOf(b) != nil {
		t.Errorf("an unused key: pending %+v, slot made %v", p, ix.usageOf(b) != nil)
	}
	slot := ix.rec(a).use.Load()
	ix.Delete(e.ID)
	if c := put("LKIACCCCCCCCCCCCCCCC"); c != a || ix.rec(c).use.Load() != slot {
		t.Fatalf("the new key has record %d slot %d, want the deleted key's %d and %d", c, ix.rec(c).use.Load(), a, slot)
	}
	if p := ix.PendingUsage("LKIACCCCCCCCCCCCCCCC"); p.Uses != 0 || p.LastUsed != nil {
		t.Errorf("the record's next key inherits usage: %+v", p)
	}
}

// TestBoundKeySame: a bound key without restrictions is the same as the
// key it was made from (a resync keeps its entry), and not the same once
// its thumbprint changes.
func TestBoundKeySame(t *testing.T) {
	ix := NewIndex()
	th := sha256.Sum256([]byte("a certificate"))
	k := &latchkey.AccessKey{ID: "LKIAAAAAAAAAAAAAAAAA", Account: "acme", Application: "app", Status: latchkey.StatusActive,
		SecretDigest: sha256.Sum256([]byte("x")), CertThumbprint: latchkey.CertThumbprint(th).String()}
	ix.Put(k)
	e := ix.Get(k.ID)
	if !e.bound || e.rules == nil || e.rules.cert != latchkey.CertThumbprint(th) {
		t.Fatal("the bound key's entry does not hold its thumbprint")
	}
	if !e.same(k) {
		t.Error("a bound key is not the same as itself")
	}
	k2 := *k
	k2.CertThumbprint = latchkey.CertThumbprint(sha256.Sum256([]byte("another"))).String()
	if e.same(&k2) {
		t.Error("a key with another thumbprint is the same")
	}
}

// TestTableReserve: a table reserved for n entries takes them without
// growing, and one reserved for more is trimmed to the size growing to n
// would have given it; either way every entry is found.
func TestTableReserve(t *testing.T) {
	const n = 5_000
	var grown table
	for num := uint32(1); num <= n; num++ {
		grown.insert(uint64(num)*0x9e3779b97f4a7c15, num)
	}
	for _, tc := range []struct {
		name     string
		reserve  int
		wantSize int // right after the inserts; trim then gives len(grown.slots)
	}{
		{"none", 0, len(grown.slots)},
		{"exact", n, len(grown.slots)},
		{"under", n / 4, len(grown.slots)},
		{"over", 40 * n, sizeFor(40 * n)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tb table
			tb.reserve(tc.reserve)
			reserved := len(tb.slots)
			for num := uint32(1); num <= n; num++ {
				tb.insert(uint64(num)*0x9e3779b97f4a7c15, num)
			}
			if len(tb.slots) != tc.wantSize {
				t.Errorf("%d slots after reserve(%d) and %d inserts, want %d", len(tb.slots), tc.reserve, n, tc.wantSize)
			}
			if tc.reserve >= n && len(tb.slots) != reserved {
				t.Errorf("the table grew from %d to %d slots though reserved for %d", reserved, len(tb.slots), tc.reserve)
			}
			tb.trim()
			if len(tb.slots) != len(grown.slots) {
				t.Errorf("%d slots after trim, want %d (as grown)", len(tb.slots), len(grown.slots))
			}
			for num := uint32(1); num <= n; num++ {
				if got := tb.find(uint64(num)*0x9e3779b97f4a7c15, func(x uint32) bool { return x == num }); got != num {
					t.Fatalf("find(%d) = %d", num, got)
				}
			}
		})
	}
}

// estimatingScan is keyScan with the store's estimate of its keys; start,
// when set, runs as the scan begins.
type estimatingScan struct {
	keyScan
	estimate int
	err      error
	asked    int
	start    func()
}

func (s *estimatingScan) ScanKeyIndex(ctx context.Context, fn func(*latchkey.AccessKey) error) error {
	if s.start != nil {
		s.start()
	}
	return s.keyScan.ScanKeyIndex(ctx, fn)
}

func (s *estimatingScan) KeyCountEstimate(context.Context) (int, error) {
	s.asked++
	return s.estimate, s.err
}

// TestSyncReserve: a load into an empty index sizes the tables once from
// the store's estimate, so that none grows during it when the estimate is
// right; whatever the estimate, the tables end the size they have without
// one, and every key is there. A resync into a full index does not ask.
func TestSyncReserve(t *testing.T) {
	const n = 30_000
	keys := make([]*latchkey.AccessKey, n)
	for i := range keys {
		keys[i] = &latchkey.AccessKey{ID: fmt.Sprintf("LKIARSRV%012d", i), Account: "acme", Application: fmt.Sprintf("app-%d", i),
			Status: latchkey.StatusActive, SecretDigest: sha256.Sum256([]byte("reserve" + strconv.Itoa(i)))}
	}
	sizes := func(ix *Index) (digest, id []int) {
		ix.mu.Lock()
		defer ix.mu.Unlock()
		for i := range ix.shards {
			digest = append(digest, len(ix.shards[i].t.slots))
			id = append(id, len(ix.ids[i].slots))
		}
		return digest, id
	}
	plain := NewIndex()
	if _, err := plain.Sync(t.Context(), &keyScan{keys: keys}); err != nil {
		t.Fatal(err)
	}
	wantDigest, wantID := sizes(plain)

	// Reserved for the right count, the load grows no table.
	ix := NewIndex()
	ix.reserve(n)
	beforeDigest, beforeID := sizes(ix)
	if _, err := ix.Sync(t.Context(), &keyScan{keys: keys}); err != nil {
		t.Fatal(err)
	}
	afterDigest, afterID := sizes(ix)
	if diff := cmp.Diff(beforeDigest, afterDigest); diff != "" {
		t.Errorf("digest tables grew during a load reserved for its keys (-reserved +after):\n%s", diff)
	}
	if diff := cmp.Diff(beforeID, afterID); diff != "" {
		t.Errorf("ID tables grew during a load reserved for its keys (-reserved +after):\n%s", diff)
	}

	for _, tc := range []struct {
		name     string
		estimate int
		err      error
	}{
		{"exact", n, nil},
		{"under", n / 3, nil},
		{"over", 50 * n, nil},
		{"none", 0, nil},
		{"failed", n, errors.New("statistics unavailable")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix := NewIndex()
			scan := &estimatingScan{keyScan: keyScan{keys: keys}, estimate: tc.estimate, err: tc.err}
			// Before the first key is read, the tables are sized for
			// the estimate.
			scan.start = func() {
				if tc.estimate < n || tc.err != nil {
					return
				}
				digest, id := sizes(ix)
				for i := range digest {
					if digest[i] < wantDigest[i] || id[i] < wantID[i] {
						t.Errorf("shard %d: %d digest and %d ID slots as the scan begins, want at least %d and %d",
							i, digest[i], id[i], wantDigest[i], wantID[i])
						return
					}
				}
			}
			if got, err := ix.Sync(t.Context(), scan); err != nil || got != n {
				t.Fatalf("Sync = %d, %v", got, err)
			}
			if scan.asked != 1 {
				t.Errorf("the estimate was asked %d times, want once", scan.asked)
			}
			digest, id := sizes(ix)
			if diff := cmp.Diff(wantDigest, digest); diff != "" {
				t.Errorf("digest table sizes differ from a load without an estimate (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantID, id); diff != "" {
				t.Errorf("ID table sizes differ from a load without an estimate (-want +got):\n%s", diff)
			}
			for _, k := range keys {
				if e := ix.Lookup(&k.SecretDigest); e == nil || e.ID != k.ID {
					t.Fatalf("key %s not found by its digest", k.ID)
				}
				if ix.Get(k.ID) == nil {
					t.Fatalf("key %s not found by its ID", k.ID)
				}
			}
			// A resync into the full index asks nothing.
			if _, err := ix.Sync(t.Context(), scan); err != nil {
				t.Fatal(err)
			}
			if scan.asked != 1 {
				t.Errorf("a resync asked for the estimate (%d times in all)", scan.asked)
			}
		})
	}
}

// TestSyncReserveFailed: a load that fails after the tables were sized for
// the estimate gives the memory back: the tables are trimmed to what the
// keys read so far need.
func TestSyncReserveFailed(t *testing.T) {
	boom := errors.New("connection reset")
	ix := NewIndex()
	scan := &estimatingScan{estimate: 1_000_000}
	failing := &failingScan{estimatingScan: scan, err: boom}
	if _, err := ix.Sync(t.Context(), failing); !errors.Is(err, boom) {
		t.Fatalf("Sync error = %v, want %v", err, boom)
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for i := range ix.shards {
		if d, id := len(ix.shards[i].t.slots), len(ix.ids[i].slots); d > sizeFor(0) || id > sizeFor(0) {
			t.Fatalf("shard %d keeps %d digest and %d ID slots after a failed load, want at most %d", i, d, id, sizeFor(0))
		}
	}
}

// failingScan is an estimatingScan whose scan fails.
type failingScan struct {
	*estimatingScan
	err error
}

func (s *failingScan) ScanKeyIndex(context.Context, func(*latchkey.AccessKey) error) error {
	return s.err
}
