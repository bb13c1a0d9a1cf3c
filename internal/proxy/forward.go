package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
)

// This file is the proxy's lean path: a call without a body that asks for
// no protocol upgrade (nearly every GET, HEAD and DELETE an API gets) is
// sent upstream by forward, a single transport round trip, instead of by
// httputil.ReverseProxy. It does what ReverseProxy does for such a call,
// in the same order and with the same rewrite (Proxy.rewrite), at fewer
// allocations: the outgoing request, its URL, the 1xx trace and the
// rewrite's ProxyRequest come in one allocation instead of four request
// copies and three more, and the headers are copied once, hop-by-hop
// headers left out, instead of cloned and then deleted from. Calls with a
// body, upgrades (WebSocket) and CONNECT still go through
// httputil.ReverseProxy (Proxy.rp), with their body bounds and digests.

// lean reports whether r takes the lean path: no body, no upgrade asked
// for, not CONNECT.
func lean(r *http.Request) bool {
	return (r.Body == nil || r.Body == http.NoBody) && r.ContentLength == 0 &&
		r.Method != http.MethodConnect && upgradeType(r.Header) == ""
}

// upgradeType is the protocol r asks to switch to, as
// httputil.ReverseProxy reads it: Upgrade, when Connection names it.
func upgradeType(h http.Header) string {
	if !headerHasToken(h["Connection"], "upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// headerHasToken reports whether a comma-separated list in vs holds token
// (an ASCII-lowercase token), in any case, as httpguts does.
func headerHasToken(vs []string, token string) bool {
	for _, v := range vs {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(f), token) {
				return true
			}
		}
	}
	return false
}

// forwarded is one call on the lean path: the outgoing request and what
// it needs, in one allocation. The calls that go over the proxy's own
// HTTP/1.1 client (h1Client) take theirs from a pool, with the outgoing
// header map and its values' storage of an earlier call, cleared: that
// client is done with the request when its round trip returns, and
// reports 1xx answers only while it runs.
type forwarded struct {
	req   http.Request
	url   url.URL
	pr    httputil.ProxyRequest
	trace httptrace.ClientTrace
	w     http.ResponseWriter
	cc    *callCtx // the call's, whose limit headers a 1xx must not take away
	// mu and done stop 1xx answers from touching w once the round trip
	// has returned (the transport may report one late).
	mu   sync.Mutex
	done bool
	// For a pooled forwarded: the header map and the storage of its
	// values (outHeader), and the empty User-Agent's.
	h    http.Header
	vals []string
	ua   [1]string
	fwd  [4]string // X-Forwarded-For, -Host, -Proto and X-Real-IP's values
	// body is the answer's body on the h1Client path (h1Client.roundTrip):
	// closed before forward returns, and not touched after.
	body h1Body
}

// forwardedPool holds the forwarded of calls on the h1Client path.
var forwardedPool = sync.Pool{New: func() any {
	f := &forwarded{}
	f.trace.Got1xxResponse = f.got1xx // one func value per pooled forwarded
	return f
}}

// maxPooledHeader is the most header fields a pooled forwarded keeps its
// map for; a larger one is left to the collector.
const maxPooledHeader = 64

// release returns a pooled f, holding nothing of its call: the header map
// and values cleared (the values held the caller's credential before the
// rewrite removed it), the forwarding headers' values cleared, the
// request, ProxyRequest, answer's body and writer dropped.
func (f *forwarded) release() {
	if len(f.h) > maxPooledHeader {
		f.h = nil
	}
	clear(f.h)
	clear(f.vals)
	clear(f.fwd[:])
	f.body = h1Body{}
	f.req, f.url, f.pr, f.w, f.cc, f.done = http.Request{}, url.URL{}, httputil.ProxyRequest{}, nil, nil, false
	forwardedPool.Put(f)
}

// forward sends in, a call that lean accepts, to the upstream and passes
// the answer on, as httputil.ReverseProxy would with p.rp's settings:
// hop-by-hop headers (and those Connection names) removed both ways;
// Forwarded and X-Forwarded-* replaced; Te: trailers kept when the caller
// sent it; unparsable query parameters dropped; an empty User-Agent when
// the caller sent none (not Go's); 1xx answers passed on; the answer's
// trailers passed on; a streamed answer (no length, or text/event-stream)
// flushed on every write; 502/504 from upstreamError when the round trip
// fails; and a body that breaks off mid-copy aborts the caller's
// connection (http.ErrAbortHandler), so it does not look complete. cc is
// the call's context, whose limit headers each 1xx passed on puts back.
func (p *Proxy) forward(w http.ResponseWriter, in *http.Request, cc *callCtx) {
	// in.Method is the method judged, and the one sent.
	h1 := p.h1 != nil && idempotent(in)
	var f *forwarded
	if h1 {
		f = forwardedPool.Get().(*forwarded)
		f.w = w
	} else {
		f = &forwarded{w: w}
		f.trace.Got1xxResponse = f.got1xx
	}
	f.cc = cc
	f.url = *in.URL
	out := &f.req
	*out = http.Request{
		Method:     in.Method,
		URL:        &f.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Host:       in.Host,
		RemoteAddr: in.RemoteAddr,
		TLS:        in.TLS,
	}
	f.h, f.vals = outHeader(f.h, f.vals, in.Header)
	out.Header = f.h
	if headerHasToken(in.Header["Te"], "trailers") {
		out.Header["Te"] = []string{"trailers"}
	}
	out.URL.RawQuery = cleanQueryParams(out.URL.RawQuery)
	f.pr = httputil.ProxyRequest{In: in, Out: out}
	if h1 {
		// The forwarding headers' values in the pooled forwarded's
		// storage rather than an allocation of their own.
		p.rewriteInto(&f.pr, p.upstream, f.fwd[:])
	} else {
		p.rewriteOut(&f.pr)
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		f.ua[0] = ""
		out.Header["User-Agent"] = f.ua[:1:1]
	}

	var res *http.Response
	var err error
	if h1 {
		// The h1Client takes the context and the trace as they are,
		// without a request copy to carry them.
		res, err = p.h1.roundTrip(in.Context(), out, &f.trace, &f.body)
		defer f.release()
	} else {
		out = out.WithContext(httptrace.WithClientTrace(in.Context(), &f.trace))
		res, err = p.rt.RoundTrip(out)
	}
	f.mu.Lock()
	f.done = true
	f.mu.Unlock()
	// upstreamError is given in: the call's context and method, which
	// out's are (or, on the h1Client path, stand for).
	if err != nil {
		p.upstreamError(w, in, err)
		return
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// Nothing was asked for: httputil.ReverseProxy refuses the switch
		// the same way.
		res.Body.Close()
		p.upstreamError(w, in, fmt.Errorf("backend tried to switch protocol %q when none was requested", upgradeType(res.Header)))
		return
	}
	removeHopByHopHeaders(res.Header)
	if err := p.answered(res); err != nil {
		res.Body.Close()
		p.upstreamError(w, in, err)
		return
	}
	h := w.Header()
	copyHeader(h, res.Header)
	// The transport's answer has no Trailer header: announce the trailers
	// it declared.
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)

	if err := p.copyAnswer(w, res); err != nil {
		res.Body.Close()
		if in.Context().Value(http.ServerContextKey) != nil {
			// Streamed: all that can be done is to cut the answer off.
			panic(http.ErrAbortHandler)
		}
		return
	}
	res.Body.Close() // now, for res.Trailer to be filled in
	if len(res.Trailer) > 0 {
		// Chunked, so that net/http does not give a short answer a
		// Content-Length and drop the trailers.
		_ = http.NewResponseController(w).Flush()
	}
	if len(res.Trailer) == announced {
		copyHeader(h, res.Trailer)
		return
	}
	for k, vv := range res.Trailer {
		k = http.TrailerPrefix + k
		for _, v := range vv {
			h.Add(k, v)
		}
	}
}

// got1xx passes an informational answer (103 Early Hints, ...) on to the
// caller while the round trip waits for the final one.
func (f *forwarded) got1xx(code int, header textproto.MIMEHeader) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return nil
	}
	h := f.w.Header()
	copyHeader(h, http.Header(header))
	f.w.WriteHeader(code)
	clear(h) // net/http does not clear the header map after a 1xx
	f.cc.writeLimits()
	return nil
}

// copyAnswer copies the answer's body to w through a pooled buffer,
// flushing after every write when the answer is streamed (no length, or
// server-sent events), as httputil.ReverseProxy does with FlushInterval
// 0; then the headers go out at once too, before the first byte of the
// body.
func (p *Proxy) copyAnswer(w http.ResponseWriter, res *http.Response) error {
	var flush func() error
	if streamed(res) {
		flush = http.NewResponseController(w).Flush
		_ = flush()
	}
	buf := p.buffers.Get()
	defer p.buffers.Put(buf)
	for {
		n, rerr := res.Body.Read(buf)
		if rerr != nil && rerr != io.EOF && !errors.Is(rerr, context.Canceled) {
			p.log.Warn("the upstream's answer broke off", "err", rerr)
		}
		if n > 0 {
			m, werr := w.Write(buf[:n])
			if werr != nil {
				return werr
			}
			if m != n {
				return io.ErrShortWrite
			}
			if flush != nil {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// streamed reports whether an answer is flushed as it comes: it has no
// length, or it is a stream of server-sent events.
func streamed(res *http.Response) bool {
	if res.ContentLength == -1 {
		return true
	}
	ct := res.Header.Get("Content-Type")
	if ct == "" {
		return false
	}
	// mime.ParseMediaType's media type is the part before any ';',
	// trimmed and lower-cased, or "" on an error: only a value whose
	// first part is text/event-stream in some case can be one, and only
	// those are parsed (a parse takes a map of the parameters).
	mt, _, _ := strings.Cut(ct, ";")
	if !strings.EqualFold(strings.TrimSpace(mt), "text/event-stream") {
		return false
	}
	mt, _, _ = mime.ParseMediaType(ct)
	return mt == "text/event-stream"
}

// hopByHop are the headers of one connection, never forwarded (RFC 9110
// 7.6.1), as httputil.ReverseProxy lists them; plus the forwarding
// headers that the rewrite sets itself.
var hopByHop = map[string]bool{
	"Connection":          true,
	"Proxy-Connection":    true, // non-standard, sent by some clients
	"Keep-Alive":          true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true, // canonical form of "TE"
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
}

// forwarding are the client-sent forwarding headers that never reach the
// upstream as sent (the rewrite sets X-Forwarded-* itself).
var forwarding = map[string]bool{
	"Forwarded":         true,
	"X-Forwarded-For":   true,
	"X-Forwarded-Host":  true,
	"X-Forwarded-Proto": true,
}

// outHeader copies the caller's header for the upstream, without
// hop-by-hop headers, those that Connection names, and the forwarding
// headers; the values in one allocation, as http.Header.Clone does. The
// map has room for what the rewrite adds. h and vals, when not nil, are
// an empty map and values' storage to reuse (a pooled forwarded's); the
// map and the storage used are returned.
func outHeader(h http.Header, vals []string, in http.Header) (http.Header, []string) {
	n := 0
	for _, vv := range in {
		n += len(vv)
	}
	if cap(vals) < n {
		vals = make([]string, n)
	}
	if h == nil {
		h = make(http.Header, len(in)+12)
	}
	free := vals[:n]
	for k, vv := range in {
		if hopByHop[k] || forwarding[k] || vv == nil {
			continue
		}
		m := copy(free, vv)
		h[k] = free[:m:m]
		free = free[m:]
	}
	for _, f := range in["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	return h, vals
}

// removeHopByHopHeaders removes from an upstream's answer the headers of
// its connection, as httputil.ReverseProxy does.
func removeHopByHopHeaders(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for k := range hopByHop {
		delete(h, k)
	}
}

// copyHeader adds src's values to dst. An answer's header is the proxy's
// own once the transport returns it, so a name dst does not have takes
// src's values as they are.
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		if old, ok := dst[k]; ok {
			dst[k] = append(old, vv...)
		} else {
			dst[k] = vv
		}
	}
}

// cleanQueryParams drops from a query the parameters that
// net/url.ParseQuery would refuse (those with a ';' or a bad escape), as
// httputil.ReverseProxy does before its rewrite; a query without any is
// returned as it is.
func cleanQueryParams(s string) string {
	reencode := func(s string) string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode(s)
		case '%':
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return reencode(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
