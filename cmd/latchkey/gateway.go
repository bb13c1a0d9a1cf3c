package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/cli"
	"github.com/latchkey/latchkey/internal/extauthz"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/proxy"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// gatewayOptions are serve's optional gateway listeners: forward auth on
// a listener of its own, the Envoy ext_authz gRPC service and the reverse
// proxy. They run in the serve process so that they decide with its key
// index: a separate process on the embedded SQLite database would never
// hear of a key deactivated through this one.
type gatewayOptions struct {
	authorizeAddr  string
	extAuthzAddr   string
	proxyUpstream  string
	proxyAddr      string
	proxyTimeouts  proxy.Timeouts
	proxyClient    proxy.ClientTimeouts
	upstreamParsed *url.URL
	// proxyClientCA asks the reverse proxy's callers for a TLS client
	// certificate issued by one of its CAs (clientCAs), for keys bound
	// to a certificate.
	proxyClientCA string
	clientCAs     *x509.CertPool
}

func addGatewayFlags(f *pflag.FlagSet, o *gatewayOptions) {
	f.StringVar(&o.authorizeAddr, "authorize-addr", os.Getenv("LATCHKEY_AUTHORIZE_ADDR"), "address of a listener that serves forward auth (/v1/authorize) alone, for gateways: the same decisions as the API's listener, answered with less work per call (docs/integrations.md); off when empty (env LATCHKEY_AUTHORIZE_ADDR)")
	f.StringVar(&o.extAuthzAddr, "ext-authz-addr", os.Getenv("LATCHKEY_EXT_AUTHZ_ADDR"), "address for the Envoy ext_authz gRPC service (envoy.service.auth.v3.Authorization); off when empty (env LATCHKEY_EXT_AUTHZ_ADDR)")
	f.StringVar(&o.proxyUpstream, "proxy-upstream", os.Getenv("LATCHKEY_PROXY_UPSTREAM"), "URL of an API to put behind latchkey's reverse proxy, e.g. http://127.0.0.1:9000; off when empty (env LATCHKEY_PROXY_UPSTREAM)")
	f.StringVar(&o.proxyAddr, "proxy-addr", envOr("LATCHKEY_PROXY_ADDR", "127.0.0.1:8081"), "address the reverse proxy listens on, with --proxy-upstream (env LATCHKEY_PROXY_ADDR)")
	f.StringVar(&o.proxyClientCA, "proxy-client-ca", os.Getenv("LATCHKEY_PROXY_CLIENT_CA"), "PEM file of the CAs whose client certificates the reverse proxy accepts (TLS client authentication, optional for callers; needs --tls-cert): keys bound to a certificate are judged by the one presented (env LATCHKEY_PROXY_CLIENT_CA)")
	f.DurationVar(&o.proxyTimeouts.ResponseHeader, "proxy-response-header-timeout", proxy.DefaultTimeouts.ResponseHeader, "how long the reverse proxy waits for the upstream's response headers before answering 504")
	f.DurationVar(&o.proxyTimeouts.Dial, "proxy-dial-timeout", proxy.DefaultTimeouts.Dial, "how long the reverse proxy waits to connect to the upstream before answering 502")
	d := proxy.DefaultClientTimeouts
	f.DurationVar(&o.proxyClient.ReadHeader, "proxy-read-header-timeout", d.ReadHeader, "how long a caller of the reverse proxy may take to send a request's line and headers")
	f.DurationVar(&o.proxyClient.Body, "proxy-body-timeout", d.Body, "how long a request body sent through the reverse proxy may go without a byte before the call is cut off (between two reads, not for the whole body)")
	f.DurationVar(&o.proxyClient.Send, "proxy-send-timeout", d.Send, "how long the reverse proxy waits for a caller to take each write of its answer before cutting it off (per write, not for the whole answer; WebSockets included)")
	f.DurationVar(&o.proxyClient.Idle, "proxy-idle-timeout", d.Idle, "how long a kept-alive connection to the reverse proxy may wait for its next request")
}

// check validates the options; errors name the flag.
func (o *gatewayOptions) check() error {
	if o.proxyUpstream != "" {
		u, err := url.Parse(o.proxyUpstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return cli.UsageErrorf("--proxy-upstream %q: expected an http or https URL without credentials or query, e.g. http://127.0.0.1:9000", o.proxyUpstream)
		}
		o.upstreamParsed = u
		if o.proxyAddr == "" {
			return cli.UsageErrorf("--proxy-addr: give the address the reverse proxy listens on, e.g. 127.0.0.1:8081")
		}
	}
	if o.proxyClientCA != "" {
		if o.proxyUpstream == "" {
			return cli.UsageErrorf("--proxy-client-ca applies to the reverse proxy: give --proxy-upstream too")
		}
		b, err := os.ReadFile(o.proxyClientCA)
		if err != nil {
			return cli.UsageErrorf("--proxy-client-ca %s: %v", o.proxyClientCA, err)
		}
		o.clientCAs = x509.NewCertPool()
		if !o.clientCAs.AppendCertsFromPEM(b) {
			return cli.UsageErrorf("--proxy-client-ca %s: no PEM CERTIFICATE found", o.proxyClientCA)
		}
	}
	if o.proxyTimeouts.ResponseHeader < 0 || o.proxyTimeouts.Dial < 0 {
		return cli.UsageErrorf("--proxy-response-header-timeout and --proxy-dial-timeout must not be negative")
	}
	if o.proxyClient == (proxy.ClientTimeouts{}) { // options not made by the flags
		o.proxyClient = proxy.DefaultClientTimeouts
	}
	for _, t := range []struct {
		flag string
		d    time.Duration
	}{
		{"--proxy-read-header-timeout", o.proxyClient.ReadHeader}, {"--proxy-body-timeout", o.proxyClient.Body},
		{"--proxy-send-timeout", o.proxyClient.Send}, {"--proxy-idle-timeout", o.proxyClient.Idle},
	} {
		if t.d < 100*time.Millisecond || t.d > time.Hour {
			return cli.UsageErrorf("%s %s: expected 100ms to 1h", t.flag, t.d)
		}
	}
	return nil
}

// gatewayListeners are the gateway sockets, opened before the server
// starts so that a busy port fails serve at once.
type gatewayListeners struct {
	authorize, extAuthz, proxy net.Listener
}

func (o *gatewayOptions) listen() (*gatewayListeners, error) {
	l := &gatewayListeners{}
	if o.authorizeAddr != "" {
		ln, err := net.Listen("tcp", o.authorizeAddr)
		if err != nil {
			return nil, fmt.Errorf("--authorize-addr %s: %w", o.authorizeAddr, err)
		}
		l.authorize = ln
	}
	if o.extAuthzAddr != "" {
		ln, err := net.Listen("tcp", o.extAuthzAddr)
		if err != nil {
			l.close()
			return nil, fmt.Errorf("--ext-authz-addr %s: %w", o.extAuthzAddr, err)
		}
		l.extAuthz = ln
	}
	if o.upstreamParsed != nil {
		ln, err := net.Listen("tcp", o.proxyAddr)
		if err != nil {
			l.close()
			return nil, fmt.Errorf("--proxy-addr %s: %w", o.proxyAddr, err)
		}
		l.proxy = ln
	}
	return l, nil
}

func (l *gatewayListeners) close() {
	for _, ln := range []net.Listener{l.authorize, l.extAuthz, l.proxy} {
		if ln != nil {
			ln.Close()
		}
	}
}

// gateways are the running gateway servers.
type gateways struct {
	authorize *httpapi.AuthorizeServer
	grpc      *grpc.Server
	proxy     *http.Server
	log       *slog.Logger
}

// serve starts the gateway servers on l, deciding with api (whose
// handler, as the API's listener serves it, is handler), and prints
// where they are. Serving errors are sent to errc.
func (l *gatewayListeners) serve(o *gatewayOptions, api *httpapi.Server, handler http.Handler, timeouts httpapi.Timeouts, tlsConfig *tls.Config, log *slog.Logger, stdout io.Writer, errc chan<- error) (*gateways, error) {
	g := &gateways{log: log}
	if l.authorize != nil {
		g.authorize = &httpapi.AuthorizeServer{Handler: handler, Timeouts: timeouts, Log: log}
		ln, scheme := l.authorize, "http"
		if tlsConfig != nil {
			// HTTP/1.1 only: the server speaks nothing else.
			ac := tlsConfig.Clone()
			ac.NextProtos = []string{"http/1.1"}
			ln, scheme = tls.NewListener(ln, ac), "https"
		}
		go func() {
			if err := g.authorize.Serve(ln); !errors.Is(err, httpapi.ErrAuthorizeServerClosed) {
				errc <- fmt.Errorf("forward-auth listener: %w", err)
			}
		}()
		fmt.Fprintf(stdout, "forward auth on %s://%s%s\n", scheme, l.authorize.Addr(), "/v1/authorize")
	}
	if l.extAuthz != nil {
		opts := []grpc.ServerOption{
			grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Minute}),
			grpc.MaxRecvMsgSize(1 << 20),
		}
		if tlsConfig != nil {
			opts = append(opts, grpc.Creds(credentials.NewTLS(tlsConfig)))
		}
		g.grpc = grpc.NewServer(opts...)
		(&extauthz.Server{API: api}).Register(g.grpc)
		go func() {
			if err := g.grpc.Serve(l.extAuthz); err != nil {
				errc <- fmt.Errorf("ext_authz service: %w", err)
			}
		}()
		fmt.Fprintf(stdout, "Envoy ext_authz gRPC service on %s\n", l.extAuthz.Addr())
	}
	if l.proxy != nil {
		p, err := proxy.New(proxy.Config{Upstream: o.upstreamParsed, API: api, Timeouts: o.proxyTimeouts, Client: o.proxyClient, Log: log})
		if err != nil {
			return nil, cli.UsageErrorf("--proxy-upstream: %s", latchkey.ErrorMessage(err))
		}
		// No whole-request or whole-response timeout: bodies of any size
		// stream through, and WebSocket connections stay open. Each stage
		// is bounded instead (proxy.ClientTimeouts).
		g.proxy = p.NewServer()
		ln, scheme := p.Listener(l.proxy), "http"
		if o.clientCAs != nil && tlsConfig == nil {
			return nil, cli.UsageErrorf("--proxy-client-ca needs --tls-cert and --tls-key: client certificates come with TLS")
		}
		if tlsConfig != nil {
			pc := tlsConfig
			if o.clientCAs != nil {
				// Optional: callers without a certificate still get in,
				// and only keys bound to one need it.
				pc = tlsConfig.Clone()
				pc.ClientAuth, pc.ClientCAs = tls.VerifyClientCertIfGiven, o.clientCAs
			}
			ln, scheme = tls.NewListener(ln, pc), "https"
		}
		go func() {
			if err := g.proxy.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("reverse proxy: %w", err)
			}
		}()
		fmt.Fprintf(stdout, "reverse proxy on %s://%s to %s\n", scheme, l.proxy.Addr(), o.upstreamParsed.Redacted())
	}
	return g, nil
}

// shutdown lets in-flight calls finish until ctx ends, then stops.
func (g *gateways) shutdown(ctx context.Context) {
	if g == nil {
		return
	}
	if g.authorize != nil {
		if err := g.authorize.Shutdown(ctx); err != nil {
			g.log.Warn("forward-auth listener did not shut down cleanly", "err", err)
			_ = g.authorize.Close()
		}
	}
	if g.proxy != nil {
		if err := g.proxy.Shutdown(ctx); err != nil {
			g.log.Warn("reverse proxy did not shut down cleanly", "err", err)
		}
	}
	if g.grpc != nil {
		done := make(chan struct{})
		go func() { g.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			g.grpc.Stop()
		}
	}
}
