package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/auditkey"
	"github.com/latchkey/latchkey/internal/auditstream"
	"github.com/latchkey/latchkey/internal/cli"
	"github.com/latchkey/latchkey/internal/console"
	"github.com/latchkey/latchkey/internal/credfile"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/httpsig"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/metrics"
	"github.com/latchkey/latchkey/internal/postgres"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/spf13/cobra"
)

type serveOptions struct {
	addr            string
	databaseURL     string
	credentialsFile string
	profile         string
	logLevel        string
	logFormat       string
	maxKeys         int
	trustedProxies  []string
	webhookAllow    []string
	flushInterval   time.Duration
	quotaLease      int64
	shutdownTimeout time.Duration
	scopeRules      []string
	pathRelax       []string
	usageRetention  time.Duration
	resync          time.Duration
	leakAction      string
	githubKeys      string
	tlsCert         string
	tlsKey          string
	guardFailures   int
	guardRefill     float64
	pprof           bool
	hygiene         hygieneOptions // hygiene.go
	auditKey        string
	auditEvery      int64
	auditInterval   time.Duration
	auditSinks      []string
	auditSyslogCA   string
	auditSyslogCert string
	auditSyslogKey  string
	auditFileMaxMB  int
	auditFileKeep   int
	auditLease      time.Duration
	gw              gatewayOptions
	rateStore       string
	rateFailure     string
	signatureWindow time.Duration
	timeouts        httpapi.Timeouts
	oidc            oidcOptions
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

func newServeCmd() *cobra.Command { return newServeCmdFor(&serveOptions{}) }

// newServeCmdFor is newServeCmd with its flags parsed into o, so that a
// test can start from every flag's default.
func newServeCmdFor(o *serveOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the latchkey server",
		Long: `Run the latchkey server: the management API, verification, health checks and
the web console (at /console/; sign in with an admin access key).

On first start with an empty database, serve creates the default account and
a first operator ("admin") with an access key, saves that key to the
credentials file (mode 0600) and prints the file's path and the key ID. The
secret itself is never printed or logged.

Every flag can also be set with the environment variable named in its help.

EXAMPLES
  # Start on 127.0.0.1:8080 with the embedded SQLite database
  latchkey serve

  # Another address and database file
  latchkey serve --addr :9090 --database-url sqlite:/var/lib/latchkey/latchkey.db

  # Behind a load balancer at 10.0.0.5 that sets X-Forwarded-For
  latchkey serve --trusted-proxies 10.0.0.5/32

  # In front of an API on port 9000: callers use port 8081 with their key
  latchkey serve --proxy-upstream http://127.0.0.1:9000 --proxy-addr :8081

  # The Envoy ext_authz service for an Envoy sidecar
  latchkey serve --ext-authz-addr 127.0.0.1:9191

  # Webhook receivers on the internal network 10.1.2.0/24 (webhooks reach
  # only public addresses unless a range is opened)
  latchkey serve --webhook-allow-cidr 10.1.2.0/24

  # Console sign-in through your identity provider only (docs/console.md)
  LATCHKEY_OIDC_CLIENT_SECRET_FILE=/etc/latchkey/oidc-secret latchkey serve \
    --oidc-issuer https://idp.example.com --oidc-client-id latchkey \
    --oidc-redirect-url https://keys.example.com/console/oidc/callback \
    --oidc-role-map /etc/latchkey/roles.yaml --console-access-key-signin=false

  # Stream the audit log to a SIEM's syslog receiver over TLS, and keep a
  # rotated JSON lines copy on disk
  latchkey serve --audit-sink syslog+tls://siem.example.com:6514 --audit-syslog-ca /etc/latchkey/siem-ca.pem \
    --audit-sink file:/var/log/latchkey/audit.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), *o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", envOr("LATCHKEY_ADDR", "127.0.0.1:8080"), "address to listen on (env LATCHKEY_ADDR)")
	f.StringVar(&o.databaseURL, "database-url", envOr("LATCHKEY_DATABASE_URL", DefaultDatabaseURL()), "sqlite:/path/file.db or postgres://... (env LATCHKEY_DATABASE_URL)")
	f.StringVar(&o.credentialsFile, "credentials-file", credfile.DefaultPath(), "where the first operator key is saved on first start (env LATCHKEY_SHARED_CREDENTIALS_FILE)")
	f.StringVar(&o.profile, "bootstrap-profile", envOr("LATCHKEY_BOOTSTRAP_PROFILE", "default"), "credentials profile for the first operator key (env LATCHKEY_BOOTSTRAP_PROFILE)")
	f.StringVar(&o.logLevel, "log-level", envOr("LATCHKEY_LOG_LEVEL", "info"), "debug, info, warn or error (env LATCHKEY_LOG_LEVEL)")
	f.StringVar(&o.logFormat, "log-format", envOr("LATCHKEY_LOG_FORMAT", "text"), "text or json (env LATCHKEY_LOG_FORMAT)")
	f.IntVar(&o.maxKeys, "max-keys-per-application", envInt("LATCHKEY_MAX_KEYS_PER_APPLICATION", latchkey.DefaultMaxKeysPerApplication), "access keys an application may own (env LATCHKEY_MAX_KEYS_PER_APPLICATION)")
	f.StringSliceVar(&o.trustedProxies, "trusted-proxies", splitEnv("LATCHKEY_TRUSTED_PROXIES"), "peers whose X-Forwarded-For is trusted, as IPs or CIDRs (env LATCHKEY_TRUSTED_PROXIES)")
	f.StringSliceVar(&o.webhookAllow, "webhook-allow-cidr", splitEnv("LATCHKEY_WEBHOOK_ALLOW_CIDR"), "a range webhooks may reach although it is not public (loopback, private, link-local, ...), as a CIDR or an IP address; cloud metadata endpoints open only by their exact address (repeatable; env LATCHKEY_WEBHOOK_ALLOW_CIDR, comma-separated)")
	f.StringVar(&o.leakAction, "leak-action", envOr("LATCHKEY_LEAK_ACTION", "deactivate"), "what a leak report does to a live key: deactivate, or flag (exposed, left Active) (env LATCHKEY_LEAK_ACTION)")
	f.StringVar(&o.githubKeys, "github-secret-scanning-keys", os.Getenv("LATCHKEY_GITHUB_SECRET_SCANNING_KEYS"), "file with GitHub's secret scanning public keys (JSON as GitHub serves it); enables POST /v1/leaks/github")
	f.StringVar(&o.tlsCert, "tls-cert", os.Getenv("LATCHKEY_TLS_CERT"), "PEM certificate (chain) to serve HTTPS with; needs --tls-key (env LATCHKEY_TLS_CERT)")
	f.StringVar(&o.tlsKey, "tls-key", os.Getenv("LATCHKEY_TLS_KEY"), "PEM private key for --tls-cert (env LATCHKEY_TLS_KEY)")
	f.StringArrayVar(&o.scopeRules, "scope-rule", splitEnvSep("LATCHKEY_SCOPE_RULES", ";"), `scope a call needs on the gateway surfaces and /v1/verify with a method and path, as "METHOD /path[*] scope [cost=N]", cost=N being what the call takes from a key's quota (repeatable; env LATCHKEY_SCOPE_RULES, ';'-separated)`)
	f.StringSliceVar(&o.pathRelax, "path-relax", splitEnv("LATCHKEY_PATH_RELAX"), "accept paths refused by default as ambiguous: encoded-slash, semicolon, double-encoding (comma-separated; env LATCHKEY_PATH_RELAX)")
	f.IntVar(&o.guardFailures, "guard-failures", envInt("LATCHKEY_GUARD_FAILURES", 50), "invalid credentials one client address (an IPv6 client: its /64) may send before it is throttled; 0 disables the guard (env LATCHKEY_GUARD_FAILURES)")
	f.Float64Var(&o.guardRefill, "guard-refill-per-minute", 30, "invalid credentials a throttled address earns back per minute")
	f.StringVar(&o.rateStore, "rate-limit-store", os.Getenv("LATCHKEY_RATE_LIMIT_STORE"), "redis://host:port/db to share rate limits, nonces and quotas across replicas (a quota is then exact across them, docs/quotas.md); empty: each replica enforces each limit on its own (env LATCHKEY_RATE_LIMIT_STORE)")
	f.StringVar(&o.rateFailure, "rate-limit-store-failure", envOr("LATCHKEY_RATE_LIMIT_STORE_FAILURE", "local"), "when the rate limit store cannot answer: local (enforce per replica), open (allow) or closed (refuse) (env LATCHKEY_RATE_LIMIT_STORE_FAILURE)")
	f.BoolVar(&o.pprof, "pprof", os.Getenv("LATCHKEY_PPROF") == "true", "serve Go's profiler at /debug/pprof/ on the API's listener, to operator credentials only (env LATCHKEY_PPROF=true)")
	f.DurationVar(&o.signatureWindow, "signature-window", httpsig.DefaultWindow, "how old a signing key's request signature (its created) may be; its nonce is remembered this long, in --rate-limit-store when set, else per replica")
	f.Int64Var(&o.quotaLease, "quota-lease", verify.DefaultQuotaLease, "the most units of a key's quota a replica leases from the database at once: what a crash can lose, per key and replica (docs/quotas.md)")
	f.DurationVar(&o.flushInterval, "usage-flush-interval", time.Second, "how often last-used times and counts are written to the store")
	f.DurationVar(&o.resync, "resync-interval", 30*time.Second, "PostgreSQL: how often the key index is fully reloaded, to repair any missed change notification")
	f.DurationVar(&o.usageRetention, "usage-retention", 14*24*time.Hour, "how long per-minute usage counts are kept before they are rolled up per hour")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish on SIGTERM")
	o.hygiene.addFlags(f)
	f.StringVar(&o.auditKey, "audit-signing-key", os.Getenv("LATCHKEY_AUDIT_SIGNING_KEY"), "Ed25519 private key file (latchkey audit keygen; mode 0600) that signs audit chain checkpoints; empty: none are signed (env LATCHKEY_AUDIT_SIGNING_KEY)")
	f.Int64Var(&o.auditEvery, "audit-checkpoint-events", 1000, "sign an account's audit chain head once this many events were appended since its last checkpoint (0: by interval only)")
	f.DurationVar(&o.auditInterval, "audit-checkpoint-interval", time.Minute, "sign an account's audit chain head when this long has passed since its last checkpoint and it moved (0: by count only)")
	f.StringArrayVar(&o.auditSinks, "audit-sink", splitEnv("LATCHKEY_AUDIT_SINKS"), "stream every audit event as it commits to stdout, file:PATH (JSON lines) or syslog+tls://HOST[:PORT] (RFC 5424 over TLS, port 6514 by default); repeatable (env LATCHKEY_AUDIT_SINKS, comma-separated)")
	f.StringVar(&o.auditSyslogCA, "audit-syslog-ca", os.Getenv("LATCHKEY_AUDIT_SYSLOG_CA"), "PEM file of the CAs a syslog+tls receiver's certificate must chain to; empty: the system's (env LATCHKEY_AUDIT_SYSLOG_CA)")
	f.StringVar(&o.auditSyslogCert, "audit-syslog-cert", os.Getenv("LATCHKEY_AUDIT_SYSLOG_CERT"), "PEM client certificate for a syslog+tls receiver that asks for one; needs --audit-syslog-key (env LATCHKEY_AUDIT_SYSLOG_CERT)")
	f.StringVar(&o.auditSyslogKey, "audit-syslog-key", os.Getenv("LATCHKEY_AUDIT_SYSLOG_KEY"), "PEM private key of --audit-syslog-cert (env LATCHKEY_AUDIT_SYSLOG_KEY)")
	f.IntVar(&o.auditFileMaxMB, "audit-file-max-mb", 100, "a file:PATH audit sink's file is rotated (PATH.1, PATH.2, ...) before it grows past this many MiB")
	f.IntVar(&o.auditFileKeep, "audit-file-keep", 10, "rotated files a file:PATH audit sink keeps; the oldest is deleted")
	f.DurationVar(&o.auditLease, "audit-stream-lease", 15*time.Second, "how long a replica keeps an audit sink without renewing it: after a crash, another replica (or this one restarted) takes the sink over once it ends")
	addGatewayFlags(f, &o.gw)
	o.oidc.addFlags(f)
	d := httpapi.DefaultTimeouts
	f.DurationVar(&o.timeouts.ReadHeader, "read-header-timeout", d.ReadHeader, "how long a client may take to send a request's headers")
	f.DurationVar(&o.timeouts.Read, "read-timeout", d.Read, "how long a client may take to send a whole request, body included")
	f.DurationVar(&o.timeouts.Write, "write-timeout", d.Write, "how long the server may take to answer a request, from the end of its headers")
	f.DurationVar(&o.timeouts.Idle, "idle-timeout", d.Idle, "how long a kept-alive connection may wait for its next request")
	return cmd
}

func splitEnvSep(name, sep string) []string {
	var out []string
	for _, v := range strings.Split(os.Getenv(name), sep) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func splitEnv(name string) []string {
	if v := os.Getenv(name); v != "" {
		return strings.Split(v, ",")
	}
	return nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, cli.UsageErrorf("--log-level %q: expected debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, cli.UsageErrorf("--log-format %q: expected text or json", format)
}

func runServe(ctx context.Context, o serveOptions, stdout, stderr io.Writer) error {
	log, err := newLogger(stderr, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	if o.maxKeys < 1 || o.maxKeys > 100 {
		return cli.UsageErrorf("--max-keys-per-application %d: expected 1 to 100", o.maxKeys)
	}
	trusted, err := parsePrefixes("--trusted-proxies", o.trustedProxies)
	if err != nil {
		return cli.UsageErrorf("%v", err)
	}
	webhookAllow, err := parseWebhookAllow(o.webhookAllow)
	if err != nil {
		return cli.UsageErrorf("%v", err)
	}
	if o.usageRetention == 0 {
		o.usageRetention = 14 * 24 * time.Hour
	}
	if o.usageRetention < time.Hour {
		return cli.UsageErrorf("--usage-retention %s: expected at least 1h", o.usageRetention)
	}
	if o.quotaLease == 0 {
		o.quotaLease = verify.DefaultQuotaLease
	}
	if o.quotaLease < 1 || o.quotaLease > 1_000_000 {
		return cli.UsageErrorf("--quota-lease %d: expected 1 to 1000000 (0 takes the default, %d)", o.quotaLease, verify.DefaultQuotaLease)
	}
	if o.flushInterval < 10*time.Millisecond || o.flushInterval > time.Minute {
		return cli.UsageErrorf("--usage-flush-interval %s: expected 10ms to 1m", o.flushInterval)
	}
	if o.signatureWindow == 0 {
		o.signatureWindow = httpsig.DefaultWindow
	}
	if o.signatureWindow < time.Second || o.signatureWindow > time.Hour {
		return cli.UsageErrorf("--signature-window %s: expected a duration from 1s to 1h, e.g. 60s", o.signatureWindow)
	}

	if o.timeouts == (httpapi.Timeouts{}) {
		o.timeouts = httpapi.DefaultTimeouts
	}
	for _, t := range []struct {
		flag string
		d    time.Duration
	}{
		{"--read-header-timeout", o.timeouts.ReadHeader}, {"--read-timeout", o.timeouts.Read},
		{"--write-timeout", o.timeouts.Write}, {"--idle-timeout", o.timeouts.Idle},
	} {
		if t.d < 100*time.Millisecond || t.d > time.Hour {
			return cli.UsageErrorf("%s %s: expected 100ms to 1h", t.flag, t.d)
		}
	}

	if o.guardFailures < 0 || (o.guardFailures > 0 && o.guardRefill <= 0) {
		return cli.UsageErrorf("--guard-failures must be 0 or more and --guard-refill-per-minute more than 0")
	}

	if (o.tlsCert == "") != (o.tlsKey == "") {
		return cli.UsageErrorf("--tls-cert and --tls-key go together: give both or neither")
	}
	var tlsConfig *tls.Config
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return cli.UsageErrorf("--tls-cert/--tls-key: %v", err)
		}
		tlsConfig = serverTLSConfig(cert)
	}
	leaks := &httpapi.LeakConfig{Action: manage.LeakAction(o.leakAction)}
	switch leaks.Action {
	case "":
		leaks.Action = manage.LeakDeactivate
	case manage.LeakDeactivate, manage.LeakFlag:
	default:
		return cli.UsageErrorf("--leak-action %q: expected deactivate or flag", o.leakAction)
	}
	if o.githubKeys != "" {
		doc, err := os.ReadFile(o.githubKeys)
		if err != nil {
			return cli.UsageErrorf("--github-secret-scanning-keys: %v", err)
		}
		if leaks.GitHubKeys, err = httpapi.ParseGitHubKeys(doc); err != nil {
			return cli.UsageErrorf("--github-secret-scanning-keys %s: %v", o.githubKeys, err)
		}
	}
	defaultPolicy, err := o.hygiene.policy()
	if err != nil {
		return err
	}
	var auditKey ed25519.PrivateKey
	if o.auditKey != "" {
		if auditKey, err = auditkey.ReadPrivate(o.auditKey); err != nil {
			return cli.UsageErrorf("--audit-signing-key: %v", err)
		}
		if o.auditEvery <= 0 && o.auditInterval <= 0 {
			return cli.UsageErrorf("--audit-checkpoint-events and --audit-checkpoint-interval: at least one must be above 0")
		}
	}
	if o.auditLease < time.Second || o.auditLease > 10*time.Minute {
		return cli.UsageErrorf("--audit-stream-lease %s: expected 1s to 10m", o.auditLease)
	}
	auditSinks, err := auditstream.Open(auditstream.Config{
		Sinks: o.auditSinks, Stdout: stdout, FileMaxBytes: int64(o.auditFileMaxMB) << 20, FileKeep: o.auditFileKeep,
		SyslogCA: o.auditSyslogCA, SyslogCert: o.auditSyslogCert, SyslogKey: o.auditSyslogKey,
	})
	if err != nil {
		return cli.UsageErrorf("%v", err)
	}
	var scopeRules []httpapi.ScopeRule
	for _, s := range o.scopeRules {
		r, err := httpapi.ParseScopeRule(s)
		if err != nil {
			return cli.UsageErrorf("--scope-rule: %s", latchkey.ErrorMessage(err))
		}
		scopeRules = append(scopeRules, r)
	}
	pathRelax, err := latchkey.ParsePathRelax(o.pathRelax)
	if err != nil {
		return cli.UsageErrorf("--path-relax: %s", latchkey.ErrorMessage(err))
	}
	if err := o.gw.check(); err != nil {
		return err
	}
	oidcConfig, err := o.oidc.config()
	if err != nil {
		return err
	}

	rates, rateFailure, err := openRateStore(ctx, o.rateStore, o.rateFailure, log)
	if err != nil {
		return err
	}
	if rates != nil {
		defer rates.Close()
	}

	store, dbDesc, err := openStore(ctx, o.databaseURL)
	if err != nil {
		return err
	}
	defer store.Close()

	ix := verify.NewIndex()
	// Keep the heap's growth above the index small from the start
	// (gcpace.go), the load included: the index is pointer-free, so
	// collecting often is cheap, and the load's garbage never grows to
	// the size of the index.
	go paceGC(ctx, log)
	start := time.Now()
	// On PostgreSQL, other replicas change keys too: the change feed
	// (LISTEN/NOTIFY and a periodic resync) loads the index, and goes on
	// from there, so the keys are read once, not once here and once more
	// when the feed starts.
	var watcher *postgres.Watcher
	var n int
	if pg, ok := store.(*postgres.Store); ok {
		watcher = pg.NewWatcher(ix, postgres.WatchOptions{Resync: o.resync, Log: log})
		n, err = watcher.Load(ctx)
	} else {
		n, err = ix.Sync(ctx, store)
	}
	if err != nil {
		return fmt.Errorf("loading keys: %w", err)
	}
	log.Info("index loaded", "keys", n, "duration", time.Since(start).Round(time.Millisecond))
	// Loading leaves garbage about the size of the index (every row as
	// read): hand those pages back to the system now, instead of keeping
	// them resident until the heap grows into them again.
	go func() {
		t := time.Now()
		debug.FreeOSMemory()
		log.Debug("returned the load's garbage to the system", "duration", time.Since(t).Round(time.Millisecond))
	}()

	ready := func(ctx context.Context) error { return store.Ping(ctx) }
	var changeTimings func() []postgres.ChangeTiming
	if w := watcher; w != nil {
		changeTimings = w.Timings
		go func() {
			if err := w.Run(ctx); err != nil {
				log.Error("change feed stopped", "err", err)
			}
		}()
		ready = func(ctx context.Context) error {
			if !w.Ready() {
				return latchkey.Unavailable(errors.New("not following the database's change feed"))
			}
			return store.Ping(ctx)
		}
	}

	// Every store operation from here on is timed for /metrics.
	mx := metrics.New(ix)
	store = mx.Store(store)
	rec := verify.NewRecorder(store, o.flushInterval, log)
	rec.Index = ix
	svc := manage.New(store, ix, log)
	svc.MaxKeysPerApplication = o.maxKeys
	svc.DefaultPolicy = defaultPolicy
	dispatcher := manage.NewDispatcher(store, log)
	dispatcher.UserAgent = "latchkey-webhooks/" + cli.Version
	dispatcher.Observe = mx.ObserveDelivery
	svc.Wake = dispatcher.Wake
	var streamer *auditstream.Streamer
	if len(auditSinks) > 0 {
		streamer = auditstream.New(store, auditSinks, log)
		streamer.Observe, streamer.Lease = mx, o.auditLease
		svc.Wake = func() { dispatcher.Wake(); streamer.Wake() }
	}
	destinations := &manage.Destinations{Policy: latchkey.DestinationPolicy{Allow: webhookAllow}}
	svc.Destinations, dispatcher.Destinations = destinations, destinations
	if len(webhookAllow) > 0 {
		log.Info("webhook destinations opened", "ranges", fmt.Sprint(webhookAllow))
	}

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", o.addr, err)
	}
	gwl, err := o.gw.listen()
	if err != nil {
		ln.Close()
		return err
	}
	defer gwl.close()
	endpoint := "http://" + ln.Addr().String()
	if tlsConfig != nil {
		endpoint = "https://" + ln.Addr().String()
		ln = tls.NewListener(ln, tlsConfig)
	}

	created, err := svc.Bootstrap(ctx)
	if err != nil {
		ln.Close()
		return fmt.Errorf("first-start setup: %w", err)
	}
	if created != nil {
		moved, err := credfile.SaveProfile(o.credentialsFile, o.profile, credfile.Profile{
			credfile.KeyAccessKeyID:     created.ID,
			credfile.KeySecretAccessKey: created.Secret,
			credfile.KeyEndpointURL:     endpoint,
		})
		if err != nil {
			ln.Close()
			return fmt.Errorf("saving the first operator key to %s: %w (delete the database to start over)", o.credentialsFile, err)
		}
		fmt.Fprintf(stdout, "First start: created operator %q with access key %s.\n", manage.BootstrapPrincipal, created.ID)
		fmt.Fprintf(stdout, "Its secret is saved in %s (profile %q, mode 0600); it is not shown anywhere else.\n", o.credentialsFile, o.profile)
		if moved != "" {
			fmt.Fprintf(stdout, "The profile's previous credentials were kept as profile %q.\n", moved)
		}
	}

	verifier := verify.New(ix, rec)
	verifier.Observer = mx
	verifier.Quotas, verifier.QuotaLease = svc, o.quotaLease
	// Quota reads add back what is held leased and unspent: this
	// replica's lease, or every replica's units in Redis.
	svc.QuotaHolds = verifier
	canaries := manage.NewCanaryAlerts(svc)
	canaries.Counted = mx.CanaryTriggered
	verifier.Canary = canaries
	canaryCtx, stopCanaries := context.WithCancel(context.WithoutCancel(ctx))
	canariesDone := make(chan struct{})
	go func() { defer close(canariesDone); canaries.Run(canaryCtx) }()
	defer func() { stopCanaries(); <-canariesDone }()
	if rates != nil {
		verifier.Rates, verifier.OnRateStoreError = redisRates{rates}, rateFailure
		// Quotas too: the units replicas lease from the ledger are kept
		// in Redis and every decision is one script there, exact across
		// replicas; when Redis cannot answer, a call on a key with a
		// quota is refused whatever --rate-limit-store-failure says.
		verifier.SharedQuotas = rates
	}
	// Nonces are shared through Redis when there is one, so that a
	// replay sent to another replica is refused; otherwise each replica
	// remembers the nonces it saw (docs/security.md says what that
	// guarantees).
	verifier.Signatures = &httpsig.Policy{Window: o.signatureWindow, Nonces: &httpsig.NonceCache{}}
	if rates != nil {
		verifier.Signatures.Nonces = rates
	}
	if o.guardFailures > 0 {
		verifier.Guard = verify.NewGuard(o.guardFailures, o.guardRefill)
		go func() {
			t := time.NewTicker(time.Minute)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-t.C:
					verifier.Guard.Sweep(now)
				}
			}
		}()
	}
	con := &console.Console{
		Service: svc, Verifier: verifier, Log: log, TrustedProxies: trusted,
		ClientIP:         func(r *http.Request) netip.Addr { return httpapi.ClientIP(r, trusted) },
		DisableKeySignin: !o.oidc.keySignin,
	}
	if oidcConfig != nil {
		if con.OIDC, err = newOIDC(ctx, oidcConfig); err != nil {
			ln.Close()
			return err
		}
		warnUnknownRoleMapAccounts(ctx, svc, oidcConfig.RoleMap, log)
	}
	api := &httpapi.Server{
		Service: svc, Verifier: verifier, Log: log, TrustedProxies: trusted, ScopeRules: scopeRules, PathRelax: pathRelax,
		Ready: ready, Leaks: leaks, Webhooks: dispatcher,
	}
	// the consumer portal (docs/portal.md) shares the console's OIDC
	portal := &console.Portal{Console: con}
	api.Mount = func(mux *http.ServeMux) {
		con.Mount(mux)
		portal.Mount(mux)
	}
	if auditKey != nil {
		api.AuditPublicKey = auditKey.Public().(ed25519.PublicKey)
		ck := &manage.Checkpointer{Service: svc, Key: auditKey, Every: o.auditEvery, Interval: o.auditInterval}
		go ck.Run(ctx, time.Second)
	}
	metricsSrv, err := o.hygiene.mountMetrics(api, mx, log)
	if err != nil {
		ln.Close()
		return err
	}
	if metricsSrv != nil {
		defer metricsSrv.Close()
	}
	if o.pprof {
		mountPprof(api, changeTimings)
	}
	handler := api.Handler()
	if tlsConfig != nil {
		handler = hsts(handler)
	}
	srv := httpapi.NewHTTPServer(handler, o.timeouts, log)
	recCtx, stopRec := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRec()
	rec.Start(recCtx)
	go compactUsage(ctx, store, o.usageRetention, log)
	go dispatcher.Run(ctx)
	if streamer != nil {
		// Stopped after the last request (so that its events go out
		// first, or wait in the log), and before the store closes: it
		// releases its leases.
		streamCtx, stopStream := context.WithCancel(context.WithoutCancel(ctx))
		streamDone := make(chan struct{})
		go func() { defer close(streamDone); streamer.Run(streamCtx) }()
		defer func() { stopStream(); <-streamDone }()
	}
	go svc.RunPolicies(ctx, o.hygiene.interval, o.hygiene.deliveryRetention, func(r manage.EnforceResult) {
		mx.ObservePolicy(r.Notices, r.Deactivated, r.Deleted, r.Cancelled)
	})

	fmt.Fprintf(stdout, "latchkey %s listening on %s (database %s)\n", cli.Version, endpoint, dbDesc)
	fmt.Fprintf(stdout, "Web console: %s%s/\n", endpoint, console.Prefix)
	if con.OIDC != nil {
		fmt.Fprintf(stdout, "Consumer portal: %s%s/ (OIDC callback %s)\n", endpoint, console.PortalPrefix, con.OIDC.PortalRedirectURL())
	}
	errc := make(chan error, 4)
	go func() { errc <- srv.Serve(ln) }()
	gw, err := gwl.serve(&o.gw, api, handler, o.timeouts, tlsConfig, log, stdout, errc)
	if err != nil {
		_ = srv.Close()
		return err
	}

	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
		log.Info("shutting down: finishing in-flight requests")
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown did not finish cleanly", "err", err)
	}
	gw.shutdown(sctx)
	if n := verifier.ReturnQuotaLeases(); n > 0 {
		log.Info("returned unspent quota leases", "units", n)
	}
	if err := rec.Stop(sctx); err != nil {
		log.Error("flushing usage on shutdown", "err", err)
	}
	log.Info("stopped")
	return nil
}

// tls12CipherSuites are the TLS 1.2 suites serve accepts: ECDHE key
// exchange (forward secrecy) with an AEAD cipher. No CBC suite: the
// CBC-SHA1 ones that Go would otherwise enable are the MAC-then-encrypt
// constructions behind Lucky Thirteen and other padding oracles, and the
// CBC-SHA256 ones are no better. TLS 1.3 suites are not configurable in Go
// and are all AEAD.
var tls12CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// serverTLSConfig is the TLS configuration of every listener serve opens
// with --tls-cert: the API, the reverse proxy and the ext_authz service.
func serverTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		CipherSuites: tls12CipherSuites,
	}
}

// parseWebhookAllow reads --webhook-allow-cidr: CIDR ranges in canonical
// form, or bare addresses, IPv4 written as IPv4. A range with host bits
// set is refused rather than narrowed to its network, so that a typo
// opens nothing that was not meant.
func parseWebhookAllow(vals []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil || a.Zone() != "" {
					return nil, fmt.Errorf("--webhook-allow-cidr %q: expected a CIDR range such as 10.1.2.0/24 or fd00:1::/64, or an IP address such as 10.1.2.3", s)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			if p.Addr().Is4In6() {
				return nil, fmt.Errorf("--webhook-allow-cidr %q: write IPv4 ranges as IPv4, such as %s", s, netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0)).Masked())
			}
			if p != p.Masked() {
				return nil, fmt.Errorf("--webhook-allow-cidr %q: host bits are set; did you mean %s?", s, p.Masked())
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// hsts tells browsers to use HTTPS only, for a year, once they have seen
// the server over TLS.
func hsts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		h.ServeHTTP(w, r)
	})
}

// compactUsage rolls per-minute usage older than the retention period up
// into hours, at start and then hourly.
func compactUsage(ctx context.Context, store latchkey.Store, retention time.Duration, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := store.CompactUsage(ctx, time.Now().Add(-retention))
		if err != nil && ctx.Err() == nil {
			log.Warn("rolling up usage counts", "err", err)
		} else if n > 0 {
			log.Info("rolled up usage counts", "minute_rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func newMigrateCmd() *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations and exit",
		Long: `Apply pending database migrations and exit. serve applies them too; this
command is for operators who apply schema changes as a separate step.

EXAMPLES
  latchkey migrate --database-url sqlite:/var/lib/latchkey/latchkey.db
  latchkey migrate --database-url postgres://latchkey@db/latchkey`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, desc, err := openStore(cmd.Context(), url)
			if err != nil {
				return err
			}
			defer s.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "database %s is up to date\n", desc)
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "database-url", envOr("LATCHKEY_DATABASE_URL", DefaultDatabaseURL()), "database to migrate (env LATCHKEY_DATABASE_URL)")
	return cmd
}
