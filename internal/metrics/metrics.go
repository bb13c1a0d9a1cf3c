// Package metrics exposes latchkey's Prometheus metrics: verifications by
// decision code and their latency, keys in the index by kind and state,
// store latency by operation, and webhook deliveries.
//
// Labels never hold a key ID, a secret, an account or an application: the
// metrics must be safe to show to anyone who can scrape them, and their
// cardinality must not grow with the number of keys.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// codes are the decision codes, in the order of their counters.
var codes = []latchkey.Code{
	latchkey.CodeValid, latchkey.CodeNotFound, latchkey.CodeInactive, latchkey.CodeExpired, latchkey.CodeMalformed,
	latchkey.CodeMissing, latchkey.CodeIPNotAllowed, latchkey.CodeReferrerNotAllowed, latchkey.CodeAppNotAllowed,
	latchkey.CodeScopeDenied, latchkey.CodeRateLimited, latchkey.CodeCredentialsInURL, latchkey.CodeThrottled,
	latchkey.CodeAmbiguousPath, latchkey.CodeUntrustedGateway,
	latchkey.CodeSignatureInvalid, latchkey.CodeSignatureExpired, latchkey.CodeSignatureFromFuture,
	latchkey.CodeNonceReplayed, latchkey.CodeDigestMismatch, latchkey.CodeComponentMissing, latchkey.CodeAlgorithmMismatch,
	latchkey.CodeCredentialAmbiguous, latchkey.CodeQuotaExceeded, latchkey.CodeCertificateMismatch,
}

// storeOps are the store operations timed and counted, in the order of
// the timedStore's methods. Each has its series from the start, at 0, so
// that rate() and increase() see the first error.
var storeOps = []string{"update", "view", "scan_access_keys", "scan_key_index", "record_usage", "usage_series", "compact_usage", "ping"}

// codeIndex returns the position of c in codes, or len(codes) ("other").
func codeIndex(c latchkey.Code) int {
	switch c {
	case latchkey.CodeValid:
		return 0
	case latchkey.CodeNotFound:
		return 1
	case latchkey.CodeInactive:
		return 2
	case latchkey.CodeExpired:
		return 3
	case latchkey.CodeMalformed:
		return 4
	case latchkey.CodeMissing:
		return 5
	case latchkey.CodeIPNotAllowed:
		return 6
	case latchkey.CodeReferrerNotAllowed:
		return 7
	case latchkey.CodeAppNotAllowed:
		return 8
	case latchkey.CodeScopeDenied:
		return 9
	case latchkey.CodeRateLimited:
		return 10
	case latchkey.CodeCredentialsInURL:
		return 11
	case latchkey.CodeThrottled:
		return 12
	case latchkey.CodeAmbiguousPath:
		return 13
	case latchkey.CodeUntrustedGateway:
		return 14
	case latchkey.CodeSignatureInvalid:
		return 15
	case latchkey.CodeSignatureExpired:
		return 16
	case latchkey.CodeSignatureFromFuture:
		return 17
	case latchkey.CodeNonceReplayed:
		return 18
	case latchkey.CodeDigestMismatch:
		return 19
	case latchkey.CodeComponentMissing:
		return 20
	case latchkey.CodeAlgorithmMismatch:
		return 21
	case latchkey.CodeCredentialAmbiguous:
		return 22
	case latchkey.CodeQuotaExceeded:
		return 23
	case latchkey.CodeCertificateMismatch:
		return 24
	}
	return len(codes)
}

// Metrics holds latchkey's collectors in a registry of their own.
type Metrics struct {
	Registry *prometheus.Registry

	// One counter per code, resolved once: the hot path indexes an array
	// instead of looking up label values.
	verifications [26]prometheus.Counter
	latency       prometheus.Histogram
	store         *prometheus.HistogramVec
	storeErrors   *prometheus.CounterVec
	deliveries    *prometheus.CounterVec
	deliveryTime  prometheus.Histogram
	policyRuns    *prometheus.CounterVec
	canaries      *prometheus.CounterVec
	auditStreamed *prometheus.CounterVec
	auditFailures *prometheus.CounterVec
	auditBacklog  *prometheus.GaugeVec
}

// New returns the metrics, registered with the Go runtime and process
// collectors. ix may be nil (no key gauges).
func New(ix *verify.Index) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_verifications_total",
		Help: "Credentials verified, by decision code (VALID, NOT_FOUND, INACTIVE, ...).",
	}, []string{"code"})
	for i, c := range codes {
		m.verifications[i] = vec.WithLabelValues(string(c))
	}
	m.verifications[len(codes)] = vec.WithLabelValues("other")
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "latchkey_verification_duration_seconds",
		Help:    "Time to decide on a credential, in the process (no network), for one decision in 64 chosen at random.",
		Buckets: []float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2},
	})
	m.store = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "latchkey_store_duration_seconds",
		Help:    "Time of store operations (update and view transactions, usage writes, key scans), by operation.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 10),
	}, []string{"op"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_store_errors_total",
		Help: "Store operations that failed with an internal or unavailable error, by operation.",
	}, []string{"op"})
	for _, op := range storeOps {
		m.store.WithLabelValues(op)
		m.storeErrors.WithLabelValues(op)
	}
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_webhook_deliveries_total",
		Help: "Webhook delivery attempts by outcome: delivered, retry (failed, will be retried) or failed (gave up).",
	}, []string{"outcome"})
	for _, o := range []string{"delivered", "retry", "failed"} {
		m.deliveries.WithLabelValues(o)
	}
	m.deliveryTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "latchkey_webhook_delivery_duration_seconds",
		Help:    "Time of one webhook delivery attempt.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 9),
	})
	m.policyRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_policy_actions_total",
		Help: "What the hygiene policy did: notice (webhook queued), deactivated, deleted, cancelled.",
	}, []string{"action"})
	for _, a := range []string{"notice", "deactivated", "deleted", "cancelled"} {
		m.policyRuns.WithLabelValues(a)
	}
	m.canaries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_canary_triggered_total",
		Help: "Uses of canary keys, by surface (verify, authorize, proxy, ext_authz, management, console). Every use counts, including those an alert only sums up.",
	}, []string{"surface"})
	for _, sf := range []string{latchkey.SurfaceVerify, latchkey.SurfaceAuthorize, latchkey.SurfaceProxy, latchkey.SurfaceExtAuthz,
		latchkey.SurfaceManagement, latchkey.SurfaceConsole} {
		m.canaries.WithLabelValues(sf)
	}
	m.auditStreamed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_audit_stream_events_total",
		Help: "Audit events taken by each audit sink (--audit-sink), counted by the replica that sent them.",
	}, []string{"sink"})
	m.auditFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_audit_stream_failures_total",
		Help: "Failed attempts to stream audit events to each audit sink; each is retried with backoff.",
	}, []string{"sink"})
	m.auditBacklog = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "latchkey_audit_stream_backlog",
		Help: "Committed audit events each audit sink has not taken yet, as this replica last read it.",
	}, []string{"sink"})
	m.Registry.MustRegister(vec, m.latency, m.store, m.storeErrors, m.deliveries, m.deliveryTime, m.policyRuns, m.canaries,
		m.auditStreamed, m.auditFailures, m.auditBacklog,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if ix != nil {
		m.Registry.MustRegister(&indexCollector{ix: ix})
	}
	return m
}

// Decided implements verify.Observer: an array index and an atomic add,
// no allocation.
func (m *Metrics) Decided(code latchkey.Code) { m.verifications[codeIndex(code)].Inc() }

// Took implements verify.Observer.
func (m *Metrics) Took(elapsed time.Duration) { m.latency.Observe(elapsed.Seconds()) }

// CanaryTriggered counts one use of a canary key on surface; it is a
// manage.CanaryAlerts's Counted.
func (m *Metrics) CanaryTriggered(surface string) { m.canaries.WithLabelValues(surface).Inc() }

// ObserveDelivery is a manage.Dispatcher's Observe.
func (m *Metrics) ObserveDelivery(outcome string, d time.Duration) {
	m.deliveries.WithLabelValues(outcome).Inc()
	m.deliveryTime.Observe(d.Seconds())
}

// AuditStreamed implements auditstream.Observer.
func (m *Metrics) AuditStreamed(sink string, n int) {
	m.auditStreamed.WithLabelValues(sink).Add(float64(n))
}

// AuditStreamFailed implements auditstream.Observer.
func (m *Metrics) AuditStreamFailed(sink string) { m.auditFailures.WithLabelValues(sink).Inc() }

// AuditStreamBacklog implements auditstream.Observer.
func (m *Metrics) AuditStreamBacklog(sink string, n int64) {
	m.auditBacklog.WithLabelValues(sink).Set(float64(n))
}

// ObservePolicy counts what one round of the hygiene policy did.
func (m *Metrics) ObservePolicy(notices, deactivated, deleted, cancelled int) {
	m.policyRuns.WithLabelValues("notice").Add(float64(notices))
	m.policyRuns.WithLabelValues("deactivated").Add(float64(deactivated))
	m.policyRuns.WithLabelValues("deleted").Add(float64(deleted))
	m.policyRuns.WithLabelValues("cancelled").Add(float64(cancelled))
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// indexCollector reports the index's size and its keys by kind and state
// at scrape time.
type indexCollector struct{ ix *verify.Index }

var (
	keysDesc = prometheus.NewDesc("latchkey_keys", "Access keys in the verification index, by kind (application, principal) and state (active, inactive, expired).",
		[]string{"kind", "state"}, nil)
	indexDesc = prometheus.NewDesc("latchkey_index_keys", "Keys held in the in-memory verification index (the cache every verification reads).", nil, nil)
)

func (c *indexCollector) Describe(ch chan<- *prometheus.Desc) { ch <- keysDesc; ch <- indexDesc }

func (c *indexCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(indexDesc, prometheus.GaugeValue, float64(c.ix.Len()))
	for _, n := range c.ix.Counts(time.Now()) {
		ch <- prometheus.MustNewConstMetric(keysDesc, prometheus.GaugeValue, float64(n.Count), n.Kind, n.State)
	}
}

// Store wraps a store so that every operation but Close is timed, and
// counted when it fails with an internal or unavailable error. The wrapper
// holds the store instead of embedding it: a method added to
// latchkey.Store does not build until it is timed here.
func (m *Metrics) Store(s latchkey.Store) latchkey.Store { return &timedStore{s: s, m: m} }

type timedStore struct {
	s latchkey.Store
	m *Metrics
}

// timed runs f, one store operation, and observes it under op.
func timed[T any](m *Metrics, op string, f func() (T, error)) (T, error) {
	start := time.Now()
	v, err := f()
	m.store.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if c := latchkey.ErrorCode(err); c == latchkey.EINTERNAL || c == latchkey.EUNAVAILABLE {
		m.storeErrors.WithLabelValues(op).Inc()
	}
	return v, err
}

// do is timed for an operation that returns only an error.
func (t *timedStore) do(op string, f func() error) error {
	_, err := timed(t.m, op, func() (struct{}, error) { return struct{}{}, f() })
	return err
}

func (t *timedStore) Update(ctx context.Context, fn func(latchkey.Tx) error) error {
	return t.do("update", func() error { return t.s.Update(ctx, fn) })
}

func (t *timedStore) View(ctx context.Context, fn func(latchkey.Tx) error) error {
	return t.do("view", func() error { return t.s.View(ctx, fn) })
}

func (t *timedStore) ScanAccessKeys(ctx context.Context, fn func(*latchkey.AccessKey) error) error {
	return t.do("scan_access_keys", func() error { return t.s.ScanAccessKeys(ctx, fn) })
}

func (t *timedStore) ScanKeyIndex(ctx context.Context, fn func(*latchkey.AccessKey) error) error {
	return t.do("scan_key_index", func() error { return t.s.ScanKeyIndex(ctx, fn) })
}

func (t *timedStore) RecordUsage(ctx context.Context, batch []latchkey.UsageUpdate) error {
	return t.do("record_usage", func() error { return t.s.RecordUsage(ctx, batch) })
}

func (t *timedStore) UsageSeries(ctx context.Context, id string, from, to time.Time) ([]latchkey.UsageCount, error) {
	return timed(t.m, "usage_series", func() ([]latchkey.UsageCount, error) { return t.s.UsageSeries(ctx, id, from, to) })
}

func (t *timedStore) CompactUsage(ctx context.Context, before time.Time) (int64, error) {
	return timed(t.m, "compact_usage", func() (int64, error) { return t.s.CompactUsage(ctx, before) })
}

func (t *timedStore) Ping(ctx context.Context) error {
	return t.do("ping", func() error { return t.s.Ping(ctx) })
}

// Close is not timed: it is called once, at shutdown.
func (t *timedStore) Close() error { return t.s.Close() }
