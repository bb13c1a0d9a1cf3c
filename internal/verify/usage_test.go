package verify_test

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/verify"
)

// memSink records the batches it is given; fail makes the next calls fail.
type memSink struct {
	mu      sync.Mutex
	batches [][]latchkey.UsageUpdate
	fail    int // how many calls still fail
	okFirst int // with fail: how many calls succeed before the failing ones
}

func (s *memSink) RecordUsage(ctx context.Context, batch []latchkey.UsageUpdate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.okFirst > 0 {
		s.okFirst--
	} else if s.fail > 0 {
		s.fail--
		return errors.New("store down")
	}
	s.batches = append(s.batches, slices.Clone(batch))
	return nil
}

func (s *memSink) take() [][]latchkey.UsageUpdate {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.batches
	s.batches = nil
	return b
}

// sortBatch orders a batch by key ID, for comparison.
func sortBatch(b []latchkey.UsageUpdate) []latchkey.UsageUpdate {
	slices.SortFunc(b, func(x, y latchkey.UsageUpdate) int { return strings.Compare(x.AccessKeyID, y.AccessKeyID) })
	return b
}

// bench is a verifier over an index with a settable clock.
type rig struct {
	ix   *verify.Index
	rec  *verify.Recorder
	sink *memSink
	v    *verify.Verifier
	now  time.Time
}

func newRig(t *testing.T, keys ...testKey) *rig {
	t.Helper()
	r := &rig{ix: verify.NewIndex(), sink: &memSink{}, now: t0}
	for _, k := range keys {
		r.ix.Put(k.AccessKey)
	}
	r.rec = verify.NewRecorder(r.sink, time.Hour, slog.New(slog.DiscardHandler))
	r.v = verify.New(r.ix, r.rec)
	r.v.Now = func() time.Time { return r.now }
	return r
}

func (r *rig) call(t *testing.T, k testKey, at time.Time, ip, ua string, want latchkey.Code) {
	t.Helper()
	r.now = at
	req := verify.Request{Secret: k.secret, UserAgent: ua}
	if ip != "" {
		req.IP = netip.MustParseAddr(ip)
	}
	if got := r.v.Verify(&req).Code; got != want {
		t.Fatalf("Verify = %s, want %s", got, want)
	}
}

func TestRecorderBatch(t *testing.T) {
	a := newKey(t, "acme", "billing")
	b := newKey(t, "acme", "billing", inactive)
	idle := newKey(t, "acme", "orders")
	r := newRig(t, a, b, idle)
	// Times out of order: the newest wins, whatever order the calls land.
	r.call(t, a, t0.Add(2*time.Second), "192.0.2.2", "second", latchkey.CodeValid)
	r.call(t, a, t0.Add(1*time.Second), "192.0.2.1", "first", latchkey.CodeValid)
	r.call(t, a, t0.Add(3*time.Second), "::ffff:192.0.2.3", "third", latchkey.CodeValid)
	r.call(t, b, t0.Add(5*time.Second), "2001:db8::5", "late", latchkey.CodeInactive)
	r.call(t, b, t0.Add(4*time.Second), "2001:db8::4", "early", latchkey.CodeInactive)

	uses, rejects, used, rejected := r.ix.Pending(a.ID)
	if uses != 3 || rejects != 0 || used == nil || used.UserAgent != "third" || rejected != nil {
		t.Errorf("Pending(a) = %d, %d, %+v, %+v", uses, rejects, used, rejected)
	}
	if err := r.rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := r.sink.take()
	if len(got) != 1 {
		t.Fatalf("%d batches, want 1", len(got))
	}
	want := sortBatch([]latchkey.UsageUpdate{
		{AccessKeyID: a.ID, Uses: 3, LastUsed: &latchkey.Use{At: t0.Add(3 * time.Second), IP: "192.0.2.3", UserAgent: "third"},
			Minutes: []latchkey.UsageCount{{At: t0.Truncate(time.Minute), Code: latchkey.CodeValid, Count: 3}}},
		{AccessKeyID: b.ID, Rejections: 2, LastRejected: &latchkey.Rejection{At: t0.Add(5 * time.Second), IP: "2001:db8::5", UserAgent: "late", Reason: latchkey.CodeInactive},
			Minutes: []latchkey.UsageCount{{At: t0.Truncate(time.Minute), Code: latchkey.CodeInactive, Count: 2}}},
	})
	if diff := cmp.Diff(want, sortBatch(got[0])); diff != "" {
		t.Errorf("batch (-want +got):\n%s", diff)
	}
	if uses, _, used, _ := r.ix.Pending(a.ID); uses != 0 || used != nil {
		t.Errorf("after the flush, Pending(a) = %d, %+v", uses, used)
	}

	// Nothing new: no write at all.
	if err := r.rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := r.sink.take(); len(got) != 0 {
		t.Errorf("flush with nothing pending wrote %d batches", len(got))
	}
}

func TestRecorderLongUserAgent(t *testing.T) {
	a := newKey(t, "acme", "billing")
	r := newRig(t, a)
	ua := strings.Repeat("a", verify.MaxUserAgentLen-1) + "é" // the cut falls inside é
	r.call(t, a, t0, "", ua, latchkey.CodeValid)
	if err := r.rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := r.sink.take()[0][0].LastUsed
	if got.UserAgent != strings.Repeat("a", verify.MaxUserAgentLen-1) || got.IP != "" {
		t.Errorf("user agent %d bytes, ip %q", len(got.UserAgent), got.IP)
	}
}

func TestRecorderFailingSinkKeepsUsage(t *testing.T) {
	a := newKey(t, "acme", "billing")
	r := newRig(t, a)
	r.sink.fail = 2
	r.call(t, a, t0.Add(2*time.Second), "192.0.2.2", "newest", latchkey.CodeValid)
	r.call(t, a, t0, "192.0.2.1", "old", latchkey.CodeValid)
	if err := r.rec.Flush(t.Context()); err == nil {
		t.Fatal("Flush with the store down returned nil")
	}
	// Usage that arrives while the store is down joins what is kept.
	r.call(t, a, t0.Add(time.Second), "192.0.2.3", "between", latchkey.CodeValid)
	if uses, _, used, _ := r.ix.Pending(a.ID); uses != 3 || used.UserAgent != "newest" {
		t.Errorf("after a failed flush, Pending = %d uses, last %+v", uses, used)
	}
	if err := r.rec.Flush(t.Context()); err == nil {
		t.Fatal("second Flush with the store down returned nil")
	}
	r.call(t, a, t0.Add(3*time.Second), "192.0.2.4", "after", latchkey.CodeValid)
	if err := r.rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := [][]latchkey.UsageUpdate{{{AccessKeyID: a.ID, Uses: 4, LastUsed: &latchkey.Use{At: t0.Add(3 * time.Second), IP: "192.0.2.4", UserAgent: "after"},
		Minutes: []latchkey.UsageCount{{At: t0.Truncate(time.Minute), Code: latchkey.CodeValid, Count: 4}}}}}
	if diff := cmp.Diff(want, r.sink.take()); diff != "" {
		t.Errorf("batches once the store is back (-want +got):\n%s", diff)
	}
}

func TestRecorderFailingSinkKeepsNewest(t *testing.T) {
	a := newKey(t, "acme", "billing")
	r := newRig(t, a)
	r.sink.fail = 1
	r.call(t, a, t0.Add(2*time.Second), "192.0.2.2", "kept", latchkey.CodeValid)
	if err := r.rec.Flush(t.Context()); err == nil {
		t.Fatal("want an error")
	}
	// An older use arriving after the failure does not replace the newer one kept.
	r.call(t, a, t0.Add(time.Second), "192.0.2.1", "older", latchkey.CodeValid)
	if err := r.rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := r.sink.take()
	if len(got) != 1 || got[0][0].Uses != 2 || got[0][0].LastUsed.UserAgent != "kept" {
		t.Errorf("batches %+v", got)
	}
}

func TestRecorderDeletedKeyNotWritten(t *testing.T) {
	a := newKey(t, "acme", "billing")
	gone := newKey(t, "acme", "billing")
	r := newRig(t, a, gone)
	r.call(t, a, t0, "", "", latchkey.CodeValid)
	r.call(t, gone, t0, "", "", latchkey.CodeValid)
	r.ix.Delete(gone.ID)
	if err := r.rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, b := range r.sink.take() {
		for _, u := range b {
			if u.AccessKeyID == gone.ID {
				t.Errorf("usage of a deleted key was written: %+v", u)
			}
		}
	}
	if uses, _, _, _ := r.ix.Pending(gone.ID); uses != 0 {
		t.Errorf("deleted key has %d pending uses", uses)
	}
}

func TestRecorderUsageSurvivesReplace(t *testing.T) {
	a := newKey(t, "acme", "billing")
	r := newRig(t, a)
	r.call(t, a, t0, "", "", latchkey.CodeValid)
	changed := *a.AccessKey
	changed.Status = latchkey.StatusInactive
	r.ix.Put(&changed)
	r.call(t, a, t0.Add(time.Second), "", "", latchkey.CodeInactive)
	if err := r.rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := r.sink.take()
	if len(got) != 1 || len(got[0]) != 1 || got[0][0].Uses != 1 || got[0][0].Rejections != 1 {
		t.Errorf("batches %+v: want one update with one use and one rejection", got)
	}
}

func TestRecorderStopFlushes(t *testing.T) {
	a := newKey(t, "acme", "billing")
	r := newRig(t, a)
	r.rec.Start(t.Context())
	r.call(t, a, t0, "192.0.2.1", "ua", latchkey.CodeValid)
	if err := r.rec.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := r.sink.take()
	if len(got) != 1 || got[0][0].Uses != 1 {
		t.Errorf("Stop wrote %+v, want the one pending use", got)
	}
	// Stopping twice is harmless.
	if err := r.rec.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestRecorderStopWithoutStart: a recorder that never ran its loop still
// flushes on Stop, at once.
func TestRecorderStopWithoutStart(t *testing.T) {
	a := newKey(t, "acme", "billing")
	r := newRig(t, a)
	r.call(t, a, t0, "", "", latchkey.CodeValid)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := r.rec.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Stop waited for its context to end")
	}
	if got := r.sink.take(); len(got) != 1 {
		t.Errorf("Stop wrote %d batches, want 1", len(got))
	}
}

// TestRecorderConcurrent: uses from many goroutines, with flushes and
// replacements of the entry in between, add up exactly.
func TestRecorderConcurrent(t *testing.T) {
	a := newKey(t, "acme", "billing")
	r := newRig(t, a)
	r.v.Now = func() time.Time { return t0 }
	const workers, calls = 8, 500
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			req := verify.Request{Secret: a.secret}
			for range calls {
				r.v.Verify(&req)
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			if err := r.rec.Flush(context.Background()); err != nil {
				t.Error(err)
			}
			changed := *a.AccessKey
			changed.Description = "touched"
			r.ix.Put(&changed)
		}
	})
	wg.Wait()
	if err := r.rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, b := range r.sink.take() {
		for _, u := range b {
			total += u.Uses
		}
	}
	if total != workers*calls {
		t.Errorf("%d uses written, want %d", total, workers*calls)
	}
}

// TestRecorderWithStore: batches merge into the SQLite store: counts add up
// across flushes and the newest time wins even when it was written first.
func TestRecorderWithStore(t *testing.T) {
	store := openStore(t)
	a := seedKey(t, store, "acme", "billing")
	ix := verify.NewIndex()
	if _, err := ix.Sync(t.Context(), store); err != nil {
		t.Fatal(err)
	}
	rec := verify.NewRecorder(store, time.Hour, slog.New(slog.DiscardHandler))
	v := verify.New(ix, rec)
	call := func(at time.Time, ua string) {
		t.Helper()
		v.Now = func() time.Time { return at }
		if res := v.Verify(&verify.Request{Secret: a.secret, UserAgent: ua}); !res.Valid() {
			t.Fatalf("Verify = %s", res.Code)
		}
	}
	call(t0.Add(time.Minute), "newer")
	call(t0.Add(time.Minute), "newest at the same time")
	if err := rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	call(t0, "older, flushed later")
	if err := rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	k := findKey(t, store, a.ID)
	if k.UseCount != 3 {
		t.Errorf("use count %d, want 3", k.UseCount)
	}
	if want := (&latchkey.Use{At: t0.Add(time.Minute), UserAgent: "newest at the same time"}); !cmp.Equal(want, k.LastUsed) {
		t.Errorf("last used %+v, want %+v", k.LastUsed, want)
	}
}

// openStore opens a SQLite store in a temporary directory.
func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latchkey.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// seedKey writes an account, an application and a key straight to the store.
func seedKey(t *testing.T, s latchkey.Store, account, app string, mod ...func(*latchkey.AccessKey)) testKey {
	t.Helper()
	k := newKey(t, account, app, mod...)
	err := s.Update(t.Context(), func(tx latchkey.Tx) error {
		if _, err := tx.FindAccount(t.Context(), account); latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
			if err := tx.CreateAccount(t.Context(), &latchkey.Account{Name: account, CreatedAt: t0}); err != nil {
				return err
			}
		}
		if _, err := tx.FindApplication(t.Context(), account, app); latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
			if err := tx.CreateApplication(t.Context(), &latchkey.Application{Account: account, Name: app, CreatedAt: t0}); err != nil {
				return err
			}
		}
		return tx.CreateAccessKey(t.Context(), k.AccessKey)
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func findKey(t *testing.T, s latchkey.Store, id string) *latchkey.AccessKey {
	t.Helper()
	var k *latchkey.AccessKey
	if err := s.View(t.Context(), func(tx latchkey.Tx) (err error) {
		k, err = tx.FindAccessKey(t.Context(), id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestRecorderHoldsOpenMinute: a flush writes a key's use count and last
// use at once, but the minute row of its valid calls only once that
// minute is over; until then PendingUsage shows those calls, the key
// stays pending, and refusals' minute rows are not held. A failed write
// holds back exactly what it held before; Stop writes what is held.
func TestRecorderHoldsOpenMinute(t *testing.T) {
	a := newKey(t, "acme", "billing")
	off := newKey(t, "acme", "billing", inactive)
	r := newRig(t, a, off)
	var flushAt time.Time
	verify.SetRecorderClock(r.rec, func() time.Time { return flushAt })
	m := t0.Truncate(time.Minute)
	at := func(s int) time.Time { return m.Add(time.Duration(s) * time.Second) }
	valid := func(s, n int) latchkey.UsageCount {
		return latchkey.UsageCount{At: at(s).Truncate(time.Minute), Code: latchkey.CodeValid, Count: int64(n)}
	}
	use := func(s int) *latchkey.Use { return &latchkey.Use{At: at(s), IP: "192.0.2.1", UserAgent: "app/1"} }
	flush := func(s int, wantErr bool, want []latchkey.UsageUpdate, wantPending []latchkey.UsageCount) {
		t.Helper()
		flushAt = at(s)
		if err := r.rec.Flush(t.Context()); (err != nil) != wantErr {
			t.Fatalf("flush at +%ds: error %v, want one: %t", s, err, wantErr)
		}
		var got []latchkey.UsageUpdate
		for _, b := range r.sink.take() {
			got = append(got, b...)
		}
		if diff := cmp.Diff(want, sortBatch(got)); diff != "" {
			t.Errorf("flush at +%ds wrote (-want +got):\n%s", s, diff)
		}
		pending := r.ix.PendingUsage(a.ID).Minutes
		slices.SortFunc(pending, func(x, y latchkey.UsageCount) int { return x.At.Compare(y.At) })
		if diff := cmp.Diff(wantPending, pending); diff != "" {
			t.Errorf("after the flush at +%ds, pending minutes (-want +got):\n%s", s, diff)
		}
	}

	for range 3 {
		r.call(t, a, at(10), "192.0.2.1", "app/1", latchkey.CodeValid)
	}
	flush(20, false, []latchkey.UsageUpdate{{AccessKeyID: a.ID, Uses: 3, LastUsed: use(10)}}, []latchkey.UsageCount{valid(10, 3)})
	flush(30, false, nil, []latchkey.UsageCount{valid(10, 3)}) // nothing new; still held

	r.call(t, a, at(40), "192.0.2.1", "app/1", latchkey.CodeValid)
	r.call(t, off, at(45), "192.0.2.1", "app/1", latchkey.CodeInactive)
	flush(50, false, sortBatch([]latchkey.UsageUpdate{
		{AccessKeyID: a.ID, Uses: 1, LastUsed: use(40)},
		{AccessKeyID: off.ID, Rejections: 1, LastRejected: &latchkey.Rejection{At: at(45), IP: "192.0.2.1", UserAgent: "app/1", Reason: latchkey.CodeInactive},
			Minutes: []latchkey.UsageCount{{At: m, Code: latchkey.CodeInactive, Count: 1}}},
	}), []latchkey.UsageCount{valid(40, 4)})

	// The minute is over: its row, with nothing else.
	flush(61, false, []latchkey.UsageUpdate{{AccessKeyID: a.ID, Minutes: []latchkey.UsageCount{valid(40, 4)}}}, nil)
	flush(70, false, nil, nil)

	// A write that fails while a minute row is due and another minute's
	// calls are being held.
	r.call(t, a, at(80), "192.0.2.1", "app/1", latchkey.CodeValid)
	flush(90, false, []latchkey.UsageUpdate{{AccessKeyID: a.ID, Uses: 1, LastUsed: use(80)}}, []latchkey.UsageCount{valid(80, 1)})
	r.call(t, a, at(125), "192.0.2.1", "app/1", latchkey.CodeValid)
	r.sink.fail = 1
	flush(126, true, nil, []latchkey.UsageCount{valid(80, 1), valid(125, 1)})
	flush(127, false, []latchkey.UsageUpdate{{AccessKeyID: a.ID, Uses: 1, LastUsed: use(125), Minutes: []latchkey.UsageCount{valid(80, 1)}}},
		[]latchkey.UsageCount{valid(125, 1)})

	// Stop writes the held calls of the minute not over.
	flushAt = at(128)
	if err := r.rec.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := [][]latchkey.UsageUpdate{{{AccessKeyID: a.ID, Minutes: []latchkey.UsageCount{valid(125, 1)}}}}
	if diff := cmp.Diff(want, r.sink.take()); diff != "" {
		t.Errorf("Stop wrote (-want +got):\n%s", diff)
	}
}

// TestRecorderStopWritesHeld: Stop writes every key's held calls, also
// when they take more flushes than Stop would count from the keys
// pending alone.
func TestRecorderStopWritesHeld(t *testing.T) {
	keys := []testKey{newKey(t, "acme", "billing"), newKey(t, "acme", "billing"), newKey(t, "acme", "billing")}
	r := newRig(t, keys...)
	r.rec.MaxBatch = 1
	verify.SetRecorderClock(r.rec, func() time.Time { return t0.Add(30 * time.Second) })
	for _, k := range keys {
		r.call(t, k, t0.Add(10*time.Second), "", "", latchkey.CodeValid)
	}
	for range keys {
		if err := r.rec.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range r.sink.take() {
		for _, u := range b {
			if u.Uses != 1 || len(u.Minutes) != 0 {
				t.Errorf("flush in the minute wrote %+v, want one use and no minute row", u)
			}
		}
	}
	if err := r.rec.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	rows := map[string]int64{}
	for _, b := range r.sink.take() {
		for _, u := range b {
			for _, m := range u.Minutes {
				rows[u.AccessKeyID] += m.Count
			}
		}
	}
	for _, k := range keys {
		if rows[k.ID] != 1 {
			t.Errorf("Stop wrote %d calls in minute rows of key %s, want 1", rows[k.ID], k.ID)
		}
	}
}
