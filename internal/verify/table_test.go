package verify

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
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
// key's first use, and in a bound key's rules); a usage slot is 80 (72
// before it held the calls of a minute not over).
func TestRecLayout(t *testing.T) {
	if s := unsafe.Sizeof(rec{}); s != 80 {
		t.Errorf("rec is %d bytes, want 80", s)
	}
	if s := unsafe.Sizeof(usageSlot{}); s != 80 {
		t.Errorf("usageSlot is %d bytes, want 80", s)
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

// TestSizeFor: sizeFor(n) is the size inserting n entries grows a table
// to, for every n up to a few thousand (the power-of-two boundaries
// included).
func TestSizeFor(t *testing.T) {
	var tb table
	for n := 0; n <= 5000; n++ {
		if n > 0 {
			tb.insert(uint64(n)*0x9e3779b97f4a7c15, uint32(n))
		}
		if want := max(len(tb.slots), 16); sizeFor(n) != want {
			t.Fatalf("sizeFor(%d) = %d, want %d (a table grown to %d entries)", n, sizeFor(n), want, n)
		}
	}
}

// TestTableAim: a table aimed at n entries grows to them by quadrupling,
// in fewer steps than doubling takes and never past its aim; aimed too
// low it doubles on from there, aimed too high it ends at most twice the
// size doubling gives, and trim brings it back to that size. Every entry
// is found throughout.
func TestTableAim(t *testing.T) {
	const n = 5_000
	hash := func(num uint32) uint64 { return uint64(num) * 0x9e3779b97f4a7c15 }
	fill := func(tb *table) (resizes int) {
		for num := uint32(1); num <= n; num++ {
			size := len(tb.slots)
			tb.insert(hash(num), num)
			if len(tb.slots) != size {
				resizes++
			}
		}
		return resizes
	}
	var grown table
	doublings := fill(&grown)
	natural := len(grown.slots)
	for _, tc := range []struct {
		name       string
		aim        int
		maxResizes int
		sizes      []int // allowed sizes after the inserts, before trim
	}{
		{"none", 0, doublings, []int{natural}},
		{"exact", n, (doublings + 1) / 2, []int{natural}},
		{"under", n / 4, doublings - 1, []int{natural}},
		{"over", 40 * n, (doublings + 1) / 2, []int{natural, 2 * natural}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tb table
			if tc.aim > 0 {
				tb.aimFor(tc.aim)
			}
			if len(tb.slots) != 0 {
				t.Fatalf("aimFor allocated %d slots", len(tb.slots))
			}
			resizes := fill(&tb)
			if resizes > tc.maxResizes {
				t.Errorf("%d resizes to %d entries, want at most %d (doubling: %d)", resizes, n, tc.maxResizes, doublings)
			}
			if !slices.Contains(tc.sizes, len(tb.slots)) {
				t.Errorf("%d slots after %d inserts aimed at %d, want one of %v", len(tb.slots), n, tc.aim, tc.sizes)
			}
			if tc.aim > 0 && len(tb.slots) > max(tb.aim, natural) {
				t.Errorf("%d slots: past the aim of %d", len(tb.slots), tb.aim)
			}
			tb.trim()
			if len(tb.slots) != natural || tb.aim != 0 {
				t.Errorf("%d slots and aim %d after trim, want %d (as doubling gives) and 0", len(tb.slots), tb.aim, natural)
			}
			for num := uint32(1); num <= n; num++ {
				if got := tb.find(hash(num), func(x uint32) bool { return x == num }); got != num {
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

// TestSyncAim: a load into an empty index aims the tables at the store's
// estimate before the first key is read; whatever the estimate (right,
// low, high, none, or an error), the tables end the size they have
// without one, with no aim left, and every key is there. A resync into a
// full index does not ask.
func TestSyncAim(t *testing.T) {
	const n = 30_000
	keys := make([]*latchkey.AccessKey, n)
	for i := range keys {
		keys[i] = &latchkey.AccessKey{ID: fmt.Sprintf("LKIARSRV%012d", i), Account: "acme", Application: fmt.Sprintf("app-%d", i),
			Status: latchkey.StatusActive, SecretDigest: sha256.Sum256([]byte("reserve" + strconv.Itoa(i)))}
	}
	type shape struct{ Digest, ID, Aims []int }
	shapeOf := func(ix *Index) shape {
		ix.mu.Lock()
		defer ix.mu.Unlock()
		var sh shape
		for i := range ix.shards {
			sh.Digest = append(sh.Digest, len(ix.shards[i].t.slots))
			sh.ID = append(sh.ID, len(ix.ids[i].slots))
			sh.Aims = append(sh.Aims, ix.shards[i].t.aim, ix.ids[i].aim)
		}
		return sh
	}
	plain := NewIndex()
	if _, err := plain.Sync(t.Context(), &keyScan{keys: keys}); err != nil {
		t.Fatal(err)
	}
	want := shapeOf(plain)

	for _, tc := range []struct {
		name     string
		estimate int
		err      error
		aimed    bool
	}{
		{"exact", n, nil, true},
		{"under", n / 3, nil, true},
		{"over", 50 * n, nil, true},
		{"none", 0, nil, false},
		{"failed", n, errors.New("statistics unavailable"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix := NewIndex()
			scan := &estimatingScan{keyScan: keyScan{keys: keys}, estimate: tc.estimate, err: tc.err}
			scan.start = func() {
				// Before the first key is read, every table is aimed
				// at its share of the estimate, or none is.
				scan.start = nil // the resync below
				per := tc.estimate/shardCount + 3*int(math.Sqrt(float64(tc.estimate/shardCount))) + 1
				for i, aim := range shapeOf(ix).Aims {
					if tc.aimed && aim != sizeFor(per) || !tc.aimed && aim != 0 {
						t.Errorf("table %d is aimed at %d as the scan begins (estimate %d, %v)", i, aim, tc.estimate, tc.err)
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
			if diff := cmp.Diff(want, shapeOf(ix)); diff != "" {
				t.Errorf("tables differ from a load without an estimate (-want +got):\n%s", diff)
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

// TestSyncAimFailed: a load that fails after the tables were aimed ends
// their aims: a later load grows them as doubling does unless it is
// given an estimate of its own.
func TestSyncAimFailed(t *testing.T) {
	boom := errors.New("connection reset")
	ix := NewIndex()
	failing := &failingScan{estimatingScan: &estimatingScan{estimate: 1_000_000}, err: boom}
	if _, err := ix.Sync(t.Context(), failing); !errors.Is(err, boom) {
		t.Fatalf("Sync error = %v, want %v", err, boom)
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for i := range ix.shards {
		if d, id := ix.shards[i].t.aim, ix.ids[i].aim; d != 0 || id != 0 {
			t.Fatalf("shard %d's tables are still aimed at %d and %d after a failed load", i, d, id)
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
