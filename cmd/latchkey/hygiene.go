package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/cli"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/metrics"
	"github.com/spf13/pflag"
)

// hygieneOptions are serve's flags for the hygiene policy's server-wide
// defaults, its schedule, webhook retention and /metrics.
type hygieneOptions struct {
	maxKeyAge, warnBefore, unusedAfter, deactivateUnused, deleteInactive, noticeBefore string
	interval, deliveryRetention                                                        time.Duration
	metricsAddr                                                                        string
}

func (h *hygieneOptions) addFlags(f *pflag.FlagSet) {
	d := latchkey.DefaultPolicy()
	f.StringVar(&h.maxKeyAge, "max-key-age", envOr("LATCHKEY_MAX_KEY_AGE", d.MaxKeyAge.String()), "default policy: age at which a key is due for rotation, e.g. 90d (env LATCHKEY_MAX_KEY_AGE)")
	f.StringVar(&h.warnBefore, "warn-before", envOr("LATCHKEY_WARN_BEFORE", d.WarnBefore.String()), "default policy: warn this long before rotation is due or a key expires (env LATCHKEY_WARN_BEFORE)")
	f.StringVar(&h.unusedAfter, "unused-after", envOr("LATCHKEY_UNUSED_AFTER", d.UnusedAfter.String()), "default policy: flag keys without a valid call for this long (env LATCHKEY_UNUSED_AFTER)")
	f.StringVar(&h.deactivateUnused, "deactivate-unused-after", envOr("LATCHKEY_DEACTIVATE_UNUSED_AFTER", "off"), "default policy: deactivate application keys unused this long, or off (env LATCHKEY_DEACTIVATE_UNUSED_AFTER)")
	f.StringVar(&h.deleteInactive, "delete-inactive-after", envOr("LATCHKEY_DELETE_INACTIVE_AFTER", "off"), "default policy: delete application keys Inactive this long, or off (env LATCHKEY_DELETE_INACTIVE_AFTER)")
	f.StringVar(&h.noticeBefore, "notice-before", envOr("LATCHKEY_NOTICE_BEFORE", d.NoticeBefore.String()), "default policy: announce automatic actions by webhook this long ahead (env LATCHKEY_NOTICE_BEFORE)")
	f.DurationVar(&h.interval, "policy-interval", 5*time.Minute, "how often every key is checked against its account's policy")
	f.DurationVar(&h.deliveryRetention, "webhook-log-retention", 30*24*time.Hour, "how long finished webhook deliveries stay in the delivery log")
	f.StringVar(&h.metricsAddr, "metrics-addr", os.Getenv("LATCHKEY_METRICS_ADDR"), `serve /metrics on this address instead of the main one (e.g. 127.0.0.1:9090), or "off" (env LATCHKEY_METRICS_ADDR)`)
}

// policy returns the server's default policy from the flags. Options
// left empty (serve called from Go) take the built-in defaults.
func (h *hygieneOptions) policy() (latchkey.Policy, error) {
	p := latchkey.DefaultPolicy()
	if h.interval == 0 {
		h.interval = 5 * time.Minute
	}
	if h.deliveryRetention == 0 {
		h.deliveryRetention = 30 * 24 * time.Hour
	}
	for _, f := range []struct {
		flag, value string
		dst         *latchkey.Duration
	}{
		{"max-key-age", h.maxKeyAge, &p.MaxKeyAge}, {"warn-before", h.warnBefore, &p.WarnBefore},
		{"unused-after", h.unusedAfter, &p.UnusedAfter}, {"deactivate-unused-after", h.deactivateUnused, &p.DeactivateUnusedAfter},
		{"delete-inactive-after", h.deleteInactive, &p.DeleteInactiveAfter}, {"notice-before", h.noticeBefore, &p.NoticeBefore},
	} {
		if f.value == "" {
			continue
		}
		d, err := latchkey.ParseDuration("--"+f.flag, f.value)
		if err != nil {
			return p, cli.UsageErrorf("%s", latchkey.ErrorMessage(err))
		}
		*f.dst = d
	}
	if h.interval < time.Second || h.interval > 24*time.Hour {
		return p, cli.UsageErrorf("--policy-interval %s: expected 1s to 24h", h.interval)
	}
	if h.deliveryRetention < time.Hour {
		return p, cli.UsageErrorf("--webhook-log-retention %s: expected at least 1h", h.deliveryRetention)
	}
	return p, nil
}

// mountMetrics serves /metrics: on the API's listener by default (GET
// /metrics, without authentication, like most Prometheus targets: it holds
// counts, never a key, account or application), on a listener of its own
// with --metrics-addr (to keep it off a public address), or not at all
// with --metrics-addr off. It returns the separate server, if any.
func (h *hygieneOptions) mountMetrics(api *httpapi.Server, m *metrics.Metrics, log *slog.Logger) (*http.Server, error) {
	switch h.metricsAddr {
	case "off":
		return nil, nil
	case "":
		prev := api.Mount
		api.Mount = func(mux *http.ServeMux) {
			if prev != nil {
				prev(mux)
			}
			mux.Handle("GET /metrics", m.Handler())
		}
		return nil, nil
	}
	ln, err := net.Listen("tcp", h.metricsAddr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w", h.metricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	return srv, nil
}
