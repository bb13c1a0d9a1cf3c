package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/gatewaytest"
	"github.com/latchkey/latchkey/internal/proxy"
	"golang.org/x/net/websocket"
)

// countingConn counts the bytes the server reads from a connection.
type countingConn struct {
	net.Conn
	read   atomic.Int64
	closed chan struct{}
	once   sync.Once
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	return n, err
}

func (c *countingConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

func (c *countingConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// countingListener hands out countingConns and remembers them by the
// client's address.
type countingListener struct {
	net.Listener
	conns sync.Map // client address -> *countingConn
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countingConn{Conn: c, closed: make(chan struct{})}
	l.conns.Store(c.RemoteAddr().String(), cc)
	return cc, nil
}

// serverSide returns the server's end of the client connection c.
func (l *countingListener) serverSide(t *testing.T, c net.Conn) *countingConn {
	t.Helper()
	for range 500 {
		if v, ok := l.conns.Load(c.LocalAddr().String()); ok {
			return v.(*countingConn)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the server never accepted the connection")
	return nil
}

func listenCounting(t *testing.T) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &countingListener{Listener: ln}
}

// hardened is a proxy served as serve serves it: p.NewServer on
// p.Listener, over a listener that counts what the server reads.
type hardened struct {
	URL   string
	ln    *countingListener
	proxy *proxy.Proxy
}

func serveHardened(t *testing.T, env *gatewaytest.Env, upstream string, ct proxy.ClientTimeouts) *hardened {
	t.Helper()
	return serveHardenedTLS(t, env, upstream, ct, nil)
}

// serveHardenedTLS is serveHardened over TLS when tc is not nil, as serve
// does it: the TLS listener over p.Listener.
func serveHardenedTLS(t *testing.T, env *gatewaytest.Env, upstream string, ct proxy.ClientTimeouts, tc *tls.Config) *hardened {
	t.Helper()
	p, err := proxy.New(proxy.Config{Upstream: mustURL(t, upstream), API: env.API, Client: ct})
	if err != nil {
		t.Fatal(err)
	}
	h := &hardened{ln: listenCounting(t), proxy: p}
	h.URL = "http://" + h.ln.Addr().String()
	ln := p.Listener(h.ln)
	if tc != nil {
		h.URL = "https://" + h.ln.Addr().String()
		ln = tls.NewListener(ln, tc)
	}
	srv := p.NewServer()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return h
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// refusedReadBound is what a refused call may make the proxy read: its
// headers and whatever arrived with them, in net/http's 4 KiB read buffer.
const refusedReadBound = 8 << 10

// TestRefusedBodyIsNotRead sends large bodies with keys the proxy refuses
// (401, 403, 429) on raw TCP connections, in each framing, and counts the
// bytes the server read from each connection: never more than the headers'
// read buffer, no 100 Continue, and an answer that closes the connection.
// A plain net/http server on the same counting listener shows what the
// count catches: it reads the whole 200 KiB body after its handler.
func TestRefusedBodyIsNotRead(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	fenced := env.Key(t, "fenced", &latchkey.Restrictions{AllowedIPs: []string{"192.0.2.0/24"}})
	limited := env.Key(t, "limited", &latchkey.Restrictions{RateLimit: &latchkey.RateLimit{PerMinute: 1}})
	gone := env.Key(t, "gone", nil)
	env.SetStatus(t, gone.ID, latchkey.StatusInactive)
	if err := env.Service.DeleteAccessKey(t.Context(), env.Operator, gone.ID, false); err != nil {
		t.Fatal(err)
	}
	up := newEchoUpstream(t)
	h := serveHardened(t, env, up.srv.URL, proxy.ClientTimeouts{})
	if status := get(t, h.URL, limited.Secret); status != 200 {
		t.Fatalf("the limited key's one call: %d", status)
	}

	plainLn := listenCounting(t)
	plain := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(401) })}
	go func() { _ = plain.Serve(plainLn) }()
	t.Cleanup(func() { _ = plain.Close() })

	const small, large = 200 << 10, 8 << 20
	keys := []struct {
		name, header string
		status       int
	}{
		{"missing key", "", 401},
		{"deleted key", "X-Api-Key: " + gone.Secret + "\r\n", 401},
		{"ip not allowed", "X-Api-Key: " + fenced.Secret + "\r\n", 403},
		{"rate limited", "X-Api-Key: " + limited.Secret + "\r\n", 429},
	}
	framings := []struct {
		name, header string
		size         int  // -1: chunked, without end
		expect       bool // the body is sent only after the answer, as a client does when its wait for 100 Continue runs out
	}{
		{"content-length 200 KiB", fmt.Sprintf("Content-Length: %d\r\n", small), small, false},
		{"content-length 8 MiB", fmt.Sprintf("Content-Length: %d\r\n", large), large, false},
		{"chunked", "Transfer-Encoding: chunked\r\n", -1, false},
		{"expect 100-continue", fmt.Sprintf("Content-Length: %d\r\nExpect: 100-continue\r\n", small), small, true},
	}
	var mu sync.Mutex
	var most int64
	for _, k := range keys {
		for _, f := range framings {
			t.Run(k.name+"/"+f.name, func(t *testing.T) {
				t.Parallel()
				n := sendRefused(t, h.ln, k.header+f.header, f.size, f.expect, k.status, true)
				if n > refusedReadBound {
					t.Errorf("the server read %d bytes of a refused call, want at most %d", n, refusedReadBound)
				}
				mu.Lock()
				most = max(most, n)
				mu.Unlock()
			})
		}
	}
	t.Run("net/http alone drains", func(t *testing.T) {
		t.Parallel()
		n := sendRefused(t, plainLn, fmt.Sprintf("Content-Length: %d\r\n", small), small, false, 401, false)
		t.Logf("a plain net/http server read %d bytes of a 401's %d-byte body", n, small)
		if n <= refusedReadBound {
			t.Errorf("plain net/http read only %d bytes: the count no longer shows the drain this test guards against", n)
		}
	})
	t.Cleanup(func() { t.Logf("refused calls: the proxy read at most %d bytes of a connection", most) })
}

// sendRefused sends a request with the given headers and a body of size
// bytes (-1: chunked, endless) on a raw connection, checks that it is
// refused with status, without 100 Continue, and (if closes) with
// Connection: close and the connection closed by the server, and returns
// how many bytes the server read from the connection in all.
func sendRefused(t *testing.T, ln *countingListener, header string, size int, expect bool, status int, closes bool) int64 {
	t.Helper()
	conn := dialRaw(t, ln.Addr().String())
	if _, err := io.WriteString(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"+header+"\r\n"); err != nil {
		t.Fatal(err)
	}
	var writer sync.WaitGroup
	sendBody := func() {
		writer.Go(func() {
			chunk := bytes.Repeat([]byte("b"), 32<<10)
			if size < 0 {
				chunk = append(append([]byte(fmt.Sprintf("%x\r\n", len(chunk))), chunk...), "\r\n"...)
			}
			for sent := 0; size < 0 || sent < size; sent += len(chunk) {
				if size >= 0 && size-sent < len(chunk) {
					chunk = chunk[:size-sent]
				}
				if _, err := conn.Write(chunk); err != nil {
					return // the server closed the connection
				}
			}
		})
	}
	if !expect {
		sendBody()
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != status || res.Close != closes {
		t.Errorf("answer %d (Connection: %q), want %d, closing the connection: %v", res.StatusCode, res.Header.Get("Connection"), status, closes)
	}
	if expect {
		sendBody()
	}
	sc := ln.serverSide(t, conn)
	if !closes {
		// The server keeps the connection: wait for the body to be sent,
		// and for the server to have read what it will of it.
		writer.Wait()
		for i := 0; i < 100 && sc.read.Load() < int64(size); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		return sc.read.Load()
	}
	_, _ = io.Copy(io.Discard, br) // until the server closes
	select {
	case <-sc.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not close the connection")
	}
	conn.Close()
	writer.Wait()
	return sc.read.Load()
}

func get(t *testing.T, base, secret string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"/x", nil)
	req.Header.Set("X-Api-Key", secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestRefusedUploadGetsItsAnswer: a Go client uploading a body larger than
// the socket buffers with a key the proxy refuses gets the refusal, not a
// connection reset, because the proxy half-closes and waits before it
// closes a connection with unread data. A refused call without a body
// keeps its connection.
func TestRefusedUploadGetsItsAnswer(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	inactive := env.Key(t, "web", nil)
	env.SetStatus(t, inactive.ID, latchkey.StatusInactive)
	up := newEchoUpstream(t)
	h := serveHardened(t, env, up.srv.URL, proxy.ClientTimeouts{})
	body := bytes.Repeat([]byte("u"), 16<<20)
	for i := range 10 {
		client := &http.Client{Transport: &http.Transport{}}
		req, _ := http.NewRequestWithContext(t.Context(), "PUT", h.URL+"/upload", bytes.NewReader(body))
		req.Header.Set("X-Api-Key", inactive.Secret)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("upload %d: %v, want the 401", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("upload %d: %d, want 401", i, resp.StatusCode)
		}
		client.CloseIdleConnections()
	}
	if up.count() != 0 {
		t.Errorf("a refused upload reached the upstream")
	}

	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	var reused []bool
	for range 2 {
		ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) }})
		req, _ := http.NewRequestWithContext(ctx, "GET", h.URL+"/x", nil)
		req.Header.Set("X-Api-Key", inactive.Secret)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if len(reused) != 2 || !reused[1] {
		t.Errorf("a refused call without a body: connection reused %v, want the second call on the first's connection", reused)
	}
}

// TestOverTLS: served over TLS as serve does it, the upstream hears that
// the call came over HTTPS, and a refused upload gets its answer while the
// proxy reads little of it (TLS reads whole records, so the bound is
// larger than over plain TCP).
func TestOverTLS(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	good := env.Key(t, "web", nil)
	up := newEchoUpstream(t)
	certs := httptest.NewTLSServer(http.NotFoundHandler())
	certs.Close()
	h := serveHardenedTLS(t, env, up.srv.URL, proxy.ClientTimeouts{}, certs.TLS.Clone())
	client := certs.Client()

	req, _ := http.NewRequestWithContext(t.Context(), "GET", h.URL+"/x", nil)
	req.Header.Set("X-Api-Key", good.Secret)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got seen
	_ = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 200 || got.Header.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("over TLS: %d, X-Forwarded-Proto %q at the upstream, want 200 and https", resp.StatusCode, got.Header.Get("X-Forwarded-Proto"))
	}

	tr := certs.Client().Transport.(*http.Transport).Clone()
	var local string
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			local = c.LocalAddr().String()
		}
		return c, err
	}
	req, _ = http.NewRequestWithContext(t.Context(), "PUT", h.URL+"/upload", bytes.NewReader(make([]byte, 16<<20)))
	resp, err = (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("a keyless upload over TLS: %v, want its 401", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !resp.Close {
		t.Errorf("a keyless upload over TLS: %d (Connection: %q), want 401 with Connection: close", resp.StatusCode, resp.Header.Get("Connection"))
	}
	v, ok := h.ln.conns.Load(local)
	if !ok {
		t.Fatal("the upload's connection was not seen")
	}
	sc := v.(*countingConn)
	select {
	case <-sc.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not close the connection")
	}
	t.Logf("a refused 16 MiB upload over TLS: the proxy read %d bytes, handshake included", sc.read.Load())
	if n := sc.read.Load(); n > 64<<10 {
		t.Errorf("the proxy read %d bytes of a refused upload over TLS, want at most 64 KiB", n)
	}
}

// TestBodyTimeout: a body that stops arriving is cut off after the Body
// timeout with 408, and the upstream's read of it ends; a body that keeps
// arriving, however slowly in all, is not cut.
func TestBodyTimeout(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	k := env.Key(t, "web", nil)
	upstreamDone := make(chan error, 1)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			upstreamDone <- err
			return
		}
		upstreamDone <- nil
		fmt.Fprintf(w, "%d bytes", len(b))
	})
	const bodyTimeout = 300 * time.Millisecond
	h := serveHardened(t, env, up, proxy.ClientTimeouts{Body: bodyTimeout})

	t.Run("stalled", func(t *testing.T) {
		conn := dialRaw(t, h.ln.Addr().String())
		// Timed from before the request is sent: the server's timer
		// cannot start sooner, and a test goroutine kept off the CPU
		// after the write would otherwise take its start late.
		start := time.Now()
		fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nX-Api-Key: %s\r\nContent-Length: 1000\r\n\r\n%s", k.Secret, strings.Repeat("s", 10))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		took := time.Since(start)
		if res.StatusCode != http.StatusRequestTimeout || !res.Close {
			t.Errorf("stalled body: %d (Connection: %q), want 408 with Connection: close", res.StatusCode, res.Header.Get("Connection"))
		}
		if took < bodyTimeout || took > bodyTimeout+2*time.Second {
			t.Errorf("stalled body answered after %s, want about %s", took, bodyTimeout)
		}
		select {
		case err := <-upstreamDone:
			if err == nil {
				t.Error("the upstream read a whole body the caller never sent")
			}
		case <-time.After(5 * time.Second):
			t.Error("the upstream still waits for the stalled body")
		}
	})
	t.Run("slow but moving", func(t *testing.T) {
		conn := dialRaw(t, h.ln.Addr().String())
		const n = 12 // one byte every bodyTimeout/3: 4 timeouts in all
		fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nX-Api-Key: %s\r\nContent-Length: %d\r\n\r\n", k.Secret, n)
		for range n {
			time.Sleep(bodyTimeout / 3)
			if _, err := conn.Write([]byte("m")); err != nil {
				t.Fatal(err)
			}
		}
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != fmt.Sprintf("%d bytes", n) {
			t.Errorf("slow body: %d %q, want 200 %q", res.StatusCode, b, fmt.Sprintf("%d bytes", n))
		}
		<-upstreamDone
	})
}

// newUpstream serves h on a real socket and returns its URL.
func newUpstream(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestUpstreamAnswersBeforeTheBody: an upstream that refuses an upload
// without reading it gets its answer to the caller, with Connection: close,
// and the rest of the body is not read to keep the connection.
func TestUpstreamAnswersBeforeTheBody(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	k := env.Key(t, "web", nil)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large for us", http.StatusRequestEntityTooLarge)
	})
	h := serveHardened(t, env, up, proxy.ClientTimeouts{})
	body := bytes.Repeat([]byte("u"), 16<<20)
	for i := range 5 {
		client := &http.Client{Transport: &http.Transport{}}
		req, _ := http.NewRequestWithContext(t.Context(), "PUT", h.URL+"/upload", bytes.NewReader(body))
		req.Header.Set("X-Api-Key", k.Secret)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("upload %d: %v, want the upstream's 413", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || !resp.Close || !strings.Contains(string(b), "too large for us") {
			t.Errorf("upload %d: %d %q (Connection: %q), want the upstream's 413 with Connection: close", i, resp.StatusCode, b, resp.Header.Get("Connection"))
		}
		client.CloseIdleConnections()
	}
}

// TestSendTimeout: a caller that stops reading an endless answer is cut
// off once a write to it has waited the Send timeout, and the upstream's
// call ends; without the timeout both would wait forever.
func TestSendTimeout(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	k := env.Key(t, "web", nil)
	ended := make(chan time.Time, 1)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		defer func() { ended <- time.Now() }()
		chunk := bytes.Repeat([]byte("d"), 64<<10)
		rc := http.NewResponseController(w)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
	})
	const send = 300 * time.Millisecond
	h := serveHardened(t, env, up, proxy.ClientTimeouts{Send: send})
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(t.Context(), "tcp", h.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	fmt.Fprintf(conn, "GET /download HTTP/1.1\r\nHost: x\r\nX-Api-Key: %s\r\n\r\n", k.Secret)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("download: %d", res.StatusCode)
	}
	stopped := time.Now() // the caller reads nothing more
	select {
	case at := <-ended:
		t.Logf("the upstream's call ended %s after the caller stopped reading (send timeout %s)", at.Sub(stopped).Round(time.Millisecond), send)
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream still writes to a caller that stopped reading 10s ago")
	}
}

// TestStreamsOutliveTheTimeouts: with every caller timeout at d, an event
// stream with d+400ms between events, a WebSocket quiet for d+700ms, and
// 16 MiB each way all pass: the timeouts bound stalls, not streams. d is a
// second: a race build on a loaded machine can stall a 16 MiB copy for
// 300ms, which the timeout rightly cuts.
func TestStreamsOutliveTheTimeouts(t *testing.T) {
	const d = time.Second
	env := gatewaytest.New(t, gatewaytest.Options{})
	k := env.Key(t, "web", nil)
	mux := http.NewServeMux()
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			if i > 0 {
				time.Sleep(d + 400*time.Millisecond)
			}
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Request-Bytes", fmt.Sprint(n))
		_, _ = io.Copy(w, io.LimitReader(&counter{}, 16<<20))
	})
	mux.Handle("/chat", websocket.Handler(func(ws *websocket.Conn) { _, _ = io.Copy(ws, ws) }))
	up := newUpstream(t, mux.ServeHTTP)
	h := serveHardened(t, env, up, proxy.ClientTimeouts{ReadHeader: d, Body: d, Send: d, Idle: d})

	req, _ := http.NewRequestWithContext(t.Context(), "GET", h.URL+"/events", nil)
	req.Header.Set("X-Api-Key", k.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "data: 0\n\ndata: 1\n\ndata: 2\n\n" {
		t.Errorf("event stream: %q, %v", b, err)
	}

	req, _ = http.NewRequestWithContext(t.Context(), "PUT", h.URL+"/upload", io.LimitReader(&counter{}, 16<<20))
	req.Header.Set("X-Api-Key", k.Secret)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != 16<<20 || resp.Header.Get("X-Request-Bytes") != fmt.Sprint(16<<20) {
		t.Errorf("16 MiB each way: sent %s, got %d (%v)", resp.Header.Get("X-Request-Bytes"), n, err)
	}

	ws := dialWebSocket(t, h.URL, k.Secret)
	time.Sleep(d + 700*time.Millisecond)
	if err := echo(ws, "still there"); err != nil {
		t.Errorf("a WebSocket quiet for %v: %v", d+700*time.Millisecond, err)
	}
}

// dialWebSocket opens a WebSocket to /chat through the proxy at base.
func dialWebSocket(t *testing.T, base, secret string) *websocket.Conn {
	t.Helper()
	cfg, err := websocket.NewConfig("ws"+strings.TrimPrefix(base, "http")+"/chat", base)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header.Set("Authorization", "Bearer "+secret)
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatalf("WebSocket handshake through the proxy: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// echo sends msg and reads the echo back.
func echo(ws *websocket.Conn, msg string) error {
	if err := websocket.Message.Send(ws, msg); err != nil {
		return err
	}
	var got string
	if err := websocket.Message.Receive(ws, &got); err != nil {
		return err
	}
	if got != msg {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}
