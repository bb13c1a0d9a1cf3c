package manage

import (
	"context"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
)

// Canary alert defaults.
const (
	// DefaultCanaryWindow is how often one canary key raises an alert at
	// most: the first use alerts at once, later uses within the window are
	// counted and reported together when it ends.
	DefaultCanaryWindow = time.Minute
	// CanaryDrainInterval is how often the queue of uses is read: the
	// first use of a key is alerted on within it.
	CanaryDrainInterval = 50 * time.Millisecond
	// canaryQueue bounds the uses waiting for the alerting goroutine; a
	// use that finds the queue full is counted (Dropped) and not alerted
	// on by itself, as an earlier one of the same flood already is.
	canaryQueue = 1024
)

// CanaryAlerts turns uses of canary keys into alerts: an audit event
// (access_key.canary_triggered) and a canary.triggered webhook event,
// written in one transaction by Service.CanaryTriggered. It implements
// verify.CanaryHook: the verifier hands it each use on the hot path, and
// it only counts the use and queues it, never waiting, so that a canary's
// refusal takes the time an unknown key's does. Run writes the alerts.
//
// A flood of uses cannot flood the outbox: each key alerts at most once a
// Window, the alert after the first carrying how many uses it stands for
// and the last of them.
type CanaryAlerts struct {
	Service *Service
	Log     *slog.Logger
	// Window is DefaultCanaryWindow when zero.
	Window time.Duration
	// Counted, when set, is told each use at once, by surface (the
	// latchkey_canary_triggered_total metric). It must not block.
	Counted func(surface string)

	queue   chan canaryUse
	dropped atomic.Int64
}

// canaryUse is a use as the hot path saw it; it is turned into text off
// the hot path.
type canaryUse struct {
	e       *verify.Entry
	ip      netip.Addr
	ua      string
	surface string
	path    string
	at      time.Time
}

// NewCanaryAlerts returns the alerts of s's canary keys.
func NewCanaryAlerts(s *Service) *CanaryAlerts {
	return &CanaryAlerts{Service: s, Log: s.Log, queue: make(chan canaryUse, canaryQueue)}
}

// CanaryUsed implements verify.CanaryHook.
func (c *CanaryAlerts) CanaryUsed(e *verify.Entry, req *verify.Request, at time.Time) {
	if c.Counted != nil {
		c.Counted(req.Surface)
	}
	select {
	case c.queue <- canaryUse{e: e, ip: req.IP, ua: req.UserAgent, surface: req.Surface, path: req.Path, at: at}:
	default:
		c.dropped.Add(1)
	}
}

// Dropped is how many uses found the queue full.
func (c *CanaryAlerts) Dropped() int64 { return c.dropped.Load() }

// pendingCanary is a key's state within its window.
type pendingCanary struct {
	alerted time.Time // when the window began
	last    canaryUse // the newest use not yet alerted on
	count   int       // uses not yet alerted on
}

// Run writes alerts until ctx ends, then writes those still pending.
func (c *CanaryAlerts) Run(ctx context.Context) {
	window := c.Window
	if window <= 0 {
		window = DefaultCanaryWindow
	}
	tick := time.NewTicker(max(window/4, 10*time.Millisecond))
	defer tick.Stop()
	// The queue is drained on a ticker, never waited on: a goroutine
	// blocked on it would be woken by each use, and that wake-up made a
	// canary's refusal measurably slower than an unknown key's
	// (docs/benchmarks.md, Canary keys).
	drain := time.NewTicker(CanaryDrainInterval)
	defer drain.Stop()
	keys := map[string]*pendingCanary{}
	take := func(ctx context.Context, u canaryUse) {
		now := time.Now()
		p := keys[u.e.ID]
		if p == nil {
			keys[u.e.ID] = &pendingCanary{alerted: now}
			c.alert(ctx, u, 1)
			return
		}
		p.last = u
		p.count++
	}
	flush := func(ctx context.Context, now time.Time, all bool) {
		for id, p := range keys {
			if !all && now.Sub(p.alerted) < window {
				continue
			}
			if p.count == 0 {
				delete(keys, id)
				continue
			}
			c.alert(ctx, p.last, p.count)
			p.alerted, p.count = now, 0
		}
	}
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			for n := len(c.queue); n > 0; n-- {
				take(fctx, <-c.queue)
			}
			flush(fctx, time.Now(), true)
			cancel()
			return
		case now := <-tick.C:
			flush(ctx, now, false)
		case <-drain.C:
			for n := len(c.queue); n > 0; n-- {
				take(ctx, <-c.queue)
			}
		}
	}
}

func (c *CanaryAlerts) alert(ctx context.Context, u canaryUse, uses int) {
	use := latchkey.CanaryUse{
		AccessKeyID: u.e.ID, Account: u.e.Account, Application: u.e.Application(), At: u.at.UTC(),
		UserAgent: latchkey.CleanText(u.ua, 256), Surface: u.surface, Path: latchkey.CleanText(u.path, 512),
	}
	if u.ip.IsValid() {
		use.IP = u.ip.String()
	}
	if err := c.Service.CanaryTriggered(ctx, use, uses); err != nil {
		c.Log.Error("canary alert not written", "access_key_id", use.AccessKeyID, "err", err)
		return
	}
	c.Log.Warn("canary key used", "access_key_id", use.AccessKeyID, "account", use.Account,
		"surface", use.Surface, "client_ip", use.IP, "uses", uses)
}

// CanaryAlert is the data of a canary.triggered event and of its audit
// event: the last use, and how many uses the alert stands for (more than
// one when uses came faster than one a window).
type CanaryAlert struct {
	latchkey.CanaryUse
	Uses int `json:"uses"`
}

// CanaryTriggered records the use of a canary key: an audit event and a
// canary.triggered webhook event, in one transaction. The actor is the
// system ("canary"), with the client address and user agent of the use.
func (s *Service) CanaryTriggered(ctx context.Context, use latchkey.CanaryUse, uses int) error {
	a := latchkey.Actor{Principal: "canary", Account: use.Account, Role: latchkey.RoleOperator, SourceIP: use.IP, UserAgent: use.UserAgent}
	data := CanaryAlert{CanaryUse: use, Uses: uses}
	now := s.now()
	return s.update(ctx, func(tx latchkey.Tx) error {
		ev, err := s.audit(a, now, use.Account, latchkey.ActionCanaryTriggered, "access_key", use.AccessKeyID, use.Application, nil, data)
		if err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, ev); err != nil {
			return err
		}
		return s.emit(ctx, tx, now, use.Account, latchkey.EventCanaryTriggered, data)
	}, nil)
}
