package postgres

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
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
type Watcher struct {
	store    *Store
	index    Index
	resync   time.Duration
	maxDelay time.Duration
	log      *slog.Logger
	ready    atomic.Bool
	resyncs  atomic.Int64
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
			if err := w.apply(ctx, n.Payload); err != nil {
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
			if _, err := w.sync(ctx); err != nil {
				w.log.Warn("key index resync failed; will retry", "err", err)
			}
			next = time.Now().Add(w.resync)
		default:
			return true, err
		}
	}
}

func (w *Watcher) sync(ctx context.Context) (int, error) {
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

// apply re-reads the key named by a notification and updates the index.
// It goes through Index.Reload: this replica's own writes update its index
// as they commit, and a read that raced one of them must not undo it.
func (w *Watcher) apply(ctx context.Context, id string) error {
	if id == resyncAll {
		_, err := w.sync(ctx)
		return err
	}
	return w.index.Reload(id, func() (*latchkey.AccessKey, error) {
		var k *latchkey.AccessKey
		err := w.store.View(ctx, func(tx latchkey.Tx) (err error) {
			k, err = tx.FindAccessKey(ctx, id)
			return err
		})
		if latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
			return nil, nil
		}
		return k, err
	})
}
