package httpapi

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchkey/latchkey"
	"golang.org/x/net/http/httpguts"
)

// AuthorizeServer serves forward auth, and nothing else, on a listener of
// its own (serve --authorize-addr): the address a gateway's auth_request,
// forward_auth or forwardAuth points at.
//
// Each request is read by net/http's own parser (http.ReadRequest, the
// function net/http's server reads requests with), checked as net/http's
// server checks it, and handed to the same handler as the API's listener
// (Server.Handler), so a decision here is the decision there, on the
// same reading of the same bytes. What differs is the answer: it is
// written straight from the handler's header map into one buffer per
// connection, without net/http's per-response work (a response and its
// writers per call, the header map cloned at WriteHeader, its keys sorted
// before they are written). Header values are cleaned as net/http cleans
// them (line breaks to spaces, surrounding blanks trimmed, invalid names
// dropped).
//
// It is made for gateways, not for clients: HTTP/1.x only, request
// targets in origin form only, no handler reads a body (what is left of
// one is dropped as net/http drops it), and a path other than
// /v1/authorize is answered 404.
type AuthorizeServer struct {
	// Handler decides: the API's handler (Server.Handler). It is called
	// only for /v1/authorize.
	Handler http.Handler
	// Timeouts bound each stage as on the API's listener; a zero one is
	// DefaultTimeouts'. Read bounds reading a body the handler left
	// unread (see maxPostHandlerReadBytes).
	Timeouts Timeouts
	// Log receives failures of the server itself, never a request's
	// headers. Default: discard.
	Log *slog.Logger

	mu       sync.Mutex
	ln       net.Listener
	conns    map[*authConn]struct{} // open connections
	closing  atomic.Bool
	shutdown chan struct{} // closed by Shutdown and Close
}

// ErrAuthorizeServerClosed is returned by AuthorizeServer.Serve after
// Shutdown or Close.
var ErrAuthorizeServerClosed = errors.New("forward-auth server closed")

// Serve accepts connections on ln until Shutdown or Close, and serves
// each on a goroutine of its own; call it once. It always returns a
// non-nil error: ErrAuthorizeServerClosed after Shutdown or Close, or
// the listener's error once it is closed otherwise. A *tls.Conn's
// handshake is completed within the ReadHeader timeout.
func (s *AuthorizeServer) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.conns == nil {
		s.conns = map[*authConn]struct{}{}
		s.shutdown = make(chan struct{})
	}
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrAuthorizeServerClosed
	}
	s.ln = ln
	s.mu.Unlock()
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	t := s.Timeouts
	d := DefaultTimeouts
	t.ReadHeader, t.Read = orDefault(t.ReadHeader, d.ReadHeader), orDefault(t.Read, d.Read)
	t.Write, t.Idle = orDefault(t.Write, d.Write), orDefault(t.Idle, d.Idle)
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrAuthorizeServerClosed
			}
			if !errors.Is(err, net.ErrClosed) {
				// Out of file descriptors or buffers, or another failure
				// of one connection: wait and accept again, as net/http
				// does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.Log.Warn("forward-auth listener: accept failed; retrying", "err", err, "retry_in", delay)
				select {
				case <-time.After(delay):
				case <-s.shutdown:
				}
				continue
			}
			return err
		}
		delay = 0
		c := &authConn{srv: s, nc: nc, t: t}
		if !s.track(c) {
			nc.Close()
			return ErrAuthorizeServerClosed
		}
		go c.serve()
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// track adds c to the open connections, unless the server is closing.
func (s *AuthorizeServer) track(c *authConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// enterIdle records that c waits for a request, and reports false when
// it must stop instead: the server is shutting down. No lock: c stores
// idle before it reads closing, and Shutdown stores closing before it
// reads each idle, so either c stops here or Shutdown closes it (the
// atomics are sequentially consistent).
func (s *AuthorizeServer) enterIdle(c *authConn) bool {
	c.idle.Store(true)
	return !s.closing.Load()
}

func (s *AuthorizeServer) untrack(c *authConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops accepting connections, closes those that wait for a
// request, lets each request under way be answered (its connection is
// closed after it), and returns when none is left, or with ctx's error
// when ctx ends first.
func (s *AuthorizeServer) Shutdown(ctx context.Context) error {
	s.stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeConns(true) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listener and every connection at once.
func (s *AuthorizeServer) Close() error {
	s.stop()
	s.closeConns(false)
	return nil
}

// stop marks the server closing and closes its listener.
func (s *AuthorizeServer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = map[*authConn]struct{}{}
		s.shutdown = make(chan struct{})
	}
	if s.closing.Swap(true) {
		return
	}
	close(s.shutdown)
	if s.ln != nil {
		s.ln.Close()
	}
}

// closeConns closes the open connections (only those waiting for a
// request when idleOnly) and returns how many are still open.
func (s *AuthorizeServer) closeConns(idleOnly bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if !idleOnly || c.idle.Load() {
			c.nc.Close()
		}
	}
	return len(s.conns)
}

// authConn is one connection of an AuthorizeServer.
type authConn struct {
	srv  *AuthorizeServer
	nc   net.Conn
	t    Timeouts
	idle atomic.Bool // waiting for a request (enterIdle)
	// lr bounds what a request's line and headers may read, as
	// net/http's server does (MaxHeaderBytes, and 4 KiB for its
	// bufio.Reader).
	lr  io.LimitedReader
	br  *bufio.Reader
	w   authWriter
	out []byte
}

// headerReadLimit is what a request's line and headers may read:
// net/http's server's limit for MaxHeaderBytes.
const headerReadLimit = MaxHeaderBytes + 4096

var authReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

func (c *authConn) serve() {
	defer c.srv.untrack(c)
	defer c.nc.Close()
	defer func() {
		if p := recover(); p != nil && p != http.ErrAbortHandler {
			c.srv.Log.Error("forward-auth listener: panic serving a connection", "panic", p)
		}
	}()
	var tlsState *tls.ConnectionState
	if tc, ok := c.nc.(*tls.Conn); ok {
		_ = tc.SetDeadline(time.Now().Add(c.t.ReadHeader))
		if err := tc.HandshakeContext(context.Background()); err != nil {
			// As net/http: plain HTTP sent to TLS gets a plain answer.
			var re tls.RecordHeaderError
			if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
				_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
			}
			return
		}
		_ = tc.SetDeadline(time.Time{})
		st := tc.ConnectionState()
		tlsState = &st
	}
	c.lr.R = c.nc
	c.br = authReaders.Get().(*bufio.Reader)
	c.br.Reset(&c.lr)
	defer func() {
		c.br.Reset(nil)
		authReaders.Put(c.br)
	}()
	c.w.h = make(http.Header, 16)
	c.out = make([]byte, 0, 1024)
	remote := c.nc.RemoteAddr().String()
	lastMethod := ""
	for first := true; ; first = false {
		// Waiting for a request: a shutdown closes the connection. The
		// first request's header is read within the ReadHeader timeout
		// from the connection's start; the next one's first bytes come
		// within the idle timeout, and, as net/http's server reads them,
		// a connection that ends before four bytes of it is closed
		// without an answer.
		if first || c.br.Buffered() < 4 { // the first: nothing read yet
			if !c.srv.enterIdle(c) {
				return
			}
			wait, peek := c.t.Idle, 4
			if first {
				wait, peek = c.t.ReadHeader, 1
			}
			_ = c.nc.SetReadDeadline(time.Now().Add(wait))
			c.lr.N = math.MaxInt64
			if _, err := c.br.Peek(peek); err != nil {
				return
			}
			c.idle.Store(false)
		}
		if !first {
			_ = c.nc.SetReadDeadline(time.Now().Add(c.t.ReadHeader))
		}
		if lastMethod == http.MethodPost {
			// As net/http: line ends some clients send after a POST's
			// body are skipped.
			peek, _ := c.br.Peek(4)
			n := 0
			for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
				n++
			}
			_, _ = c.br.Discard(n)
		}
		c.lr.N = headerReadLimit - int64(c.br.Buffered())
		req, err := http.ReadRequest(c.br)
		if err != nil {
			c.refuseRequest(err)
			return
		}
		if code, msg := checkRequest(req); code != 0 {
			c.writePlain(code, msg, "")
			return
		}
		c.lr.N = math.MaxInt64
		lastMethod = req.Method
		req.RemoteAddr, req.TLS = remote, tlsState
		// Whether the connection ends with this answer, as net/http
		// decides it: HTTP/1.0 unless the first Connection line asks to
		// keep it; HTTP/1.1 when a Connection line says close; always
		// after CONNECT.
		var closing bool
		if req.ProtoAtLeast(1, 1) {
			closing = req.Close || hasToken(req.Header.Get("Connection"), "close")
		} else {
			closing = !hasToken(req.Header.Get("Connection"), "keep-alive")
		}
		closing = closing || req.Method == http.MethodConnect || c.srv.closing.Load()
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.t.Write))
		c.w.reset(req.Method)
		expect := req.Header.Get("Expect")
		continues := hasToken(expect, "100-continue")
		switch {
		case expect != "" && !continues:
			// An expectation net/http would not meet: 417, as it answers.
			c.w.sayClose = true
			c.w.WriteHeader(http.StatusExpectationFailed)
			closing = true
		case req.URL.Path == authorizePath:
			c.srv.Handler.ServeHTTP(&c.w, req)
		default:
			writeNotAuthorizePath(&c.w)
		}
		// The handler reads no body. What net/http does with one left
		// unread: on a connection that ends anyway, when the client
		// waits for a 100 Continue to send it, or when it announces 256
		// KiB or more, it is not read; else up to 256 KiB are read and
		// dropped so that the connection can carry the next request;
		// past that, or on a broken body, the connection ends.
		unread := false
		if req.ContentLength != 0 {
			if closing || continues && req.ProtoAtLeast(1, 1) || req.ContentLength >= maxPostHandlerReadBytes {
				closing, unread = true, true
			} else {
				_ = c.nc.SetReadDeadline(time.Now().Add(c.t.Read))
				if _, err := io.CopyN(io.Discard, req.Body, maxPostHandlerReadBytes+1); err != io.EOF {
					closing, unread = true, true
				}
			}
		}
		// Each answer is written at once, as net/http writes it: one
		// held back for the next pipelined request would wait for that
		// request's last byte, and answers piled up meanwhile would have
		// no bound.
		c.out = c.w.appendResponse(c.out[:0], req, closing)
		if _, err := c.nc.Write(c.out); err != nil {
			return
		}
		c.w.trim()
		if cap(c.out) > maxKeptBuffer {
			c.out = make([]byte, 0, 1024)
		}
		if closing {
			if unread {
				c.closeWriteAndWait()
			}
			return
		}
	}
}

// writeNotAuthorizePath answers a path other than /v1/authorize.
func writeNotAuthorizePath(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, latchkey.ENOTFOUND, "this listener serves forward auth only: "+authorizePath)
}

// maxKeptBuffer is the most a connection's answer and body buffers keep
// between calls: a larger answer's buffer is let go.
const maxKeptBuffer = 64 << 10

// hasToken reports whether the header value v lists token, in any case,
// delimited by spaces, tabs or commas: how net/http reads Connection and
// Expect.
func hasToken(v, token string) bool {
	start := 0
	for i := 0; i <= len(v); i++ {
		if i == len(v) || v[i] == ' ' || v[i] == ',' || v[i] == '\t' {
			if strings.EqualFold(v[start:i], token) {
				return true
			}
			start = i + 1
		}
	}
	return false
}

// maxPostHandlerReadBytes is how much of a request body left unread
// net/http's server reads and drops to keep the connection.
const maxPostHandlerReadBytes = 256 << 10

// closeWriteAndWait ends the connection's sending side and reads what
// the client still sends, for at most half a second, before the
// connection is closed: closing it with unread data would reset it, and
// the client could lose the answer (net/http's server waits the same
// half second).
func (c *authConn) closeWriteAndWait() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, _ = io.Copy(io.Discard, c.nc)
}

// looksLikeHTTP reports whether a TLS record header is the start of a
// plain HTTP request.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// checkRequest checks what net/http's server checks of a request after
// parsing it (HTTP/1.x, a valid Host, valid header names and values), and
// what this server needs: a request target in origin form. It returns
// the status and message of net/http's refusal, or 0.
func checkRequest(req *http.Request) (int, string) {
	if req.ProtoMajor != 1 {
		return http.StatusHTTPVersionNotSupported, "unsupported protocol version"
	}
	// http.ReadRequest has moved the Host header to req.Host; in origin
	// form (the only one taken here) that is where it came from.
	if !strings.HasPrefix(req.RequestURI, "/") {
		return http.StatusBadRequest, "request target not in origin form"
	}
	// (An empty Host line reads as none here: http.ReadRequest has
	// dropped the line, where net/http's server still sees it. CONNECT
	// needs none.)
	if req.ProtoAtLeast(1, 1) && req.Host == "" && req.Method != http.MethodConnect {
		return http.StatusBadRequest, "missing required Host header"
	}
	if req.Host != "" && !httpguts.ValidHostHeader(req.Host) {
		return http.StatusBadRequest, "malformed Host header"
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return http.StatusBadRequest, "invalid header name"
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return http.StatusBadRequest, "invalid header value"
			}
		}
	}
	return 0, ""
}

// refuseRequest answers a request http.ReadRequest refused, as net/http's
// server does: 431 past the header limit, 501 for a transfer coding it
// does not know, nothing when the connection ended or timed out, 400
// otherwise.
func (c *authConn) refuseRequest(err error) {
	var ne net.Error
	var oe *net.OpError
	switch {
	case c.lr.N <= 0:
		c.writePlain(http.StatusRequestHeaderFieldsTooLarge, "", "")
		c.closeWriteAndWait()
	case strings.HasPrefix(err.Error(), "unsupported transfer encoding"):
		c.writePlain(http.StatusNotImplemented, "", "Unsupported transfer encoding")
	case err == io.EOF, errors.As(err, &ne) && ne.Timeout(), errors.As(err, &oe) && oe.Op == "read":
	default:
		c.writePlain(http.StatusBadRequest, "", "")
	}
}

// writePlain writes net/http's plain-text refusal of a request it could
// not serve, byte for byte: its status line and body name the status and
// msg, or the body is body. The connection is then closed.
func (c *authConn) writePlain(code int, msg, body string) {
	status := strconv.Itoa(code) + " " + http.StatusText(code)
	if msg != "" {
		status += ": " + msg
	}
	if body == "" {
		body = status
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(c.nc, "HTTP/1.1 "+status+"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"+body)
}

// authWriter is the http.ResponseWriter of an AuthorizeServer's calls:
// one per connection, reset for each call. The body is kept whole (an
// answer of forward auth is a few hundred bytes) and sent with a
// Content-Length.
type authWriter struct {
	h       http.Header
	status  int
	head    bool // the call is a HEAD: no body is sent
	connect bool // the call is a CONNECT
	// sayClose: the answer says Connection: close whatever the
	// protocol (net/http's 417 sets the field itself, so an HTTP/1.0
	// caller sees it too)
	sayClose bool
	body     []byte
}

// reset readies w for a call with method.
func (w *authWriter) reset(method string) {
	clear(w.h)
	w.status, w.body = 0, w.body[:0]
	w.head, w.connect = method == http.MethodHead, method == http.MethodConnect
	w.sayClose = false
}

// trim lets go of a body buffer grown past maxKeptBuffer.
func (w *authWriter) trim() {
	if cap(w.body) > maxKeptBuffer {
		w.body = nil
	}
}

func (w *authWriter) Header() http.Header { return w.h }

func (w *authWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code)) // as net/http does
	}
	if w.status == 0 && code >= 200 {
		w.status = code
	}
}

func (w *authWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.body = append(w.body, b...)
	return len(b), nil
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// appendResponse appends the answer the handler wrote to out: the
// status line (in the caller's HTTP version), the handler's headers cleaned as net/http cleans them,
// Date, Content-Type sniffed as net/http sniffs it when the handler set
// none, Content-Length, Connection when closing (or keep-alive for an
// HTTP/1.0 caller that asked for it), then the body, except for HEAD.
func (w *authWriter) appendResponse(out []byte, req *http.Request, closing bool) []byte {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	// As net/http: the status line names HTTP/1.0 to an HTTP/1.0 caller.
	if req.ProtoAtLeast(1, 1) {
		out = append(out, "HTTP/1.1 "...)
	} else {
		out = append(out, "HTTP/1.0 "...)
	}
	out = strconv.AppendInt(out, int64(w.status), 10)
	out = append(out, ' ')
	out = append(out, http.StatusText(w.status)...)
	out = append(out, "\r\n"...)
	for k, vv := range w.h {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Connection":
			continue // this writer's to set
		}
		if !handlerName(k) && !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range vv {
			if hasLineBreak(v) {
				v = headerNewlineToSpace.Replace(v)
			}
			out = append(out, k...)
			out = append(out, ": "...)
			out = append(out, textproto.TrimString(v)...)
			out = append(out, "\r\n"...)
		}
	}
	if _, ok := w.h["Date"]; !ok {
		out = append(out, "Date: "...)
		out = appendDate(out)
		out = append(out, "\r\n"...)
	}
	if bodyAllowed(w.status) {
		if _, ok := w.h["Content-Type"]; !ok && len(w.body) > 0 {
			out = append(out, "Content-Type: "...)
			out = append(out, http.DetectContentType(w.body)...)
			out = append(out, "\r\n"...)
		}
		// As net/http: an answer to HEAD without a body says no
		// length (the handler may not have known it), nor does a 2xx
		// to CONNECT (a tunnel, were it one).
		if (!w.head || len(w.body) > 0) && !(w.connect && w.status < 300) {
			out = append(out, "Content-Length: "...)
			out = strconv.AppendInt(out, int64(len(w.body)), 10)
			out = append(out, "\r\n"...)
		}
	}
	// As net/http: an HTTP/1.0 answer ends with its connection unless
	// the caller asked to keep it; an HTTP/1.1 one says when it does.
	switch {
	case closing && (req.ProtoAtLeast(1, 1) || w.sayClose):
		out = append(out, "Connection: close\r\n"...)
	case !closing && !req.ProtoAtLeast(1, 1):
		out = append(out, "Connection: keep-alive\r\n"...)
	}
	out = append(out, "\r\n"...)
	if !w.head && bodyAllowed(w.status) {
		out = append(out, w.body...)
	}
	return out
}

var headerNewlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

// handlerName reports whether k is a header name the API's handler sets
// on forward auth's answers: a valid field name, which appendResponse
// need not check byte by byte on every answer (a comparison with each
// constant of the same length, against a table lookup a byte).
func handlerName(k string) bool {
	switch k {
	case HeaderKeyID, HeaderApplication, HeaderAccount, HeaderScopes, HeaderCode,
		HeaderExternalID, HeaderMetadata, HeaderIdentityID, HeaderMessage,
		"Cache-Control", "Content-Type", "Www-Authenticate":
		return true
	}
	return false
}

// hasLineBreak reports whether v holds a CR or an LF, in one pass: the
// values are short, most of them empty, where two calls of IndexByte
// cost more than the bytes they look at.
func hasLineBreak(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= '\r' && (c == '\r' || c == '\n') {
			return true
		}
	}
	return false
}

// dateCache holds the Date header's value for the current second.
var dateCache atomic.Pointer[cachedDate]

type cachedDate struct {
	sec  int64
	text []byte
}

func appendDate(out []byte) []byte {
	now := time.Now()
	d := dateCache.Load()
	if d == nil || d.sec != now.Unix() {
		d = &cachedDate{sec: now.Unix(), text: now.UTC().AppendFormat(nil, http.TimeFormat)}
		dateCache.Store(d)
	}
	return append(out, d.text...)
}
