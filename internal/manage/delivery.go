package manage

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
)

// Dispatcher delivers the webhook outbox: it claims due deliveries, signs
// and POSTs each to its receiver, and records the outcome. A failure is
// retried with exponential backoff and jitter up to MaxAttempts; a replica
// that dies mid-send leaves its claimed deliveries to be retried once
// their lease ends. Delivery is at least once: receivers deduplicate on
// the webhook-id header, which stays the same across retries.
type Dispatcher struct {
	Store latchkey.Store
	Log   *slog.Logger
	Now   func() time.Time

	// Destinations is the destination policy every connection is checked
	// against; nil applies the default policy with the system's resolver.
	// Serve gives the Service the same one.
	Destinations *Destinations

	// MaxAttempts bounds the attempts per delivery (default 8).
	MaxAttempts int
	// Backoff returns the wait after the given failed attempt (1, 2,
	// ...). Default: 10s doubling to at most 6h, with ±20% jitter.
	Backoff func(attempt int) time.Duration
	// Lease is how long a claimed delivery is reserved for one attempt
	// (default 2m, above Timeout).
	Lease time.Duration
	// Poll is how often the outbox is checked when nothing wakes the
	// dispatcher (default 1s).
	Poll time.Duration
	// Batch is how many deliveries one round claims (default 32), and
	// Parallel how many it sends at once (default 4).
	Batch, Parallel int
	// Timeout bounds one attempt, from the connection to the end of the
	// receiver's answer (default DefaultDeliveryTimeout).
	Timeout time.Duration
	// UserAgent is sent with every delivery.
	UserAgent string
	// Observe, when set, is told the outcome of every attempt
	// ("delivered", "retry" or "failed") and how long it took.
	Observe func(outcome string, d time.Duration)

	// client sends deliveries. It is not exported: its transport must
	// dial through Destinations, and no other client may stand in.
	client *http.Client

	wakeOnce sync.Once
	wake     chan struct{}
}

// DefaultDeliveryTimeout bounds one attempt.
const DefaultDeliveryTimeout = 15 * time.Second

// NewDispatcher returns a dispatcher with default settings. Its HTTP client
// connects only where Destinations allows, uses no proxy, and does not
// follow redirects: a receiver answers 2xx itself or the attempt fails.
func NewDispatcher(store latchkey.Store, log *slog.Logger) *Dispatcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{
		Store: store, Log: log, Now: latchkey.Now,
		MaxAttempts: 8, Backoff: DefaultBackoff, Lease: 2 * time.Minute, Poll: time.Second,
		Batch: 32, Parallel: 4, Timeout: DefaultDeliveryTimeout, UserAgent: "latchkey-webhooks",
	}
	d.client = &http.Client{
		Transport: newTransport(d.dial),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return d
}

// dial connects through the destination policy as set when it is called.
func (d *Dispatcher) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	dst := d.Destinations
	if dst == nil {
		dst = &Destinations{}
	}
	return dst.DialContext(ctx, network, addr)
}

// DefaultBackoff waits 10s after the first failure and doubles each time,
// up to 6h, with ±20% jitter so that receivers recovering from an outage
// are not hit by every retry at once.
func DefaultBackoff(attempt int) time.Duration {
	d := 10 * time.Second
	for i := 1; i < attempt && d < 6*time.Hour; i++ {
		d *= 2
	}
	d = min(d, 6*time.Hour)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (d *Dispatcher) signal() chan struct{} {
	d.wakeOnce.Do(func() { d.wake = make(chan struct{}, 1) })
	return d.wake
}

// Wake makes a running dispatcher look at the outbox now. It never blocks.
func (d *Dispatcher) Wake() {
	select {
	case d.signal() <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) {
	t := time.NewTicker(d.Poll)
	defer t.Stop()
	for {
		for {
			n, err := d.RunOnce(ctx)
			if err != nil && ctx.Err() == nil {
				d.Log.Warn("webhook deliveries", "err", err)
			}
			if n < d.Batch || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.signal():
		}
	}
}

// RunOnce claims the deliveries due now, sends them and records the
// outcomes. It returns how many it claimed.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	now := d.Now()
	var due []*latchkey.DueDelivery
	err := d.Store.Update(ctx, func(tx latchkey.Tx) (err error) {
		due, err = tx.ClaimDeliveries(ctx, now, d.Lease, d.Batch)
		return err
	})
	if err != nil {
		return 0, err
	}
	sem := make(chan struct{}, max(d.Parallel, 1))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, dd := range due {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			res := d.attempt(ctx, dd)
			// Recorded even when ctx has ended (shutdown), so the
			// attempt is not lost.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			err := d.Store.Update(rctx, func(tx latchkey.Tx) error { return tx.FinishDelivery(rctx, res) })
			if err != nil && latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return len(due), errors.Join(errs...)
}

// attempt sends one delivery and decides what follows.
func (d *Dispatcher) attempt(ctx context.Context, dd *latchkey.DueDelivery) latchkey.DeliveryResult {
	start := time.Now()
	sentAt := d.Now()
	code, err := d.send(ctx, dd, sentAt)
	res := latchkey.DeliveryResult{ID: dd.Delivery.ID, At: sentAt, ResponseCode: code}
	outcome := "delivered"
	if cause := errors.Unwrap(err); cause != nil {
		// The cause may name addresses and the system's error: the
		// debug log only. Everything else gets the public message.
		d.Log.Debug("webhook delivery attempt failed", "webhook_id", dd.Delivery.WebhookID, "delivery_id", dd.Delivery.ID,
			"err", err.Error(), "cause", cause.Error())
	}
	switch {
	case err == nil:
		res.Status = latchkey.DeliveryDelivered
	case dd.Delivery.Attempts >= d.MaxAttempts:
		res.Status, res.Error, outcome = latchkey.DeliveryFailed, err.Error(), "failed"
		d.Log.Warn("webhook delivery failed for good", "webhook_id", dd.Delivery.WebhookID, "delivery_id", dd.Delivery.ID,
			"event_type", dd.Delivery.EventType, "attempts", dd.Delivery.Attempts, "err", err.Error())
	default:
		next := d.Now().Add(d.Backoff(dd.Delivery.Attempts))
		res.Status, res.Error, res.NextAttempt, outcome = latchkey.DeliveryPending, err.Error(), &next, "retry"
		d.Log.Info("webhook delivery failed; will retry", "webhook_id", dd.Delivery.WebhookID, "delivery_id", dd.Delivery.ID,
			"attempt", dd.Delivery.Attempts, "next_attempt_at", next, "err", err.Error())
	}
	if d.Observe != nil {
		d.Observe(outcome, time.Since(start))
	}
	return res
}

// attemptError is a failed attempt: its text is the delivery log's
// message, from a short fixed list; its cause is for the debug log.
type attemptError struct {
	public string
	cause  error
}

func (e *attemptError) Error() string { return e.public }
func (e *attemptError) Unwrap() error { return e.cause }

// send POSTs the signed body. Errors never name the URL: it may hold a
// token of the receiver's. Their text is one of the delivery log's fixed
// messages (publicError); the cause they wrap is for the debug log.
func (d *Dispatcher) send(ctx context.Context, dd *latchkey.DueDelivery, at time.Time) (int, error) {
	ts := at.Unix()
	sig, err := latchkey.SignWebhook(dd.Secret, dd.Delivery.EventID, ts, dd.Body)
	if err != nil {
		return 0, &attemptError{"the webhook's secret cannot sign", nil}
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultDeliveryTimeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st := &attemptState{}
	rctx := httptrace.WithClientTrace(context.WithValue(actx, attemptKey{}, st), &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { st.connect() },
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			if err != nil {
				st.tlsFailed.Store(true)
			}
		},
	})
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, dd.URL, bytes.NewReader(dd.Body))
	if err != nil {
		return 0, &attemptError{"the webhook URL cannot be requested", nil}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.UserAgent)
	req.Header.Set("webhook-id", dd.Delivery.EventID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := d.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL
		}
		return 0, &attemptError{publicError(ctx, st, err), err}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode <= 399:
		return resp.StatusCode, &attemptError{fmt.Sprintf("HTTP %d (redirects are not followed)", resp.StatusCode), nil}
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return resp.StatusCode, &attemptError{fmt.Sprintf("HTTP %d", resp.StatusCode), nil}
	}
	return resp.StatusCode, nil
}
