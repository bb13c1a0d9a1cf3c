// Package auditstream sends the audit log, as it commits, to the sinks a
// server is configured with: JSON lines on standard output or in a file
// rotated by size, and syslog (RFC 5424) over TCP with TLS (RFC 5425).
//
// The audit log is the outbox (see latchkey's auditstream.go): the
// Streamer reads each account's chain past the sink's cursor, hands the
// events to the sink, and moves the cursor only once the sink has taken
// them. A crash in between sends them again: delivery is at least once.
// One replica streams to a sink at a time, the holder of its lease; a sink
// that is down is retried with backoff while its backlog waits in the
// database, and management writes never wait for it.
package auditstream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
)

// Sink takes audit events.
type Sink interface {
	// Name identifies the sink's lease and cursors in the store: the
	// --audit-sink value ("stdout", "file:/var/log/latchkey/audit.jsonl",
	// "syslog+tls://siem.example.com:6514"). Replicas configured with the
	// same name share one cursor, so each event reaches it through one of
	// them.
	Name() string
	// Write sends events in the order given. When it returns nil, the
	// sink has taken every one of them as far as it can tell (written and
	// synced to disk; acknowledged by the receiver's TCP).
	Write(ctx context.Context, events []*latchkey.AuditEvent) error
	// Close releases the sink's file or connection.
	Close() error
}

// Observer is told what the streamer does; internal/metrics implements it.
type Observer interface {
	// AuditStreamed counts n events taken by sink.
	AuditStreamed(sink string, n int)
	// AuditStreamFailed counts a failed attempt to write to sink.
	AuditStreamFailed(sink string)
	// AuditStreamBacklog reports how many committed events sink has not
	// taken yet.
	AuditStreamBacklog(sink string, n int64)
}

// Record returns an event as one line of the stream, newline included:
// {"audit_event": {...}}, the line latchkey audit export writes, so that a
// sink's copy verifies offline with latchkey audit verify --file.
func Record(e *latchkey.AuditEvent) ([]byte, error) {
	b, err := json.Marshal(latchkey.AuditStreamRecord{Event: e})
	if err != nil {
		return nil, fmt.Errorf("encoding audit event %d: %w", e.ID, err)
	}
	return append(b, '\n'), nil
}

// Streamer streams the audit log to its Sinks, each on its own, so that a
// sink that is down holds up no other.
type Streamer struct {
	Store latchkey.Store
	Sinks []Sink
	Log   *slog.Logger
	Now   func() time.Time
	// Observe, when set, is told what is sent, what fails and the backlog.
	Observe Observer

	// Holder names this replica in the sinks' leases (default: random).
	Holder string
	// Lease is how long a replica keeps a sink without renewing it
	// (default 15s): after a crash, another replica, or this one
	// restarted, takes the sink over once it ends.
	Lease time.Duration
	// Poll is how often the log is read when nothing wakes the streamer
	// (default 1s).
	Poll time.Duration
	// Batch bounds the events one write takes (default 500).
	Batch int
	// Backoff returns the wait after the given number of failures in a
	// row (default: 1s doubling to at most 1m, with ±20% jitter).
	Backoff func(failures int) time.Duration

	once  sync.Once
	wakes []chan struct{}
}

// New returns a streamer with default settings.
func New(store latchkey.Store, sinks []Sink, log *slog.Logger) *Streamer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read returns no error since Go 1.24
	return &Streamer{
		Store: store, Sinks: sinks, Log: log, Now: latchkey.Now,
		Holder: hex.EncodeToString(b[:]), Lease: 15 * time.Second, Poll: time.Second, Batch: 500, Backoff: DefaultBackoff,
	}
}

// DefaultBackoff waits 1s after the first failure and doubles each time,
// up to 1m, with ±20% jitter.
func DefaultBackoff(failures int) time.Duration {
	d := time.Second
	for i := 1; i < failures && d < time.Minute; i++ {
		d *= 2
	}
	d = min(d, time.Minute)
	return time.Duration(float64(d) * (0.8 + 0.4*mrand.Float64()))
}

func (s *Streamer) init() {
	s.once.Do(func() {
		s.wakes = make([]chan struct{}, len(s.Sinks))
		for i := range s.wakes {
			s.wakes[i] = make(chan struct{}, 1)
		}
	})
}

// Wake makes every sink look at the log now (after a commit). It never
// blocks.
func (s *Streamer) Wake() {
	s.init()
	for _, w := range s.wakes {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// Run streams until ctx ends, then releases the leases it holds and
// closes the sinks.
func (s *Streamer) Run(ctx context.Context) {
	s.init()
	var wg sync.WaitGroup
	for i, sk := range s.Sinks {
		wg.Go(func() { s.run(ctx, sk, s.wakes[i]) })
	}
	wg.Wait()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, sk := range s.Sinks {
		if err := s.Store.Update(rctx, func(tx latchkey.Tx) error { return tx.ReleaseAuditSink(rctx, sk.Name(), s.Holder) }); err != nil {
			s.Log.Warn("audit stream: releasing the sink's lease", "sink", sk.Name(), "err", err)
		}
		if err := sk.Close(); err != nil {
			s.Log.Warn("audit stream: closing the sink", "sink", sk.Name(), "err", err)
		}
	}
}

func (s *Streamer) run(ctx context.Context, sk Sink, wake chan struct{}) {
	failures := 0
	for {
		n, err := s.RunOnce(ctx, sk)
		wait, woken := s.Poll, wake
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			failures++
			wait, woken = s.Backoff(failures), nil // a commit does not cut a backoff short
			if s.Observe != nil {
				s.Observe.AuditStreamFailed(sk.Name())
			}
			s.Log.Warn("audit stream: sink failed; will retry", "sink", sk.Name(), "failures", failures, "retry_in", wait.Round(time.Millisecond), "err", err)
		default:
			if failures > 0 {
				s.Log.Info("audit stream: sink back", "sink", sk.Name(), "after_failures", failures)
			}
			failures = 0
			if n >= s.Batch {
				wait = 0 // more is waiting
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-woken:
			t.Stop()
		}
	}
}

// RunOnce takes or renews the sink's lease and, holding it, sends the
// events past its cursors (at most Batch) and moves the cursors. It
// returns how many events the sink took. Without the lease it only
// reports the backlog.
func (s *Streamer) RunOnce(ctx context.Context, sk Sink) (int, error) {
	name, now := sk.Name(), s.Now()
	var held bool
	if err := s.Store.Update(ctx, func(tx latchkey.Tx) (err error) {
		held, err = tx.ClaimAuditSink(ctx, name, s.Holder, now, now.Add(s.Lease))
		return err
	}); err != nil {
		return 0, err
	}
	var (
		evs     []*latchkey.AuditEvent
		backlog int64
	)
	if err := s.Store.View(ctx, func(tx latchkey.Tx) error {
		heads, err := tx.AuditChainHeads(ctx, "")
		if err != nil {
			return err
		}
		cursors, err := tx.AuditSinkCursors(ctx, name)
		if err != nil {
			return err
		}
		for _, h := range heads {
			after := cursors[h.Account]
			if h.Seq <= after {
				continue
			}
			backlog += h.Seq - after
			if !held || len(evs) >= s.Batch {
				continue
			}
			page, err := tx.ListAuditChain(ctx, h.Account, after, s.Batch-len(evs))
			if err != nil {
				return err
			}
			evs = append(evs, page...)
		}
		return nil
	}); err != nil {
		return 0, err
	}
	if s.Observe != nil {
		s.Observe.AuditStreamBacklog(name, backlog)
	}
	if len(evs) == 0 {
		return 0, nil
	}
	if err := sk.Write(ctx, evs); err != nil {
		return 0, err
	}
	// The sink has the events: record it even if ctx has just ended, or
	// a restart sends them again.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	upTo := map[string]int64{}
	for _, e := range evs {
		upTo[e.Account] = max(upTo[e.Account], e.Seq)
	}
	if err := s.Store.Update(rctx, func(tx latchkey.Tx) error {
		for acc, seq := range upTo {
			if err := tx.AdvanceAuditSink(rctx, name, acc, seq); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return 0, err
	}
	if s.Observe != nil {
		s.Observe.AuditStreamed(name, len(evs))
		s.Observe.AuditStreamBacklog(name, max(backlog-int64(len(evs)), 0))
	}
	return len(evs), nil
}
