package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/verify"
)

// refuse answers a call the decision refused, as /v1/authorize would. The
// call's body, if it has one, is never read: the answer closes the
// connection instead (net/http would otherwise read up to 256 KiB of it
// after the handler, to keep the connection), and a call sent with
// Expect: 100-continue gets no 100 Continue. A caller without a valid key
// thus makes the proxy read no more than its headers and what arrived
// with them (net/http reads in 4 KiB blocks; over TLS, the rest of their
// TLS record), however large a body it announces. A call without a body
// keeps its connection.
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, res verify.Result) {
	if r.Body != nil && r.Body != http.NoBody {
		w.Header().Set("Connection", "close")
		stopReading(connOf(r), http.NewResponseController(w))
	}
	httpapi.WriteDecision(w, res)
}

// bound returns the allowed call r, to be forwarded, with the bounds the
// proxy keeps on it while it runs: its body must make progress within the
// Body timeout, and an upgraded connection (WebSocket) ends when key e
// stops being valid (upgrade.go). A call without a body that is not an
// upgrade, the common case, is returned as it is.
func (p *Proxy) bound(w http.ResponseWriter, r *http.Request, e *verify.Entry) *http.Request {
	if r.Body != nil && r.Body != http.NoBody {
		b := &timedBody{body: r.Body, conn: connOf(r), rc: http.NewResponseController(w), d: p.client.Body}
		b.timer = time.AfterFunc(b.d, b.stall)
		b.timer.Stop()
		// httputil.ReverseProxy hands the upstream request and answer to
		// answered and upstreamError with the body wrapped in a reader
		// of its own: they find this one in the context.
		r = r.WithContext(context.WithValue(r.Context(), bodyKey{}, b))
		r.Body = b
	}
	return p.upgrades.watch(r, e)
}

type bodyKey struct{}

// bodyOf returns the timedBody of the call r is part of, or nil.
func bodyOf(r *http.Request) *timedBody {
	b, _ := r.Context().Value(bodyKey{}).(*timedBody)
	return b
}

// timedBody is an allowed call's body as the transport reads it to send it
// upstream. Each read must bring something within d: a deadline per read,
// rather than one for the whole body, keeps a long upload going as long as
// it moves. The timer sets the connection's read deadline only when a
// read has waited d, so no deadline is left behind on the connection for
// net/http's own reads (a stale one would cancel a long answer that the
// upstream streams after the body).
type timedBody struct {
	body  io.ReadCloser
	conn  *clientConn // nil when not served on Proxy.Listener
	rc    *http.ResponseController
	d     time.Duration
	timer *time.Timer

	eof     atomic.Bool // the whole body was read
	stalled atomic.Bool // a read waited d for nothing
}

// errBodyStalled is what a read of a stalled body returns.
var errBodyStalled = errors.New("proxy: the request body stopped arriving")

func (b *timedBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.d)
	n, err := b.body.Read(p)
	b.timer.Stop()
	switch {
	case err == io.EOF:
		b.eof.Store(true)
	case err != nil && b.stalled.Load():
		err = errBodyStalled
	}
	return n, err
}

// Close closes the body. httputil.ReverseProxy never calls it (it hands
// the transport the body in a wrapper whose Close does nothing), and
// net/http closes the body it made itself.
func (b *timedBody) Close() error { return b.body.Close() }

// stall ends the read that waited too long, by setting the connection's
// read deadline to now.
func (b *timedBody) stall() {
	b.stalled.Store(true)
	b.leave()
}

// leave stops reading the body, and the connection; the answer must close
// the connection (Connection: close), or have done so. A read in
// progress ends at once: so none is left running when the handler
// returns, and the timer never fires on a later call's connection.
func (b *timedBody) leave() { stopReading(b.conn, b.rc) }

// answered is the ReverseProxy's ModifyResponse: it runs when the
// upstream's answer has arrived, before it is passed on. If the call's
// body is not all read (the upstream answered early), the answer closes
// the connection, so that net/http does not read the rest of the body to
// keep it. The transport goes on reading the body for the upstream, each
// read within the Body timeout, until the answer has been passed on;
// then the rest is left unread.
func (p *Proxy) answered(res *http.Response) error {
	if res.Request == nil {
		return nil
	}
	// httputil.ReverseProxy's 1xx answers, which clear the header map,
	// are past: the key's limits go back on before the upstream's
	// headers are added.
	callOf(res.Request.Context()).writeLimits()
	if res.StatusCode == http.StatusSwitchingProtocols {
		return nil
	}
	if b := bodyOf(res.Request); b != nil && !b.eof.Load() {
		res.Header.Set("Connection", "close")
		res.Body = &leaveOnClose{ReadCloser: res.Body, b: b}
	}
	return nil
}

// leaveOnClose is an upstream's answer to a call whose body was not all
// read when it arrived. httputil.ReverseProxy closes it once it has passed
// it on; the rest of the caller's body is then left unread, by the
// transport and by net/http.
type leaveOnClose struct {
	io.ReadCloser
	b *timedBody
}

func (l *leaveOnClose) Close() error {
	err := l.ReadCloser.Close()
	if !l.b.eof.Load() {
		l.b.leave()
	}
	return err
}

// bodyFailed is upstreamError's first step: if the call's body was not all
// read, the answer closes the connection and the rest is left unread; if
// it stopped arriving, bodyFailed answers 408 and reports true.
func bodyFailed(w http.ResponseWriter, r *http.Request) bool {
	b := bodyOf(r)
	if b == nil || b.eof.Load() {
		return false
	}
	w.Header().Set("Connection", "close")
	b.leave()
	if !b.stalled.Load() {
		return false
	}
	writeBodyError(w, http.StatusRequestTimeout, "the request body stopped arriving")
	return true
}

// writeBodyError answers a call whose body failed with a JSON error.
func writeBodyError(w http.ResponseWriter, status int, msg string) {
	var body httpapi.ErrorBody
	body.Error.Code, body.Error.Message = latchkey.EINVALID, msg
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
