package verify

import (
	"context"
	"hash/maphash"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchkey/latchkey"
)

// usageCounters accumulate one key's usage between flushes, in its index
// record's usage slot (usageSlot, made on the key's first use): what every
// call changes is atomics, updated without a lock and without allocating.
// They stay with the record when the key's entry is replaced. What only
// refused calls, report-only restrictions and calls from a new client
// address or user agent change is kept under one of the index's usage
// stripe locks (usageSide), in the usage slot (the last address and user
// agent) or in a side structure made on the first need.
type usageCounters struct {
	// valid is the current minute (Unix minutes, high 32 bits) and the
	// valid calls counted in it since the last flush (low 32 bits);
	// prev is the same for the minute before, which a flush has not
	// taken yet. Older minutes go to the side structure.
	valid  atomic.Uint64
	usedAt atomic.Int64 // Unix nanoseconds of the last valid call; 0 = none since the last flush
	// who fingerprints the client address (usageSlot.ip) and user agent (ua)
	// of the last valid call, so that a call from the same client takes
	// no lock (0: none yet).
	who     atomic.Uint64
	rejects atomic.Int64
	prev    atomic.Uint64
	dirty   atomic.Uint32 // 1 while the key waits for a flush
	ua      uint32        // the user agent's number in usageSide's table; 0 = none (under the stripe lock)
	// held is the valid calls of a minute that had not ended at the
	// last flush (the minute in the high 32 bits, the count in the low;
	// 0 = none), under the stripe lock: the flush wrote them into the
	// key's use count, and writes their minute's row once the minute is
	// over (see Flush).
	held uint64
}

// reset zeroes the counters of a deleted key's record.
func (c *usageCounters) reset() {
	c.valid.Store(0)
	c.prev.Store(0)
	c.usedAt.Store(0)
	c.rejects.Store(0)
	c.who.Store(0)
	c.dirty.Store(0)
}

// usageSide holds what usage keeps beside the records' counters, under
// striped locks: a key's stripe is its record number's.
type usageSide struct {
	stripes [usageStripes]struct {
		mu sync.Mutex
		m  map[uint32]*sideUsage
		_  [40]byte // a cache line each
	}

	uaMu  sync.Mutex
	uaIDs map[string]uint32
	uas   []string
}

const usageStripes = 64

// maxUserAgents bounds the table of user agents; the keys of a client
// with a user agent past it keep theirs in their side structure.
const maxUserAgents = 1 << 16

func (u *usageSide) init() {
	for i := range u.stripes {
		u.stripes[i].m = map[uint32]*sideUsage{}
	}
	u.uaIDs = map[string]uint32{}
}

// sideUsage is a key's usage beyond its record's counters.
type sideUsage struct {
	mins []minuteBucket // calls per minute and code since the last flush, beyond the record's two valid minutes
	rare rareUsage
	ua   string // the last user agent when the table is full
}

// lock locks num's stripe and returns its map.
func (u *usageSide) lock(num uint32) (*sync.Mutex, map[uint32]*sideUsage) {
	s := &u.stripes[num%usageStripes]
	s.mu.Lock()
	return &s.mu, s.m
}

// get returns num's side structure, made on the first need. Called under
// num's stripe lock.
func getSide(m map[uint32]*sideUsage, num uint32) *sideUsage {
	su := m[num]
	if su == nil {
		su = &sideUsage{}
		m[num] = su
	}
	return su
}

// forgetUsage drops a deleted key's side structure, last client and held
// calls.
func (ix *Index) forgetUsage(num uint32) {
	mu, m := ix.side.lock(num)
	delete(m, num)
	if sl := ix.usageOf(num); sl != nil {
		sl.ip, sl.hasIP, sl.ua, sl.held, sl.listed = [16]byte{}, false, 0, 0, false
	}
	mu.Unlock()
}

// uaID returns the number of a user agent (cleaned and cut as it is
// stored), adding it to the table; 0 when the table is full.
func (u *usageSide) uaID(ua string) uint32 {
	ua = truncateUA(ua)
	u.uaMu.Lock()
	defer u.uaMu.Unlock()
	if id, ok := u.uaIDs[ua]; ok {
		return id
	}
	if len(u.uas) >= maxUserAgents {
		return 0
	}
	ua = strings.Clone(ua)
	u.uas = append(u.uas, ua)
	u.uaIDs[ua] = uint32(len(u.uas))
	return uint32(len(u.uas))
}

func (u *usageSide) uaString(id uint32) string {
	if id == 0 {
		return ""
	}
	u.uaMu.Lock()
	defer u.uaMu.Unlock()
	return u.uas[id-1]
}

var whoSeed = maphash.MakeSeed()

// whoOf fingerprints a client address and user agent; never 0.
func whoOf(ip netip.Addr, ua string) uint64 {
	h := maphash.String(whoSeed, ua) ^ addrU128(ip).mix()
	if ip.IsValid() {
		h ^= 0x5bd1e995
	}
	return h | 1
}

// setWho records the time and client of a valid call at n whose client
// differs from the last one's: the client is kept when n is the newest
// time. (Two calls at once from different clients may pair one's time
// with the other's client; calls one after the other never do.)
func (ix *Index) setWho(num, gen uint32, n int64, who uint64, ip netip.Addr, ua string) {
	kr := ix.rec(num)
	sl := ix.usageSlotOf(num)
	c := &sl.usageCounters
	id := uint32(0)
	if ua != "" {
		id = ix.side.uaID(ua)
	}
	mu, m := ix.side.lock(num)
	defer mu.Unlock()
	if kr.gen.Load() != gen {
		return // deleted meanwhile
	}
	for {
		at := c.usedAt.Load()
		if n < at {
			return
		}
		if c.usedAt.CompareAndSwap(at, n) {
			break
		}
	}
	sl.ip, sl.hasIP = ip.As16(), ip.IsValid()
	c.ua = id
	if id == 0 && ua != "" {
		getSide(m, num).ua = truncateUA(ua)
	} else if su := m[num]; su != nil {
		su.ua = ""
	}
	c.who.Store(who)
}

// client returns the last client address and user agent of a key. Called
// under num's stripe lock.
func (ix *Index) client(sl *usageSlot, su *sideUsage) (netip.Addr, string) {
	c := &sl.usageCounters
	var ip netip.Addr
	if sl.hasIP {
		ip = netip.AddrFrom16(sl.ip)
	}
	if c.ua == 0 && su != nil {
		return ip, su.ua
	}
	return ip, ix.side.uaString(c.ua)
}

// rareUsage is a key's record of refusals and would-be refusals since the
// last flush (its count of refusals is in the record's counters).
type rareUsage struct {
	rejects int64
	rejAt   int64
	rejIP   netip.Addr
	rejUA   string
	rejWhy  latchkey.Code
	wdN     int64
	wdAt    int64
	wdIP    netip.Addr
	wdUA    string
	wdWhy   latchkey.Code
}

// codeSlots are the decision codes counted per minute: those that can
// concern a known key.
var codeSlots = [...]latchkey.Code{
	latchkey.CodeValid, latchkey.CodeInactive, latchkey.CodeExpired, latchkey.CodeIPNotAllowed,
	latchkey.CodeReferrerNotAllowed, latchkey.CodeAppNotAllowed, latchkey.CodeScopeDenied, latchkey.CodeQuotaExceeded,
	latchkey.CodeCertificateMismatch, latchkey.CodeRateLimited,
}

func codeSlot(c latchkey.Code) int {
	for i, s := range codeSlots {
		if s == c {
			return i
		}
	}
	return len(codeSlots) - 1
}

type minuteBucket struct {
	minute int64 // Unix minute
	counts [len(codeSlots)]int64
}

// addMinute adds n calls with code to minute m's bucket.
func (su *sideUsage) addMinute(m int64, code latchkey.Code, n int64) {
	for i := len(su.mins) - 1; i >= 0; i-- {
		if su.mins[i].minute == m {
			su.mins[i].counts[codeSlot(code)] += n
			return
		}
	}
	su.mins = append(su.mins, minuteBucket{minute: m})
	su.mins[len(su.mins)-1].counts[codeSlot(code)] += n
}

func minuteCounts(bs []minuteBucket) []latchkey.UsageCount {
	var out []latchkey.UsageCount
	for _, b := range bs {
		for i, n := range b.counts {
			if n > 0 {
				out = append(out, latchkey.UsageCount{At: time.Unix(b.minute*60, 0).UTC(), Code: codeSlots[i], Count: n})
			}
		}
	}
	return out
}

// usageSnap is a copy of a key's counters taken at flush.
type usageSnap struct {
	usedAt  int64
	usedIP  netip.Addr
	usedUA  string
	rare    rareUsage
	mins    []minuteBucket        // the counts since the last flush
	minutes []latchkey.UsageCount // the minute rows to write: mins and the held calls, less those held now
	uses    int64
	held    uint64 // the key's held calls before the snapshot
	holds   bool   // a snapshot that took: the key now holds calls, and is not in Recorder.held yet
}

// empty reports whether the snapshot holds nothing to write (a key marked
// dirty whose counts a flush had already taken, or whose held calls wait
// for their minute's end).
func (s *usageSnap) empty() bool {
	return s.usedAt == 0 && s.rare == (rareUsage{}) && len(s.mins) == 0 && len(s.minutes) == 0
}

// UsageSink receives batches of usage. latchkey.Store implements it.
type UsageSink interface {
	RecordUsage(ctx context.Context, batch []latchkey.UsageUpdate) error
}

// Recorder collects usage in memory and writes it to a sink in batches, so
// the store sees a bounded number of write transactions per interval (at
// most MaxBatch keys, TxRows keys to a transaction) however many
// verifications happen.
type Recorder struct {
	// Index, when set, lets readers see usage consistently: a flush holds
	// the index's usage gate from taking the counts out of memory until
	// the store has them, and Index.ReadUsage waits for it.
	Index *Index

	// MaxBatch bounds how many keys one flush writes; 0 means no bound.
	// Keys past it stay pending, still counting, for the next flush. It
	// bounds the rows the store writes per interval whatever the spread
	// of the traffic over keys, not only the transactions: a million
	// keys each used once a second would otherwise cost a million row
	// updates a second.
	MaxBatch int

	// TxRows bounds the keys written in one store transaction; a flush
	// of more keys takes several, one after another. 0 means one
	// transaction per flush. On SQLite, where writes take turns, it
	// bounds how long a management write waits behind a flush.
	TxRows int

	sink     UsageSink
	log      *slog.Logger
	interval time.Duration

	mu    sync.Mutex
	dirty []usageRef
	// sweep is, when more keys were pending than a flush takes, what is
	// left of them in ID order: flushes take them from the front, so that
	// each writes keys next to each other in ID, which a store keeps on
	// the same pages (see Flush). Keys marked meanwhile wait in dirty for
	// the next sweep.
	sweep []usageRef

	flushMu sync.Mutex // one flush at a time
	now     func() time.Time
	final   atomic.Bool // Stop began: flushes hold back nothing
	// held lists the keys that hold calls of a minute not over at
	// heldCut (see Flush), each once (usageSlot.listed); under flushMu.
	held    []usageRef
	heldCut int64
	started atomic.Bool
	done    chan struct{}
	stopped chan struct{}
}

// NewRecorder returns a recorder that flushes to sink every interval once
// Start is called.
func NewRecorder(sink UsageSink, interval time.Duration, log *slog.Logger) *Recorder {
	if interval <= 0 {
		interval = time.Second
	}
	return &Recorder{sink: sink, log: log, interval: interval, MaxBatch: DefaultMaxBatch, TxRows: DefaultTxRows, now: time.Now, done: make(chan struct{}), stopped: make(chan struct{})}
}

// DefaultMaxBatch is a new Recorder's MaxBatch: with the default interval of
// a second, at most 2,000 key rows a second, a few percent of one core for
// SQLite, however many keys are in use.
const DefaultMaxBatch = 2000

// DefaultTxRows is a new Recorder's TxRows: a full flush of DefaultMaxBatch
// keys is 8 transactions of a few milliseconds each.
const DefaultTxRows = 250

// usageRef names a key waiting for a flush: its record, the record's
// generation when the key was marked (a deleted key's usage is dropped),
// and its ID.
type usageRef struct {
	ix       *Index
	num, gen uint32
	id       string
}

func (r *Recorder) markDirty(u usageRef) {
	r.mu.Lock()
	r.dirty = append(r.dirty, u)
	r.mu.Unlock()
}

// counters returns e's usage counters, or nil when the key was deleted
// since e was read.
func (ix *Index) counters(e *Entry) *usageCounters {
	if e.num == 0 {
		return nil
	}
	kr := ix.rec(e.num)
	if kr.gen.Load() != e.gen {
		return nil
	}
	return &ix.usageSlotOf(e.num).usageCounters
}

// mark marks a key dirty, and queues it for the next flush if it was not.
func (r *Recorder) mark(ix *Index, e *Entry, c *usageCounters) {
	if c.dirty.Load() == 0 && c.dirty.CompareAndSwap(0, 1) && r != nil {
		r.markDirty(usageRef{ix: ix, num: e.num, gen: e.gen, id: e.ID})
	}
}

// use counts a valid call. A call from the client of the key's last call
// (the usual case) takes no lock and allocates nothing.
func (r *Recorder) use(ix *Index, e *Entry, now time.Time, ip netip.Addr, ua string) {
	c := ix.counters(e)
	if c == nil {
		return
	}
	n := now.UnixNano()
	m := uint64(n / int64(time.Minute))
	for {
		w := c.valid.Load()
		if w>>32 != m || uint32(w) == math.MaxUint32 {
			ix.newMinute(e.num, c, m)
			break
		}
		if c.valid.CompareAndSwap(w, w+1) {
			break
		}
	}
	if who := whoOf(ip, ua); c.who.Load() == who {
		// The same client as the last call's: only the time moves.
		for {
			at := c.usedAt.Load()
			if n < at || c.usedAt.CompareAndSwap(at, n) {
				break
			}
		}
	} else {
		ix.setWho(e.num, e.gen, n, who, ip, ua)
	}
	r.mark(ix, e, c)
}

// newMinute counts a valid call in minute m when the counter holds
// another minute: the one it holds moves to prev, and prev's to the side
// structure.
func (ix *Index) newMinute(num uint32, c *usageCounters, m uint64) {
	mu, side := ix.side.lock(num)
	defer mu.Unlock()
	for {
		w := c.valid.Load()
		if w>>32 == m && uint32(w) < math.MaxUint32 {
			if c.valid.CompareAndSwap(w, w+1) {
				return
			}
			continue
		}
		if !c.valid.CompareAndSwap(w, m<<32|1) {
			continue
		}
		if uint32(w) == 0 {
			return
		}
		p := c.prev.Load()
		switch {
		case uint32(p) == 0:
			c.prev.Store(w)
		case p>>32 == w>>32 && uint64(uint32(p))+uint64(uint32(w)) < math.MaxUint32:
			c.prev.Store(p + uint64(uint32(w)))
		default:
			c.prev.Store(w)
			getSide(side, num).addMinute(int64(p>>32), latchkey.CodeValid, int64(uint32(p)))
		}
		return
	}
}

// sideFor locks e's stripe and returns e's side structure, unless the key
// was deleted since e was read (then nil, and nothing is locked).
func (ix *Index) sideFor(e *Entry) (*sync.Mutex, *sideUsage) {
	mu, m := ix.side.lock(e.num)
	if ix.rec(e.num).gen.Load() != e.gen {
		mu.Unlock()
		return nil, nil
	}
	return mu, getSide(m, e.num)
}

func (r *Recorder) reject(ix *Index, e *Entry, now time.Time, ip netip.Addr, ua string, why latchkey.Code) {
	c := ix.counters(e)
	if c == nil {
		return
	}
	n := now.UnixNano()
	mu, su := ix.sideFor(e)
	if su == nil {
		return
	}
	c.rejects.Add(1)
	su.addMinute(n/int64(time.Minute), why, 1)
	if rr := &su.rare; n >= rr.rejAt {
		rr.rejAt, rr.rejIP, rr.rejUA, rr.rejWhy = n, ip, ua, why
	}
	mu.Unlock()
	r.mark(ix, e, c)
}

func (r *Recorder) wouldDeny(ix *Index, e *Entry, now time.Time, ip netip.Addr, ua string, why latchkey.Code) {
	c := ix.counters(e)
	if c == nil {
		return
	}
	n := now.UnixNano()
	mu, su := ix.sideFor(e)
	if su == nil {
		return
	}
	if rr := &su.rare; true {
		rr.wdN++
		if n >= rr.wdAt {
			rr.wdAt, rr.wdIP, rr.wdUA, rr.wdWhy = n, ip, ua, why
		}
	}
	mu.Unlock()
	r.mark(ix, e, c)
}

// snapshot copies a key's usage; take also zeroes what it copied, and
// holds back from the minute rows the valid calls of the newest minute
// not over by cut (the first minute not over; math.MaxInt64 holds
// nothing). A snapshot that does not take shows the held calls among its
// minutes. It returns false when the key was deleted since it was
// marked.
func (u usageRef) snapshot(take bool, cut int64) (usageSnap, bool) {
	var s usageSnap
	kr := u.ix.rec(u.num)
	sl := u.ix.usageOf(u.num)
	if sl == nil {
		// Never used: nothing to take (a key is marked dirty only
		// through its slot).
		sl = &usageSlot{}
	}
	c := &sl.usageCounters
	if take {
		c.dirty.Store(0)
	}
	mu, m := u.ix.side.lock(u.num)
	defer mu.Unlock()
	if kr.gen.Load() != u.gen {
		return s, false
	}
	var w uint64
	if take {
		for {
			w = c.valid.Load()
			if uint32(w) == 0 || c.valid.CompareAndSwap(w, w&^0xffffffff) {
				break
			}
		}
		s.usedAt = c.usedAt.Swap(0)
		s.rare.rejects = c.rejects.Swap(0)
	} else {
		w = c.valid.Load()
		s.usedAt = c.usedAt.Load()
		s.rare.rejects = c.rejects.Load()
	}
	p := c.prev.Load()
	if take {
		c.prev.Store(0)
	}
	su := m[u.num]
	if su != nil {
		s.mins = append(s.mins, su.mins...)
		rejects := s.rare.rejects
		s.rare = su.rare
		s.rare.rejects = rejects
		if take {
			su.mins = su.mins[:0]
			su.rare = rareUsage{}
		}
	}
	// The side's buckets come first: they are the oldest.
	tmp := sideUsage{mins: s.mins}
	for _, x := range [2]uint64{p, w} {
		if uint32(x) > 0 {
			tmp.addMinute(int64(x>>32), latchkey.CodeValid, int64(uint32(x)))
		}
	}
	s.mins = tmp.mins
	if s.usedAt != 0 {
		s.usedIP, s.usedUA = u.ix.client(sl, su)
	}
	for _, b := range s.mins {
		s.uses += b.counts[codeSlot(latchkey.CodeValid)]
	}
	s.held = c.held
	rows := s.mins
	if s.held != 0 || take && cut != math.MaxInt64 {
		rows = withHeld(s.mins, s.held)
		if take {
			c.held = holdOpen(rows, cut)
			s.holds = c.held != 0 && !sl.listed
			sl.listed = sl.listed || s.holds
		}
	}
	s.minutes = minuteCounts(rows)
	return s, true
}

// withHeld returns a copy of mins with the held calls held added.
func withHeld(mins []minuteBucket, held uint64) []minuteBucket {
	t := sideUsage{mins: slices.Clone(mins)}
	if held != 0 {
		t.addMinute(int64(held>>32), latchkey.CodeValid, int64(uint32(held)))
	}
	return t.mins
}

// holdOpen takes the valid calls of the newest minute not over by cut out
// of rows, and returns them as a held value (0: none).
func holdOpen(rows []minuteBucket, cut int64) uint64 {
	v := codeSlot(latchkey.CodeValid)
	best := -1
	for i, b := range rows {
		if b.minute >= cut && b.counts[v] > 0 && (best < 0 || b.minute > rows[best].minute) {
			best = i
		}
	}
	if best < 0 {
		return 0
	}
	b := &rows[best]
	if b.minute > math.MaxUint32 || b.counts[v] > math.MaxUint32 {
		return 0 // not held: written as it is
	}
	h := uint64(b.minute)<<32 | uint64(b.counts[v])
	b.counts[v] = 0
	return h
}

// Start flushes every interval until ctx ends or Stop is called.
func (r *Recorder) Start(ctx context.Context) {
	r.started.Store(true)
	go func() {
		defer close(r.stopped)
		t := time.NewTicker(r.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-r.done:
				return
			case <-t.C:
				if err := r.Flush(ctx); err != nil {
					r.log.Warn("usage flush failed; will retry", "err", err)
				}
			}
		}
	}()
}

// Stop ends the background flushing, if Start began it, and writes what is
// pending, in as many batches as it takes, the calls held for a minute not
// over included.
func (r *Recorder) Stop(ctx context.Context) error {
	r.final.Store(true)
	select {
	case <-r.done:
	default:
		close(r.done)
	}
	if r.started.Load() {
		select {
		case <-r.stopped:
		case <-ctx.Done():
		}
	}
	r.flushMu.Lock()
	r.requeueHeld() // counted below; no flush from now on holds calls
	r.flushMu.Unlock()
	// Bounded, in case verifications go on meanwhile.
	for range r.pendingBatches() + 1 {
		if err := r.Flush(ctx); err != nil {
			return err
		}
		if r.pendingBatches() == 0 {
			break
		}
	}
	return nil
}

// pendingBatches is how many flushes the keys now pending would take.
func (r *Recorder) pendingBatches() int {
	r.mu.Lock()
	n := len(r.dirty) + len(r.sweep)
	r.mu.Unlock()
	if r.MaxBatch <= 0 || n == 0 {
		return min(n, 1)
	}
	return (n + r.MaxBatch - 1) / r.MaxBatch
}

func ipString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().String()
}

// Flush writes pending usage now. On failure the usage is kept and merged
// with what arrives meanwhile, so nothing is lost while the store is down.
//
// Counts, last uses and refusals are written at once. The per-minute rows
// of valid calls are written once their minute is over: a key in steady
// use then writes its minute row once a minute instead of once a flush,
// and a minute row costs about as much as the key's own
// (docs/benchmarks.md, "Minute rows once a minute"). A key that holds
// such calls is queued again at the first flush of a later minute, and
// PendingUsage shows them meanwhile; Stop writes them whatever the time.
func (r *Recorder) Flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	if r.Index != nil {
		r.Index.gate.Lock()
		defer r.Index.gate.Unlock()
	}
	cut := int64(math.MaxInt64)
	if !r.final.Load() {
		cut = r.now().UnixNano() / int64(time.Minute)
	}
	if cut > r.heldCut {
		r.requeueHeld()
		r.heldCut = cut
	}
	refs := r.take()
	if len(refs) == 0 {
		return nil
	}
	batch := make([]latchkey.UsageUpdate, 0, len(refs))
	taken := make([]usageSnap, 0, len(refs))
	live := refs[:0]
	for _, u := range refs {
		snap, ok := u.snapshot(true, cut)
		if !ok {
			continue
		}
		if snap.holds {
			r.held = append(r.held, u)
		}
		if snap.empty() {
			continue
		}
		batch = append(batch, snap.update(u.id))
		taken = append(taken, snap)
		live = append(live, u)
	}
	// One transaction per chunk: a management write waiting for the
	// store's writer waits for one chunk, not for the whole batch.
	chunk := r.TxRows
	if chunk <= 0 {
		chunk = len(batch)
	}
	for start := 0; start < len(batch); start += chunk {
		end := min(start+chunk, len(batch))
		if err := r.sink.RecordUsage(ctx, batch[start:end]); err != nil {
			// This chunk and the ones after it were not written.
			r.restore(live[start:], taken[start:])
			return err
		}
	}
	return nil
}

// take returns the keys the next flush writes, in ID order: all pending
// keys when they are at most MaxBatch; otherwise the next MaxBatch of a
// sweep through them in ID order. A sweep is made of the keys pending
// when it starts; keys marked during it wait for the next. A key then
// waits at most two sweeps (before, in arrival order, one), but a flush
// writes keys next to each other in ID instead of keys spread over the
// whole table: on SQLite, where a key's usage row shares its page with
// about 30 keys next to it in ID, a page is written once for its keys in
// the flush, not once per key (see docs/benchmarks.md, "Usage flush in ID
// order"). Sorting a sweep costs about log2(n) comparisons a key, once
// per sweep.
// Called under flushMu; the sort is outside r.mu, which marking a key
// takes.
func (r *Recorder) take() []usageRef {
	r.mu.Lock()
	if len(r.sweep) == 0 && len(r.dirty) > 0 {
		sweep := r.dirty
		r.dirty = nil
		r.mu.Unlock()
		slices.SortFunc(sweep, func(a, b usageRef) int { return strings.Compare(a.id, b.id) })
		r.mu.Lock()
		r.sweep = sweep
	}
	defer r.mu.Unlock()
	n := len(r.sweep)
	if r.MaxBatch > 0 {
		n = min(n, r.MaxBatch)
	}
	refs := r.sweep[:n:n]
	if r.sweep = r.sweep[n:]; len(r.sweep) == 0 {
		r.sweep = nil
	}
	return refs
}

// restore puts snapshots that could not be written back into their keys'
// counters, merged with what arrived meanwhile, and marks the keys dirty
// again.
func (r *Recorder) restore(live []usageRef, taken []usageSnap) {
	for i, u := range live {
		s := &taken[i]
		kr := u.ix.rec(u.num)
		sl := u.ix.usageSlotOf(u.num)
		c := &sl.usageCounters
		mu, m := u.ix.side.lock(u.num)
		if kr.gen.Load() != u.gen {
			mu.Unlock()
			continue
		}
		su := getSide(m, u.num)
		c.held = s.held // the rows written from it were not
		for _, b := range s.mins {
			for j, n := range b.counts {
				if n > 0 {
					su.addMinute(b.minute, codeSlots[j], n)
				}
			}
		}
		for s.usedAt != 0 {
			at := c.usedAt.Load()
			if s.usedAt <= at {
				break
			}
			if c.usedAt.CompareAndSwap(at, s.usedAt) {
				// The kept call is the newest: its client is the last.
				sl.ip, sl.hasIP = s.usedIP.As16(), s.usedIP.IsValid()
				c.ua, su.ua = 0, ""
				if s.usedUA != "" {
					if c.ua = u.ix.side.uaID(s.usedUA); c.ua == 0 {
						su.ua = s.usedUA
					}
				}
				c.who.Store(0)
				break
			}
		}
		c.rejects.Add(s.rare.rejects)
		if sr := &s.rare; *sr != (rareUsage{}) {
			rr := &su.rare
			if sr.rejAt > rr.rejAt {
				rr.rejAt, rr.rejIP, rr.rejUA, rr.rejWhy = sr.rejAt, sr.rejIP, sr.rejUA, sr.rejWhy
			}
			rr.wdN += sr.wdN
			if sr.wdAt > rr.wdAt {
				rr.wdAt, rr.wdIP, rr.wdUA, rr.wdWhy = sr.wdAt, sr.wdIP, sr.wdUA, sr.wdWhy
			}
		}
		mu.Unlock()
		r.remark(u)
	}
}

// requeueHeld queues the keys that held calls for the next sweep, once
// the minute changed since: their minute rows are due. Called under
// flushMu.
func (r *Recorder) requeueHeld() {
	for _, u := range r.held {
		mu, _ := u.ix.side.lock(u.num)
		live := u.ix.rec(u.num).gen.Load() == u.gen
		if live {
			u.ix.usageSlotOf(u.num).listed = false
		}
		mu.Unlock()
		if live {
			r.remark(u)
		}
	}
	clear(r.held)
	r.held = r.held[:0]
}

// remark queues a key for the next flush again, unless a call already
// did.
func (r *Recorder) remark(u usageRef) {
	c := &u.ix.usageSlotOf(u.num).usageCounters
	if c.dirty.Load() == 0 && c.dirty.CompareAndSwap(0, 1) {
		r.markDirty(u)
	}
}

// update is the snapshot as the store takes it.
func (s *usageSnap) update(id string) latchkey.UsageUpdate {
	u := latchkey.UsageUpdate{AccessKeyID: id, Uses: s.uses, Rejections: s.rare.rejects, WouldDeny: s.rare.wdN, Minutes: s.minutes}
	if s.usedAt != 0 {
		u.LastUsed = &latchkey.Use{At: time.Unix(0, s.usedAt).UTC().Truncate(time.Microsecond), IP: ipString(s.usedIP), UserAgent: truncateUA(s.usedUA)}
	}
	if r := &s.rare; r.rejAt != 0 {
		u.LastRejected = &latchkey.Rejection{At: time.Unix(0, r.rejAt).UTC().Truncate(time.Microsecond), IP: ipString(r.rejIP), UserAgent: truncateUA(r.rejUA), Reason: r.rejWhy}
	}
	if r := &s.rare; r.wdAt != 0 {
		u.LastWouldDeny = &latchkey.Rejection{At: time.Unix(0, r.wdAt).UTC().Truncate(time.Microsecond), IP: ipString(r.wdIP), UserAgent: truncateUA(r.wdUA), Reason: r.wdWhy}
	}
	return u
}

// ReadUsage runs fn, which reads stored usage and then Pending usage, so
// that no flush moves counts from memory to the store in between: each use
// is seen exactly once. fn must not call ReadUsage.
func (ix *Index) ReadUsage(fn func()) {
	ix.gate.RLock()
	defer ix.gate.RUnlock()
	fn()
}

// Pending returns the usage of key id not yet written to the store, so that
// reads can show it at once.
func (ix *Index) Pending(id string) (uses, rejects int64, lastUsed *latchkey.Use, lastRejected *latchkey.Rejection) {
	p := ix.PendingUsage(id)
	return p.Uses, p.Rejections, p.LastUsed, p.LastRejected
}

// PendingUsage returns the usage of key id not yet written to the store:
// its Minutes include the calls held for a minute not over, which the
// stored use count already has (see Recorder.Flush).
func (ix *Index) PendingUsage(id string) latchkey.UsageUpdate {
	ix.mu.Lock()
	num := ix.numOf(id)
	var gen uint32
	if num != 0 {
		gen = ix.rec(num).gen.Load()
	}
	ix.mu.Unlock()
	if num == 0 {
		return latchkey.UsageUpdate{AccessKeyID: id}
	}
	s, ok := usageRef{ix: ix, num: num, gen: gen, id: id}.snapshot(false, 0)
	if !ok {
		return latchkey.UsageUpdate{AccessKeyID: id}
	}
	return s.update(id)
}

// MaxUserAgentLen bounds what is stored of a user agent.
const MaxUserAgentLen = 256

// truncateUA makes a user agent safe to store: cleaned (see
// latchkey.CleanText) and cut to MaxUserAgentLen bytes. It runs at flush
// and read time, not on the hot path.
func truncateUA(s string) string { return latchkey.CleanText(s, MaxUserAgentLen) }
