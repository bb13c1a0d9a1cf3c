// Package proxy is latchkey's reverse-proxy mode: it stands in front of an
// API, decides on every call exactly as /v1/authorize does
// (httpapi.Server.Decide), and forwards the calls it allows to the upstream
// without their credential and with the caller's identity in
// X-Latchkey-* headers.
//
// Bodies stream both ways (request bodies are never buffered; responses
// without a length, such as server-sent events, are flushed as they
// come), WebSocket and other protocol upgrades pass through, and an
// upstream that cannot be reached or does not answer in
// time gets the caller a JSON error (502 or 504), never a hang.
//
// Callers are bounded stage by stage rather than by whole-request or
// whole-response timeouts, which would cut legitimate streams
// (listener.go); the body of a refused call is never read (body.go); and
// an upgraded connection ends when its key stops being valid (upgrade.go).
package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/verify"
)

// Timeouts bound the proxy's calls to the upstream. Zero fields take the
// defaults of DefaultTimeouts.
type Timeouts struct {
	// Dial bounds connecting to the upstream (TCP and TLS handshakes).
	Dial time.Duration
	// ResponseHeader bounds the wait for the upstream's response headers
	// once the request is sent; the body then streams for as long as it
	// takes.
	ResponseHeader time.Duration
	// Idle is how long a kept-alive connection to the upstream may wait
	// for its next request.
	Idle time.Duration
}

// DefaultTimeouts are the timeouts used when none are given.
var DefaultTimeouts = Timeouts{Dial: 10 * time.Second, ResponseHeader: 60 * time.Second, Idle: 90 * time.Second}

func (t Timeouts) withDefaults() Timeouts {
	if t.Dial <= 0 {
		t.Dial = DefaultTimeouts.Dial
	}
	if t.ResponseHeader <= 0 {
		t.ResponseHeader = DefaultTimeouts.ResponseHeader
	}
	if t.Idle <= 0 {
		t.Idle = DefaultTimeouts.Idle
	}
	return t
}

// NewTransport returns the transport the proxy uses to reach the upstream:
// no proxy from the environment, the given timeouts, and enough idle
// connections kept for a busy API (net/http's default keeps 2 per host,
// which under concurrent load opens and closes a connection per call).
func NewTransport(t Timeouts) *http.Transport {
	t = t.withDefaults()
	d := &net.Dialer{Timeout: t.Dial, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       t.Idle,
		TLSHandshakeTimeout:   t.Dial,
		ResponseHeaderTimeout: t.ResponseHeader,
		ExpectContinueTimeout: time.Second,
	}
}

// Config configures a Proxy.
type Config struct {
	// Upstream is the API's base URL (http or https). A path in it is
	// prefixed to every call's path.
	Upstream *url.URL
	// API decides on each call; its TrustedProxies also say whose
	// X-Forwarded-For chain is passed on to the upstream.
	API *httpapi.Server
	// Transport reaches the upstream; nil means NewTransport(Timeouts).
	Transport http.RoundTripper
	Timeouts  Timeouts
	// Client bounds the callers' connections (listener.go).
	Client ClientTimeouts
	// SignedBodyBuffer is how much of a signed call's body is read and
	// checked against its Content-Digest before anything is forwarded
	// (signed.go); DefaultSignedBodyBuffer when 0.
	SignedBodyBuffer int
	Log              *slog.Logger
}

// Proxy is an http.Handler that verifies each call and forwards the allowed
// ones to the upstream.
type Proxy struct {
	api *httpapi.Server
	// rp forwards calls with a body and upgrades; forward (forward.go),
	// through rt, the others.
	rp         *httputil.ReverseProxy
	rt         http.RoundTripper
	h1         *h1Client // for forward's idempotent calls; nil: rt
	rewriteOut func(*httputil.ProxyRequest)
	upstream   *url.URL // rewriteOut's
	buffers    *bufferPool
	log        *slog.Logger
	client     ClientTimeouts
	upgrades   *upgrades
	// signedBuffer: Config.SignedBodyBuffer
	signedBuffer int
}

// New returns a proxy to c.Upstream. Returns EINVALID when the upstream is
// not an absolute http or https URL, or holds user information or a query.
func New(c Config) (*Proxy, error) {
	u := c.Upstream
	if u == nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, latchkey.Errorf(latchkey.EINVALID, "the upstream must be an http or https URL such as http://127.0.0.1:9000")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, latchkey.Errorf(latchkey.EINVALID, "the upstream URL must not hold user information, a query or a fragment")
	}
	if c.API == nil {
		return nil, latchkey.Errorf(latchkey.EINVALID, "proxy: no API to decide with")
	}
	p := &Proxy{api: c.API, log: c.Log, client: c.Client.withDefaults(), signedBuffer: c.SignedBodyBuffer}
	if p.signedBuffer <= 0 {
		p.signedBuffer = DefaultSignedBodyBuffer
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.upgrades = newUpgrades(c.API.Verifier, p.log)
	tr := c.Transport
	if tr == nil {
		tr = NewTransport(c.Timeouts)
		p.h1 = newH1Client(u, c.Timeouts)
	}
	p.rt, p.rewriteOut, p.upstream, p.buffers = tr, p.rewrite(u), u, &bufferPool{}
	p.rp = &httputil.ReverseProxy{
		Rewrite:   p.rewriteOut,
		Transport: tr,
		// 0, httputil's default: a response without a Content-Length
		// (chunked: server-sent events, long polls, streamed downloads)
		// or of type text/event-stream is flushed on every write anyway;
		// one with a length goes out as net/http's buffers fill and in
		// full when it ends. -1 (every write flushed) cost a timer and a
		// goroutine per call, whose flush usually sends the headers in
		// a write system call of their own before the body's: the
		// flushes were 13% of the proxy's CPU in a profile under load.
		FlushInterval:  0,
		BufferPool:     p.buffers,
		ModifyResponse: p.answered,
		ErrorHandler:   p.upstreamError,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	return p, nil
}

type decisionKey struct{}

// ServeHTTP decides on the call and either answers the refusal as
// /v1/authorize would (with its JSON error) or forwards the call in the
// canonical form it was judged in (httpapi.Target): the path with dot
// segments removed, slashes merged and unreserved characters decoded, and
// the method and query as sent.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	uri := r.RequestURI // as it came on the wire
	if !strings.HasPrefix(uri, "/") {
		uri = r.URL.RequestURI() // absolute-form: net/http has parsed it
	}
	cc := &callCtx{Context: r.Context()} // the proxy's surface, too
	r = r.WithContext(cc)
	res, t := p.api.Decide(r, r.Method, uri)
	if !res.Valid() {
		p.log.Debug("proxy refused a call", "method", r.Method, "code", res.Code,
			"client_ip", httpapi.ClientIP(r, p.api.TrustedProxies))
		p.refuse(w, r, res)
		return
	}
	// The key's rate-limit and quota headers, on whatever answer the
	// call gets; written again after each 1xx answer from the upstream,
	// which clears the header map (writeLimits).
	cc.w, cc.rate, cc.quota = w, res.Rate, res.Quota
	cc.writeLimits()
	// The request is this handler's to change: the upstream gets the
	// call that was judged.
	r.Method = t.Method
	if r.URL.Path != t.Path.Segmented || r.URL.EscapedPath() != t.Path.Escaped || r.URL.RawQuery != t.RawQuery {
		u := *r.URL
		u.Path, u.RawPath, u.RawQuery = t.Path.Segmented, t.Path.Escaped, t.RawQuery
		r.URL = &u
	}
	cc.entry = res.Entry // the upstream call's, for rewrite
	e := &cc.entry
	r = p.bound(w, r, e)
	if r = p.signedBody(w, r); r == nil {
		return
	}
	if lean(r) {
		p.forward(w, r, cc)
		return
	}
	p.rp.ServeHTTP(w, r)
}

// callCtx is the context of a call the proxy serves: the surface the
// decision is made on (latchkey.SurfaceProxy, under httpapi.SurfaceKey,
// as httpapi.WithSurface would keep it), and the decided key's entry
// (under decisionKey) for rewrite once it is known. One allocation and
// one request copy where context.WithValue layers for the surface and
// the entry took two more allocations and a second request copy.
type callCtx struct {
	context.Context
	entry verify.Entry

	// w, rate and quota are the call's writer and the key's rate limit
	// and quota after the call, for writeLimits.
	w     http.ResponseWriter
	rate  verify.RateInfo
	quota verify.QuotaInfo
}

// callKey is the context key under which a callCtx answers itself.
type callKey struct{}

// writeLimits sets the key's RateLimit-* and quota headers on the
// answer's header map, replacing any it holds. It is called before the
// call goes upstream, and again after each informational answer passed
// on (a 1xx clears the header map once written: net/http does not) and
// before an error answer, so that the final answer has them whatever came
// before it; the upstream's own headers are added after.
func (c *callCtx) writeLimits() {
	if c == nil || c.w == nil || (c.rate.Limit == 0 && !c.quota.Limited) {
		return
	}
	httpapi.WriteRateLimitHeaders(c.w.Header(), verify.Result{Code: latchkey.CodeValid, Rate: c.rate, Quota: c.quota})
}

// callOf is the callCtx ctx is, or is made from; nil when none.
func callOf(ctx context.Context) *callCtx {
	c, _ := ctx.Value(callKey{}).(*callCtx)
	return c
}

func (c *callCtx) Value(k any) any {
	switch k.(type) {
	case decisionKey:
		return &c.entry
	case callKey:
		return c
	case httpapi.SurfaceKey:
		return latchkey.SurfaceProxy
	}
	return c.Context.Value(k)
}

// rewrite builds the upstream request: the credential removed; any
// client-sent X-Latchkey-* header and client-address header (X-Real-IP,
// True-Client-IP, ..., see httpapi.ClientAddressHeaders) removed, whatever
// its case and with "_" for "-"; the caller's identity added; X-Real-IP
// set to the address latchkey decided on; X-Forwarded-For set to that
// address followed by the peer when the peer is a trusted proxy, or to
// the peer alone; X-Forwarded-Host and -Proto set.
func (p *Proxy) rewrite(upstream *url.URL) func(*httputil.ProxyRequest) {
	return func(pr *httputil.ProxyRequest) { p.rewriteInto(pr, upstream, make([]string, 4)) }
}

// rewriteInto is rewrite's work, the forwarding headers' four values
// stored in vals (len 4, zeroed; a pooled forwarded's on the lean path).
func (p *Proxy) rewriteInto(pr *httputil.ProxyRequest, upstream *url.URL, vals []string) {
	pr.SetURL(upstream)
	h := pr.Out.Header
	httpapi.DeleteClientHeaders(h) // the credential too
	p.api.DeleteUntrustedCertHeaders(pr.In, h)
	delete(h, "X-Forwarded-For")
	client := httpapi.ClientIP(pr.In, p.api.TrustedProxies)
	// What httputil.ProxyRequest.SetXForwarded sets, with the four
	// headers' values in vals (each of capacity 1, as
	// Header.Set would leave them): X-Forwarded-For the peer,
	// after the client address when a trusted proxy forwarded the
	// call for a client other than itself (none when RemoteAddr is
	// not host:port), X-Forwarded-Host and -Proto; then X-Real-IP.
	peerHost, _, herr := net.SplitHostPort(pr.In.RemoteAddr)
	peer, perr := netip.ParseAddrPort(pr.In.RemoteAddr)
	var cs string // client as text, once
	switch {
	case !client.IsValid():
	case perr == nil && herr == nil && client.Is4() && peer.Addr() == client:
		// An IPv4 address has one text form that netip parses
		// (no leading zeros): the peer's is client.String().
		cs = peerHost
	default:
		cs = client.String()
	}
	if herr == nil {
		vals[0] = peerHost
		if perr == nil && peer.Addr().Unmap() != client && client.IsValid() {
			vals[0] = cs + ", " + peerHost
		}
		h["X-Forwarded-For"] = vals[0:1:1]
	}
	vals[1] = pr.In.Host
	h["X-Forwarded-Host"] = vals[1:2:2]
	vals[2] = "http"
	if pr.In.TLS != nil {
		vals[2] = "https"
	}
	h["X-Forwarded-Proto"] = vals[2:3:3]
	if client.IsValid() {
		vals[3] = cs
		h["X-Real-Ip"] = vals[3:4:4]
	}
	e, _ := pr.In.Context().Value(decisionKey{}).(*verify.Entry)
	httpapi.SetIdentityHeaders(h, e)
}

// upstreamError answers a call the upstream did not: 504 when it did not
// answer in time, 502 otherwise, with a JSON error. A call whose body
// stopped arriving gets 408; an upgrade whose key stopped being valid
// before the upstream answered gets the refusal; a caller that went away
// gets nothing.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	callOf(r.Context()).writeLimits() // back on after an upstream 1xx took them away
	if bodyFailed(w, r) {
		p.log.Debug("the caller's request body stopped arriving", "method", r.Method)
		return
	}
	if digestFailed(w, r) {
		p.log.Debug("a signed call's body did not match its Content-Digest; the upstream request was aborted", "method", r.Method)
		return
	}
	var revoked revokedError
	if errors.As(context.Cause(r.Context()), &revoked) {
		httpapi.WriteDecision(w, verify.Result{Code: revoked.Code})
		return
	}
	if r.Context().Err() != nil {
		p.log.Debug("caller went away before the upstream answered", "method", r.Method)
		return
	}
	status, msg := http.StatusBadGateway, "the upstream API could not be reached or failed to answer"
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		status, msg = http.StatusGatewayTimeout, "the upstream API did not answer in time"
	}
	// The error names the upstream's address and the failure, not the
	// call's URL; the path is not logged in case it holds a mistyped key.
	p.log.Warn("upstream call failed", "method", r.Method, "status", status, "err", err)
	var body httpapi.ErrorBody
	body.Error.Code, body.Error.Message = latchkey.EUNAVAILABLE, msg
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// bufferPool reuses the buffers the proxy copies bodies through. Without
// one, httputil.ReverseProxy allocates 32 KiB for every call, which on a
// server whose heap holds a large key index makes the collector run, and
// mark the index, several times as often.
type bufferPool struct{ p sync.Pool }

// copyBufferSize is what httputil.ReverseProxy allocates when it has no pool.
const copyBufferSize = 32 << 10

// The pool holds the buffers as array pointers, which an interface holds
// without an allocation (a *[]byte would need one per Put).
func (b *bufferPool) Get() []byte {
	if a, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return a[:]
	}
	return make([]byte, copyBufferSize)
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) >= copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(buf[:copyBufferSize]))
	}
}
