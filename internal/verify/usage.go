package verify

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchkey/latchkey"
)

// usageCell accumulates one key's usage between flushes. It is carried over
// when the key's entry is replaced. What only refused calls and report-only
// restrictions produce is in rare, allocated on the first of them, so that
// the cell of a key that only ever succeeds stays small.
type usageCell struct {
	id      string
	deleted atomic.Bool

	mu     sync.Mutex
	dirty  bool
	uses   int64
	usedAt int64 // Unix nanoseconds; 0 = none since last flush
	usedIP netip.Addr
	usedUA string
	mins   []minuteBucket // calls per minute and code since the last flush
	rare   *rareUsage
}

// rareUsage is a cell's record of refusals and would-be refusals.
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

func (c *usageCell) rareLocked() *rareUsage {
	if c.rare == nil {
		c.rare = &rareUsage{}
	}
	return c.rare
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

// countMinute adds one call to the bucket of now's minute. The slice keeps
// its capacity across flushes, so a busy key does not allocate.
func (c *usageCell) countMinute(now int64, code latchkey.Code) {
	m := now / int64(time.Minute)
	if n := len(c.mins); n > 0 && c.mins[n-1].minute == m {
		c.mins[n-1].counts[codeSlot(code)]++
		return
	}
	c.mins = append(c.mins, minuteBucket{minute: m})
	c.mins[len(c.mins)-1].counts[codeSlot(code)]++
}

// addMinute adds n calls to a minute's bucket, wherever it is in the slice
// (used when a failed flush puts counts back).
func (c *usageCell) addMinute(m int64, code latchkey.Code, n int64) {
	for i := range c.mins {
		if c.mins[i].minute == m {
			c.mins[i].counts[codeSlot(code)] += n
			return
		}
	}
	c.mins = append(c.mins, minuteBucket{minute: m})
	c.mins[len(c.mins)-1].counts[codeSlot(code)] += n
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

// usageSnap is a copy of a cell's counters taken at flush.
type usageSnap struct {
	uses    int64
	usedAt  int64
	usedIP  netip.Addr
	usedUA  string
	rare    rareUsage
	minutes []latchkey.UsageCount
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
	dirty []*usageCell

	flushMu sync.Mutex // one flush at a time
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
	return &Recorder{sink: sink, log: log, interval: interval, MaxBatch: DefaultMaxBatch, TxRows: DefaultTxRows, done: make(chan struct{}), stopped: make(chan struct{})}
}

// DefaultMaxBatch is a new Recorder's MaxBatch: with the default interval of
// a second, at most 2,000 key rows a second, a few percent of one core for
// SQLite, however many keys are in use.
const DefaultMaxBatch = 2000

// DefaultTxRows is a new Recorder's TxRows: a full flush of DefaultMaxBatch
// keys is 8 transactions of a few milliseconds each.
const DefaultTxRows = 250

func (r *Recorder) markDirty(c *usageCell) {
	r.mu.Lock()
	r.dirty = append(r.dirty, c)
	r.mu.Unlock()
}

func (r *Recorder) use(c *usageCell, now time.Time, ip netip.Addr, ua string) {
	n := now.UnixNano()
	c.mu.Lock()
	c.uses++
	c.countMinute(n, latchkey.CodeValid)
	if n >= c.usedAt {
		c.usedAt, c.usedIP, c.usedUA = n, ip, ua
	}
	mark := !c.dirty
	c.dirty = true
	c.mu.Unlock()
	if mark && r != nil {
		r.markDirty(c)
	}
}

func (r *Recorder) reject(c *usageCell, now time.Time, ip netip.Addr, ua string, why latchkey.Code) {
	n := now.UnixNano()
	c.mu.Lock()
	rr := c.rareLocked()
	rr.rejects++
	c.countMinute(n, why)
	if n >= rr.rejAt {
		rr.rejAt, rr.rejIP, rr.rejUA, rr.rejWhy = n, ip, ua, why
	}
	mark := !c.dirty
	c.dirty = true
	c.mu.Unlock()
	if mark && r != nil {
		r.markDirty(c)
	}
}

func (r *Recorder) wouldDeny(c *usageCell, now time.Time, ip netip.Addr, ua string, why latchkey.Code) {
	n := now.UnixNano()
	c.mu.Lock()
	rr := c.rareLocked()
	rr.wdN++
	if n >= rr.wdAt {
		rr.wdAt, rr.wdIP, rr.wdUA, rr.wdWhy = n, ip, ua, why
	}
	mark := !c.dirty
	c.dirty = true
	c.mu.Unlock()
	if mark && r != nil {
		r.markDirty(c)
	}
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
// pending, in as many batches as it takes.
func (r *Recorder) Stop(ctx context.Context) error {
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
	n := len(r.dirty)
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
func (r *Recorder) Flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	if r.Index != nil {
		r.Index.gate.Lock()
		defer r.Index.gate.Unlock()
	}
	r.mu.Lock()
	cells := r.dirty
	r.dirty = nil
	if r.MaxBatch > 0 && len(cells) > r.MaxBatch {
		// The oldest first; the rest wait, still marked dirty.
		r.dirty = append(make([]*usageCell, 0, len(cells)-r.MaxBatch), cells[r.MaxBatch:]...)
		cells = cells[:r.MaxBatch]
	}
	r.mu.Unlock()
	if len(cells) == 0 {
		return nil
	}
	batch := make([]latchkey.UsageUpdate, 0, len(cells))
	taken := make([]usageSnap, 0, len(cells))
	live := cells[:0]
	for _, c := range cells {
		c.mu.Lock()
		snap := usageSnap{uses: c.uses, usedAt: c.usedAt, usedIP: c.usedIP, usedUA: c.usedUA, minutes: minuteCounts(c.mins)}
		if c.rare != nil {
			snap.rare = *c.rare
			*c.rare = rareUsage{}
		}
		c.mins = c.mins[:0]
		c.uses, c.usedAt, c.usedUA = 0, 0, ""
		c.dirty = false
		c.mu.Unlock()
		if c.deleted.Load() {
			continue
		}
		batch = append(batch, snap.update(c.id))
		taken = append(taken, snap)
		live = append(live, c)
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

// restore puts snapshots that could not be written back into their cells,
// merged with what arrived meanwhile, and marks the cells dirty again.
func (r *Recorder) restore(live []*usageCell, taken []usageSnap) {
	for i, c := range live {
		s := &taken[i]
		c.mu.Lock()
		c.uses += s.uses
		if s.usedAt > c.usedAt {
			c.usedAt, c.usedIP, c.usedUA = s.usedAt, s.usedIP, s.usedUA
		}
		for _, m := range s.minutes {
			c.addMinute(m.At.UnixNano()/int64(time.Minute), m.Code, m.Count)
		}
		if sr := &s.rare; *sr != (rareUsage{}) {
			rr := c.rareLocked()
			rr.rejects += sr.rejects
			if sr.rejAt > rr.rejAt {
				rr.rejAt, rr.rejIP, rr.rejUA, rr.rejWhy = sr.rejAt, sr.rejIP, sr.rejUA, sr.rejWhy
			}
			rr.wdN += sr.wdN
			if sr.wdAt > rr.wdAt {
				rr.wdAt, rr.wdIP, rr.wdUA, rr.wdWhy = sr.wdAt, sr.wdIP, sr.wdUA, sr.wdWhy
			}
		}
		mark := !c.dirty
		c.dirty = true
		c.mu.Unlock()
		if mark {
			r.markDirty(c)
		}
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

// PendingUsage returns the usage of key id not yet written to the store.
func (ix *Index) PendingUsage(id string) latchkey.UsageUpdate {
	e := ix.Get(id)
	if e == nil {
		return latchkey.UsageUpdate{AccessKeyID: id}
	}
	c := e.usage.Load()
	if c == nil {
		return latchkey.UsageUpdate{AccessKeyID: id}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := usageSnap{uses: c.uses, usedAt: c.usedAt, usedIP: c.usedIP, usedUA: c.usedUA, minutes: minuteCounts(c.mins)}
	if c.rare != nil {
		s.rare = *c.rare
	}
	return s.update(id)
}

// MaxUserAgentLen bounds what is stored of a user agent.
const MaxUserAgentLen = 256

// truncateUA makes a user agent safe to store: cleaned (see
// latchkey.CleanText) and cut to MaxUserAgentLen bytes. It runs at flush
// and read time, not on the hot path.
func truncateUA(s string) string { return latchkey.CleanText(s, MaxUserAgentLen) }
