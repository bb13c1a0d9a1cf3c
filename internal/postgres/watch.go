package postgres

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/latchkey/latchkey"
)

// Channel is the notification channel on which the schema's triggers send
// the ID of every access key whose indexed state changed. The payload "*"
// asks every listener for a full resync (NOTIFY latchkey_keys, '*').
const Channel = "latchkey_keys"

// resyncAll is the payload that asks for a full resync.
const resyncAll = "*"

// Index is what a Watcher keeps current. *verify.Index implements it.
type Index interface {
	// Reload replaces one key's entry with what load reads, unless the
	// process changed that key itself while load ran.
	Reload(id string, load func() (*latchkey.AccessKey, error)) error
	Sync(ctx context.Context, store latchkey.Store) (int, error)
}

// WatchOptions configure a Watcher. The zero value is usable.
type WatchOptions struct {
	// Resync is how often the whole index is reloaded from the database,
	// repairing anything a lost notification missed. Default 30s.
	Resync time.Duration
	// Log receives reconnects and failures. Default: discard.
	Log *slog.Logger
	// MaxRetryDelay bounds the wait between reconnection attempts, which
	// starts at 100ms and doubles. Default 10s.
	MaxRetryDelay time.Duration
}

// DefaultResync is the resync interval when WatchOptions.Resync is zero.
const DefaultResync = 30 * time.Second

// Watcher is the change feed of one replica: it LISTENs on Channel over a
// connection of its own and, for every notified key, re-reads the key and
// puts it into the index or deletes it from there. It reloads the whole
// index every Resync and after every (re)connection, so a change made while
// it was disconnected, or a notification lost, is repaired.
//
// A notified key is re-read on a second connection kept for that alone,
// with one statement: a deactivation reaches the index after one round
// trip to the server, never queued behind the pool's other users (the
// usage flush, leases, management calls). Periodic resyncs read through
// the pool on a goroutine of their own, so notifications keep being
// applied while one runs.
type Watcher struct {
	store    *Store
	index    Index
	resync   time.Duration
	maxDelay time.Duration
	log      *slog.Logger
	ready    atomic.Bool
	resyncs  atomic.Int64

	// reads is the connection notified keys are re-read on (at most one
	// open); Run opens it and closes it when it returns.
	reads *sql.DB
	// syncMu keeps resyncs one at a time: Index.Sync tolerates changes
	// applied meanwhile, not another Sync.
	syncMu  sync.Mutex
	syncing atomic.Bool    // a background resync is under way
	bg      sync.WaitGroup // background resyncs, waited for by Run

	trace changeTrace
	// loaded is the listening connection Load made, for Run to go on
	// from.
	loaded *pgx.Conn
}

// NewWatcher returns a watcher that keeps ix current with the changes
// committed to s by any replica, once Run is called.
//
// The listener is a pgx connection taken out of the pool for good rather
// than github.com/jackc/pgxlisten: the reconnect loop is a few lines, and
// owning it lets the watcher resync on every reconnect, check the
// connection at every resync and report readiness, with no other
// dependency.
func (s *Store) NewWatcher(ix Index, opts WatchOptions) *Watcher {
	w := &Watcher{store: s, index: ix, resync: opts.Resync, maxDelay: opts.MaxRetryDelay, log: opts.Log}
	if w.resync <= 0 {
		w.resync = DefaultResync
	}
	if w.maxDelay <= 0 {
		w.maxDelay = 10 * time.Second
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	return w
}

// Ready reports whether the watcher is listening and has loaded the index
// since it connected: whether this replica's verifications see every
// change. /readyz reports it.
func (w *Watcher) Ready() bool { return w.ready.Load() }

// Resyncs returns how many full resyncs have completed.
func (w *Watcher) Resyncs() int64 { return w.resyncs.Load() }

// Run keeps the index current until ctx ends, reconnecting with backoff
// whenever the connection is lost. It returns nil when ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	reads := stdlib.OpenDB(*w.store.pool.Config().ConnConfig)
	reads.SetMaxOpenConns(1)
	reads.SetMaxIdleConns(1)
	w.reads = reads
	defer reads.Close()
	defer w.bg.Wait()
	const minDelay = 100 * time.Millisecond
	delay := minDelay
	for {
		wasReady, err := w.listen(ctx)
		w.ready.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if wasReady {
			delay = minDelay
		}
		w.log.Warn("key change feed disconnected; reconnecting", "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(2*delay, w.maxDelay)
	}
}

// Load connects, LISTENs and loads the index, as Run does on each
// connection, and returns how many keys it loaded, or the error of this
// one attempt. Run then goes on from that connection, so a replica that
// calls Load before Run reads its keys once at start-up, not twice (at
// ten million keys a load takes tens of seconds). Call it at most once,
// before Run.
func (w *Watcher) Load(ctx context.Context) (int, error) {
	conn, n, err := w.connect(ctx)
	if err != nil {
		return 0, err
	}
	w.loaded = conn
	return n, nil
}

// connect takes a connection out of the pool, LISTENs on it and then
// loads the index. Loading after LISTEN: a change committed before it is
// in the load, a change committed after it is notified.
func (w *Watcher) connect(ctx context.Context) (*pgx.Conn, int, error) {
	pc, err := w.store.pool.Acquire(ctx)
	if err != nil {
		return nil, 0, err
	}
	conn := pc.Hijack()
	lctx, cancel := w.store.Bound(ctx)
	_, err = conn.Exec(lctx, "LISTEN "+Channel)
	cancel()
	if err == nil {
		var n int
		if n, err = w.sync(ctx); err == nil {
			return conn, n, nil
		}
	}
	closeConn(ctx, conn)
	return nil, 0, err
}

// listen runs one connection: LISTEN, full sync (or the connection Load
// made), then notifications and periodic resyncs until the connection
// fails or ctx ends. It reports whether it got as far as ready.
func (w *Watcher) listen(ctx context.Context) (wasReady bool, err error) {
	conn := w.loaded
	w.loaded = nil
	if conn == nil {
		if conn, _, err = w.connect(ctx); err != nil {
			return false, err
		}
	}
	defer closeConn(ctx, conn)
	// Open the read connection and prepare its statement now rather than
	// on the first notification. A failure here is not the feed's: the
	// first read retries, and a failed read brings the resync forward.
	if _, err := w.read(ctx, ""); err != nil && latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
		w.log.Warn("opening the key change feed's read connection failed", "err", err)
	}
	w.ready.Store(true)
	w.log.Info("key change feed listening", "channel", Channel)

	next := time.Now().Add(w.resync)
	for {
		wctx, cancel := context.WithDeadline(ctx, next)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return true, ctx.Err()
		case err == nil:
			if err := w.apply(ctx, n.Payload, time.Now()); err != nil {
				// The change is not lost: it is in the database, and
				// the next resync, brought forward, loads it.
				w.log.Warn("applying a key change failed; resyncing soon", "access_key_id", n.Payload, "err", err)
				next = time.Now().Add(min(time.Second, w.resync))
			}
		case errors.Is(err, context.DeadlineExceeded):
			// Time to resync. Check first that the listening connection
			// still works: a connection that died silently would
			// otherwise wait forever.
			// The ping is bounded: over a partition it would never
			// return, and the watcher would stay ready while deaf.
			pctx, cancel := w.store.Bound(ctx)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return true, err
			}
			w.syncInBackground(ctx)
			next = time.Now().Add(w.resync)
		default:
			return true, err
		}
	}
}

func (w *Watcher) sync(ctx context.Context) (int, error) {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	start := time.Now()
	n, err := w.index.Sync(ctx, w.store)
	if err != nil {
		return 0, err
	}
	w.resyncs.Add(1)
	// How long a resync takes grows with the keys (tens of seconds at
	// ten million): the log says it, to set --resync-interval by.
	w.log.Info("key index resynced", "keys", n, "duration", time.Since(start).Round(time.Millisecond))
	return n, nil
}

// syncInBackground starts a resync on a goroutine of its own, unless one
// is under way: a resync of a large index takes a while, and the
// notifications that arrive meanwhile are applied at once, not after it
// (Index.Sync lets changes applied while it runs win over what it read).
func (w *Watcher) syncInBackground(ctx context.Context) {
	if !w.syncing.CompareAndSwap(false, true) {
		return
	}
	w.bg.Go(func() {
		defer w.syncing.Store(false)
		if _, err := w.sync(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("key index resync failed; will retry", "err", err)
		}
	})
}

// apply re-reads the key named by a notification, taken off the
// connection at taken, and updates the index. It goes through
// Index.Reload: this replica's own writes update its index as they
// commit, and a read that raced one of them must not undo it.
func (w *Watcher) apply(ctx context.Context, id string, taken time.Time) error {
	if id == resyncAll {
		w.syncInBackground(ctx)
		return nil
	}
	var read time.Time
	err := w.index.Reload(id, func() (*latchkey.AccessKey, error) {
		k, err := w.read(ctx, id)
		read = time.Now()
		return k, err
	})
	if err == nil {
		w.trace.add(ChangeTiming{ID: id, Taken: taken, Read: read, Applied: time.Now()})
	}
	return err
}

// read reads key id on the read connection: nil if it does not exist.
func (w *Watcher) read(ctx context.Context, id string) (*latchkey.AccessKey, error) {
	k, err := w.store.ReadAccessKey(ctx, w.reads, id)
	if latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
		return nil, nil
	}
	return k, err
}

// ChangeTiming is when the watcher handled one notified key.
type ChangeTiming struct {
	ID string `json:"access_key_id"`
	// Taken is when the notification was taken off the listening
	// connection, Read when the key's re-read returned, Applied when the
	// index held the result.
	Taken   time.Time `json:"taken"`
	Read    time.Time `json:"read"`
	Applied time.Time `json:"applied"`
}

// changeTrace keeps the timings of the last notified keys.
type changeTrace struct {
	mu   sync.Mutex
	ring [1024]ChangeTiming
	n    int // timings added, ever
}

func (t *changeTrace) add(c ChangeTiming) {
	t.mu.Lock()
	t.ring[t.n%len(t.ring)] = c
	t.n++
	t.mu.Unlock()
}

// Timings returns when the watcher handled each of the last 1,024 keys it
// was notified of and applied, oldest first: the stages of the change feed
// on this replica, for a debugging endpoint or a benchmark. Key IDs are
// public identifiers, not secrets.
func (w *Watcher) Timings() []ChangeTiming {
	t := &w.trace
	t.mu.Lock()
	defer t.mu.Unlock()
	n := min(t.n, len(t.ring))
	out := make([]ChangeTiming, 0, n)
	for i := t.n - n; i < t.n; i++ {
		out = append(out, t.ring[i%len(t.ring)])
	}
	return out
}
