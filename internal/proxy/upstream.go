package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// h1Client sends the lean path's calls (forward.go: no body, no upgrade,
// a method that may be sent twice) to a plain-HTTP upstream over
// kept-alive HTTP/1.1 connections, on the handler's own goroutine: it
// writes the request, reads the answer, and hands the connection back when
// the answer's body has been read to its end. net/http's Transport runs
// two goroutines per connection (a reader and a writer) and hands every
// call to them and back over channels; for a short call most of the
// proxy's transport CPU was that hand-over, not the two system calls the
// call needs.
//
// It does for these calls what the proxy's http.Transport (NewTransport)
// did: the same dial, response-header and idle timeouts, at most
// maxIdleConns idle connections, a call on a kept-alive connection that
// the upstream had closed sent again on a new one (the methods taken are
// idempotent), 1xx answers reported through the call's
// httptrace.ClientTrace, header names and values checked before they are
// sent, no proxy from the environment, and the caller's going away ending
// the call. It asks for no compression (the Transport asked for gzip and
// unpacked it itself when the caller had not asked): the caller's
// Accept-Encoding, if any, is passed on as it is.
type h1Client struct {
	addr     string // what is dialled: host:port
	dialer   net.Dialer
	t        Timeouts
	mu       sync.Mutex
	idle     []*h1Conn // most recently used last
	closed   bool
	maxIdle  int
	newConns func() // counts dials, for tests; may be nil
}

// maxIdleConns is how many idle connections an h1Client keeps, as
// NewTransport keeps per host.
const maxIdleConns = 256

type h1Conn struct {
	c      net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
	// cancelFn is cancel as a func value, made once per connection
	// rather than once per call (context.AfterFunc takes a func).
	cancelFn func()
	// mu orders cancel against the read deadlines of the call, so that a
	// deadline set after the caller left does not undo the cancel.
	mu       sync.Mutex
	canceled bool
}

// cancel makes the connection's pending and later reads and writes fail
// at once: the caller has gone away.
func (pc *h1Conn) cancel() {
	pc.mu.Lock()
	pc.canceled = true
	_ = pc.c.SetDeadline(aLongTimeAgo)
	pc.mu.Unlock()
}

// setReadDeadline sets the read deadline unless the call was cancelled.
func (pc *h1Conn) setReadDeadline(t time.Time) {
	pc.mu.Lock()
	if !pc.canceled {
		_ = pc.c.SetReadDeadline(t)
	}
	pc.mu.Unlock()
}

// newH1Client returns the client for upstream u, or nil when u is not
// plain HTTP (TLS and HTTP/2 stay with http.Transport).
func newH1Client(u *url.URL, t Timeouts) *h1Client {
	if u.Scheme != "http" {
		return nil
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	t = t.withDefaults()
	return &h1Client{addr: addr, t: t, maxIdle: maxIdleConns,
		dialer: net.Dialer{Timeout: t.Dial, KeepAlive: 30 * time.Second}}
}

// idempotent reports whether a call may be sent again when a kept-alive
// connection turns out closed before any answer, as net/http decides.
func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// errClosedIdle is a kept-alive connection found closed by the upstream
// before any answer.
var errClosedIdle = errors.New("proxy: the upstream closed a kept-alive connection")

// RoundTrip sends r and returns the upstream's answer, whose body must be
// read to its end or closed. r.Body must be empty.
func (cl *h1Client) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx := r.Context()
	return cl.roundTrip(ctx, r, httptrace.ContextClientTrace(ctx), nil)
}

// roundTrip is RoundTrip with the call's context and 1xx trace given
// apart from r (forward's outgoing request carries neither: it would
// take a request copy and a context layer per call to attach them); r's
// own context is not looked at. body, when not nil, is a zero h1Body
// that the answer's body is kept in rather than in one of its own: the
// caller's, which must touch the answer's body no more once it has
// closed it, and must not give body to another call before then (forward
// keeps it in its pooled forwarded, released when the call returns).
func (cl *h1Client) roundTrip(ctx context.Context, r *http.Request, trace *httptrace.ClientTrace, body *h1Body) (*http.Response, error) {
	for {
		pc, reused, err := cl.get(ctx)
		if err != nil {
			return nil, err
		}
		res, err := cl.send(ctx, pc, r, reused, trace, body)
		if err == nil {
			return res, nil
		}
		if errors.Is(err, errClosedIdle) && ctx.Err() == nil {
			continue // as net/http does: again, on another connection
		}
		return nil, err
	}
}

// get returns an idle connection (reused true) or a new one.
func (cl *h1Client) get(ctx context.Context) (*h1Conn, bool, error) {
	now := time.Now()
	cl.mu.Lock()
	for n := len(cl.idle); n > 0; n = len(cl.idle) {
		pc := cl.idle[n-1]
		cl.idle[n-1] = nil
		cl.idle = cl.idle[:n-1]
		if now.Sub(pc.idleAt) < cl.t.Idle {
			cl.mu.Unlock()
			return pc, true, nil
		}
		pc.c.Close()
	}
	cl.mu.Unlock()
	if cl.newConns != nil {
		cl.newConns()
	}
	c, err := cl.dialer.DialContext(ctx, "tcp", cl.addr)
	if err != nil {
		return nil, false, err
	}
	pc := &h1Conn{c: c, br: bufio.NewReaderSize(c, 4<<10), bw: bufio.NewWriterSize(c, 4<<10)}
	pc.cancelFn = pc.cancel
	return pc, false, nil
}

// put keeps pc for the next call, or closes it.
func (cl *h1Client) put(pc *h1Conn) {
	pc.idleAt = time.Now()
	cl.mu.Lock()
	if !cl.closed && len(cl.idle) < cl.maxIdle {
		cl.idle = append(cl.idle, pc)
		pc = nil
	}
	cl.mu.Unlock()
	if pc != nil {
		pc.c.Close()
	}
}

// closeIdle closes the idle connections and keeps no more.
func (cl *h1Client) closeIdle() {
	cl.mu.Lock()
	idle := cl.idle
	cl.idle, cl.closed = nil, true
	cl.mu.Unlock()
	for _, pc := range idle {
		pc.c.Close()
	}
}

// aLongTimeAgo is a deadline that makes a connection's pending and later
// reads and writes fail at once.
var aLongTimeAgo = time.Unix(1, 0)

// send writes r on pc and reads the answer's header. On an error pc is
// closed; errClosedIdle means that pc was kept alive (reused) and the
// upstream had closed it: it took nothing or sent nothing back. The
// answer's body is kept in body, or in a new h1Body when body is nil.
func (cl *h1Client) send(ctx context.Context, pc *h1Conn, r *http.Request, reused bool, trace *httptrace.ClientTrace, body *h1Body) (*http.Response, error) {
	// The caller's going away ends the call, the answer's body included.
	stop := context.AfterFunc(ctx, pc.cancelFn)
	fail := func(err error) (*http.Response, error) {
		stop()
		pc.c.Close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	closedIdle := func(err error) error {
		if reused {
			return fmt.Errorf("%w: %w", errClosedIdle, err)
		}
		return err
	}
	if err := cl.writeRequest(pc.bw, r); err != nil {
		if errors.Is(err, errInvalidHeader) {
			return fail(err)
		}
		return fail(closedIdle(err))
	}
	pc.setReadDeadline(time.Now().Add(cl.t.ResponseHeader))
	for n1xx := 0; ; {
		if _, err := pc.br.Peek(1); err != nil {
			if err == io.EOF || errors.Is(err, net.ErrClosed) || isReset(err) {
				return fail(closedIdle(err))
			}
			return fail(err)
		}
		res, err := http.ReadResponse(pc.br, r)
		if err != nil {
			return fail(err)
		}
		if res.StatusCode >= 100 && res.StatusCode < 200 && res.StatusCode != http.StatusSwitchingProtocols {
			if n1xx++; n1xx > 10 {
				return fail(errors.New("proxy: too many 1xx answers from the upstream"))
			}
			if trace != nil && trace.Got1xxResponse != nil {
				if err := trace.Got1xxResponse(res.StatusCode, textproto.MIMEHeader(res.Header)); err != nil {
					return fail(err)
				}
			}
			continue
		}
		if !bodyBuffered(res, pc.br) {
			// The body is read from the connection: no header deadline
			// on it (a streamed answer may take as long as it takes).
			pc.setReadDeadline(time.Time{})
		}
		// Otherwise the body is all in pc.br and no read of it touches
		// the connection: the header deadline, already met, is left in
		// place rather than cleared (a deadline change per call), and
		// the next call on pc sets its own before it reads.
		keep := !res.Close && !r.Close && res.StatusCode != http.StatusSwitchingProtocols
		if body == nil {
			body = new(h1Body)
		}
		*body = h1Body{body: res.Body, pc: pc, cl: cl, stop: stop, keep: keep}
		res.Body = body
		return res, nil
	}
}

// bodyBuffered reports whether res's body, of a known length and not
// chunked, has already been read whole into br with the header.
func bodyBuffered(res *http.Response, br *bufio.Reader) bool {
	return res.ContentLength >= 0 && len(res.TransferEncoding) == 0 &&
		res.ContentLength <= int64(br.Buffered())
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

// errInvalidHeader is a header that cannot be sent as it is.
var errInvalidHeader = errors.New("proxy: invalid header for the upstream")

// writeRequest writes r's request line and header, as net/http writes a
// call without a body, and flushes them.
func (cl *h1Client) writeRequest(bw *bufio.Writer, r *http.Request) error {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(r.URL.RequestURI())
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	if !httpguts.ValidHostHeader(host) {
		return fmt.Errorf("%w: Host", errInvalidHeader)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	for k, vv := range r.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue // not the caller's to set
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("%w: field name %q", errInvalidHeader, k)
		}
		for _, v := range vv {
			if k == "User-Agent" && v == "" {
				continue // none at all, rather than Go's
			}
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("%w: a value of field %q", errInvalidHeader, k)
			}
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(textproto.TrimString(v))
			bw.WriteString("\r\n")
		}
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n")
	}
	bw.WriteString("\r\n")
	return bw.Flush()
}

// h1Body is an answer's body: read to its end and closed, it gives its
// connection back for the next call; closed early, it closes it.
type h1Body struct {
	body io.ReadCloser
	pc   *h1Conn
	cl   *h1Client
	stop func() bool
	keep bool // the connection may carry another call
	eof  bool
	done bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, errors.New("proxy: read of a closed answer body")
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *h1Body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	err := b.body.Close()
	// stop false: the caller went away and the connection's deadline
	// was set in the past.
	if b.stop() && b.eof && b.keep && b.pc.br.Buffered() == 0 {
		b.cl.put(b.pc)
	} else {
		b.pc.c.Close()
	}
	return err
}
