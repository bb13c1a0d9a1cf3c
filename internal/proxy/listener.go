package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// ClientTimeouts bound how long a caller may hold the proxy's connections
// without making progress. The proxy streams request and response bodies
// of any size and keeps upgraded connections (WebSocket) open, so unlike
// the API's listener it has no whole-request read timeout and no
// whole-response write timeout: each stage is bounded instead, and a
// stream that keeps moving is never cut. Zero fields take the defaults of
// DefaultClientTimeouts.
//
// A call that is refused never has its body read (see Proxy.refuse), so
// the body bound only ever applies to callers with a valid key.
type ClientTimeouts struct {
	// ReadHeader bounds the request line and headers, in total.
	ReadHeader time.Duration
	// Body bounds each read of an allowed call's body: a body that sends
	// nothing for this long is cut off (408 if no answer was sent yet).
	// It is not a bound on the whole body.
	Body time.Duration
	// Send bounds each write to the caller, upgraded connections
	// included: a caller that stops reading its answer is cut off. It is
	// not a bound on the whole answer.
	Send time.Duration
	// Idle is how long a kept-alive connection may wait for its next
	// request.
	Idle time.Duration
}

// DefaultClientTimeouts are the caller-side timeouts used when none are
// given. ReadHeader and Idle are those of the API's listener.
var DefaultClientTimeouts = ClientTimeouts{ReadHeader: 10 * time.Second, Body: 30 * time.Second, Send: 30 * time.Second, Idle: 120 * time.Second}

func (t ClientTimeouts) withDefaults() ClientTimeouts {
	d := DefaultClientTimeouts
	for _, f := range []struct{ v, def *time.Duration }{
		{&t.ReadHeader, &d.ReadHeader}, {&t.Body, &d.Body}, {&t.Send, &d.Send}, {&t.Idle, &d.Idle},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return t
}

// MaxHeaderBytes bounds a call's request line and headers on the proxy's
// listener; past it net/http answers 431 itself.
const MaxHeaderBytes = 64 << 10

// NewServer returns the http.Server that serves p to callers, with the
// header and idle timeouts of the proxy's ClientTimeouts. Serve it on
// p.Listener, under any TLS, for the send timeout and for refused calls
// to be closed cleanly; the body timeout applies either way.
func (p *Proxy) NewServer() *http.Server {
	s := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: p.client.ReadHeader,
		IdleTimeout:       p.client.Idle,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(interface{ NetConn() net.Conn }); ok { // *tls.Conn
				c = tc.NetConn()
			}
			if cc, ok := c.(*clientConn); ok {
				return context.WithValue(ctx, clientConnKey{}, cc)
			}
			return ctx
		},
	}
	// Shutdown does not wait for upgraded connections (net/http no
	// longer tracks them): close them, as the process is about to.
	s.RegisterOnShutdown(p.upgrades.closeAll)
	if p.h1 != nil {
		s.RegisterOnShutdown(p.h1.closeIdle)
	}
	return s
}

// Listener returns ln with each accepted connection bounded by the Send
// timeout. Wrap it before TLS, so that the TLS layer's writes are bounded
// too and the server still sees a *tls.Conn.
func (p *Proxy) Listener(ln net.Listener) net.Listener {
	return &clientListener{Listener: ln, send: p.client.Send}
}

type clientListener struct {
	net.Listener
	send time.Duration
}

func (l *clientListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &clientConn{Conn: c, send: l.send}, nil
}

// clientConn is a caller's connection to the proxy.
type clientConn struct {
	net.Conn
	send time.Duration
	// leaving is set when the rest of what the caller sends will not be
	// read: reads fail at once, and Close lingers (see leave).
	leaving atomic.Bool
	// armed is when Write last set the write deadline to that time plus
	// send, as monotonic nanoseconds since clockBase plus one; 0 when the
	// deadline was not set by Write, or was set since by someone else.
	armed atomic.Int64
}

// clockBase is the origin of clientConn.armed's monotonic clock.
var clockBase = time.Now()

// rearmFraction: Write sets the write deadline again only when the last
// one it set is at least send/rearmFraction old. Each write thus waits at
// most send and at least send·(1 − 1/rearmFraction) (29 s of the default
// 30), and a connection's answer of many writes in quick succession (the
// header and the body of a call, a call after a call on a kept-alive
// connection) changes the deadline once, not once per write.
const rearmFraction = 32

type clientConnKey struct{}

// Write gives each write the Send timeout. A deadline per write, rather
// than one for the whole answer, cuts off a caller that stops reading
// without cutting a long download or a quiet WebSocket.
//
// Setting a deadline takes a timer change in the runtime's poller; it is
// skipped when Write set one less than send/rearmFraction ago, which
// leaves this write at least send·(1 − 1/rearmFraction) (see
// rearmFraction): the bound is never longer than send.
func (c *clientConn) Write(b []byte) (int, error) {
	now := time.Since(clockBase)
	if a := c.armed.Load(); a == 0 || now-time.Duration(a-1) >= c.send/rearmFraction || now < time.Duration(a-1) {
		c.armed.Store(0)
		if err := c.Conn.SetWriteDeadline(clockBase.Add(now + c.send)); err != nil {
			return 0, err
		}
		c.armed.Store(int64(now) + 1)
	}
	return c.Conn.Write(b)
}

// SetWriteDeadline sets the write deadline; Write sets its own again on
// its next write.
func (c *clientConn) SetWriteDeadline(t time.Time) error {
	c.armed.Store(0)
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline sets the read and write deadlines; Write sets its own write
// deadline again on its next write.
func (c *clientConn) SetDeadline(t time.Time) error {
	c.armed.Store(0)
	return c.Conn.SetDeadline(t)
}

// Read fails once the connection is left (see leave): net/http sets read
// deadlines of its own between requests, which must not bring a left
// connection back.
func (c *clientConn) Read(b []byte) (int, error) {
	if c.leaving.Load() {
		return 0, errLeft
	}
	return c.Conn.Read(b)
}

var errLeft = errors.New("proxy: the rest of the caller's request is not read")

// CloseWrite half-closes the connection, as net/http and
// httputil.ReverseProxy do through it when they can.
func (c *clientConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// rstAvoidanceDelay is how long a connection left with unread data stays
// half-closed before it is closed, as net/http does for a body it will not
// read: closing a socket with unread data sends a TCP reset, and a caller
// that gets the reset before it has read the answer loses the answer.
const rstAvoidanceDelay = 500 * time.Millisecond

// leave stops reading from the connection: the read in progress, if any,
// and every later one fail at once, so net/http reads nothing more of the
// caller's body (it would otherwise read up to 256 KiB after the handler,
// to keep the connection). The answer must say Connection: close.
func (c *clientConn) leave() {
	c.leaving.Store(true)
	_ = c.Conn.SetReadDeadline(time.Now())
}

// Close closes the connection; one that was left (see leave) is
// half-closed first, and closed rstAvoidanceDelay later, so that the
// caller reads the answer before the reset that its unread body brings.
func (c *clientConn) Close() error {
	if !c.leaving.Load() {
		return c.Conn.Close()
	}
	err := c.CloseWrite()
	if err != nil {
		return c.Conn.Close()
	}
	time.AfterFunc(rstAvoidanceDelay, func() { _ = c.Conn.Close() })
	return nil
}

// connOf returns the connection r came on, or nil when it was not accepted
// by Proxy.Listener.
func connOf(r *http.Request) *clientConn {
	c, _ := r.Context().Value(clientConnKey{}).(*clientConn)
	return c
}

// stopReading makes sure that nothing more is read from a call's
// connection c (or, when c is nil, the one rc answers on), neither by the
// proxy nor by net/http after the handler. The answer must close the
// connection (Connection: close), or have done so.
func stopReading(c *clientConn, rc *http.ResponseController) {
	if c != nil {
		c.leave()
		return
	}
	// Not served on p.Listener: stop reading all the same, without the
	// lingering close.
	_ = rc.SetReadDeadline(time.Now())
}
