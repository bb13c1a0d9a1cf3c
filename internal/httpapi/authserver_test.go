package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
	"golang.org/x/net/http/httpguts"
)

// authListeners starts the API's handler twice: served by net/http as the
// API's listener serves it, and by an AuthorizeServer. It returns both
// addresses and a valid key's secret. Each wrap, in order, wraps the
// handler net/http serves.
func authListeners(t testing.TB, timeouts Timeouts, wrap ...func(http.Handler) http.Handler) (apiAddr, authAddr, secret string, srv *AuthorizeServer) {
	t.Helper()
	svc, ix, op := webApp(t)
	k, err := svc.CreateAccessKey(t.Context(), op, "default", "web", latchkey.NewAccessKey{})
	if err != nil {
		t.Fatal(err)
	}
	api := &Server{Service: svc, Verifier: verify.New(ix, nil),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	h := api.Handler()
	lnAPI, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hAPI := h
	for _, w := range wrap {
		hAPI = w(hAPI)
	}
	hs := NewHTTPServer(hAPI, DefaultTimeouts, nil)
	go hs.Serve(lnAPI)
	t.Cleanup(func() { hs.Close() })
	lnAuth, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv = &AuthorizeServer{Handler: h, Timeouts: timeouts}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lnAuth) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, ErrAuthorizeServerClosed) {
			t.Errorf("Serve returned %v, want ErrAuthorizeServerClosed", err)
		}
	})
	return lnAPI.Addr().String(), lnAuth.Addr().String(), k.Secret, srv
}

// rawRequest joins a request's lines with CRLF and ends its header.
func rawRequest(lines ...string) string {
	return strings.Join(lines, "\r\n") + "\r\n\r\n"
}

// answer is what a listener answered, without its Date.
type answer struct {
	Proto  string
	Status string
	Header http.Header
	Body   string
	// SaysClose: the answer ends its connection (Connection: close, or
	// HTTP/1.0 without keep-alive).
	SaysClose bool
}

// exchanged is every answer to what was sent on one connection, and
// whether the server then ended it (Closed) rather than wait for more.
type exchanged struct {
	Answers []answer
	Closed  bool
}

// exchange sends raw (one request or several) on a new connection to
// addr and reads answers until the server ends the connection or sends
// nothing for 300 ms.
func exchange(t *testing.T, addr, raw string) exchanged {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var x exchanged
	for {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := br.Peek(1); err != nil {
			// Closed: EOF or a reset, not a wait.
			var ne net.Error
			x.Closed = !(errors.As(err, &ne) && ne.Timeout())
			return x
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		x.Answers = append(x.Answers, readAnswer(t, br, strings.HasPrefix(raw, "HEAD ")))
	}
}

func readAnswer(t *testing.T, br *bufio.Reader, head bool) answer {
	t.Helper()
	method := "GET"
	if head {
		method = "HEAD"
	}
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading the answer's body: %v", err)
	}
	res.Header.Del("Date")
	return answer{Proto: res.Proto, Status: res.Status, Header: res.Header, Body: string(body), SaysClose: res.Close}
}

// TestAuthorizeServerAnswersAsNetHTTP sends the same bytes to the API's
// listener (net/http) and to the forward-auth listener, and requires the
// same answer: the same decision on the same reading of the request, and
// the same refusal of a request net/http's server refuses.
func TestAuthorizeServerAnswersAsNetHTTP(t *testing.T) {
	apiAddr, authAddr, secret, _ := authListeners(t, Timeouts{})
	unknown, err := keyformat.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	const (
		get  = "GET /v1/authorize HTTP/1.1"
		host = "Host: latchkey"
		orig = "X-Original-Method: GET\r\nX-Original-URI: /shipments/1"
	)
	call := rawRequest(get, host, "X-Api-Key: "+secret, orig)
	// Where the listener ends the connection after its answer, and
	// net/http's server, having said it would, first waits to read the
	// body the client never sends.
	closesAtOnce := map[string]bool{"with a body it waits to send": true}
	tests := []struct {
		name string
		raw  string
	}{
		{"allowed", rawRequest(get, host, "X-Api-Key: "+secret, orig)},
		{"allowed, bearer", rawRequest(get, host, "Authorization: Bearer "+secret, orig)},
		{"allowed, Traefik's headers", rawRequest(get, host, "Authorization: Bearer "+secret, "X-Forwarded-Method: GET", "X-Forwarded-Uri: /a?b=c")},
		{"allowed, HEAD", rawRequest("HEAD /v1/authorize HTTP/1.1", host, "X-Api-Key: "+secret, orig)},
		{"allowed, HTTP/1.0 without Host", rawRequest("GET /v1/authorize HTTP/1.0", "X-Api-Key: "+secret, orig)},
		{"allowed, HTTP/1.0 keep-alive", rawRequest("GET /v1/authorize HTTP/1.0", "Connection: keep-alive", "X-Api-Key: "+secret, orig)},
		{"allowed, Connection: close", rawRequest(get, host, "Connection: close", "X-Api-Key: "+secret, orig)},
		{"allowed, path escaped", rawRequest("GET /v1/%61uthorize HTTP/1.1", host, "X-Api-Key: "+secret, orig)},
		{"allowed, the gateway's query", rawRequest("GET /v1/authorize?x=1 HTTP/1.1", host, "X-Api-Key: "+secret, orig)},
		{"allowed, padded value", rawRequest(get, host, "X-Api-Key: \t "+secret+" \t", orig)},
		{"allowed, another method", rawRequest("POST /v1/authorize HTTP/1.1", host, "Content-Length: 0", "X-Api-Key: "+secret, orig)},
		{"with a body", rawRequest("POST /v1/authorize HTTP/1.1", host, "Content-Length: 4", "X-Api-Key: "+secret, orig) + "abcd"},
		{"unknown key", rawRequest(get, host, "X-Api-Key: "+unknown, orig)},
		{"malformed key", rawRequest(get, host, "X-Api-Key: lksk_nope", orig)},
		{"no credential", rawRequest(get, host, orig)},
		{"two credentials", rawRequest(get, host, "X-Api-Key: "+secret, "X-Api-Key: "+secret, orig)},
		{"two credential headers", rawRequest(get, host, "X-Api-Key: "+secret, "Authorization: Bearer "+secret, orig)},
		{"secret in the original URI", rawRequest(get, host, "X-Api-Key: "+secret, "X-Original-Method: GET", "X-Original-URI: /a?api_key="+secret)},
		{"secret in its own URL", rawRequest("GET /v1/authorize?api_key="+secret+" HTTP/1.1", host, orig)},
		{"original request twice", rawRequest(get, host, "X-Api-Key: "+secret, orig, "X-Original-URI: /admin")},
		{"asked by nginx, refused", rawRequest(get, host, "X-Latchkey-Gateway: nginx", "X-Api-Key: "+unknown, orig)},
		{"header folded", rawRequest(get, host, "X-Api-Key: "+secret, " folded", orig)},
		{"no Host", rawRequest(get, "X-Api-Key: "+secret, orig)},
		{"two Hosts", rawRequest(get, host, host, "X-Api-Key: "+secret, orig)},
		{"bad Host", rawRequest(get, "Host: a b", "X-Api-Key: "+secret, orig)},
		{"bad header name", rawRequest(get, host, "X Api-Key: "+secret, orig)},
		{"control byte in a value", rawRequest(get, host, "X-Api-Key: "+secret+"\x01", orig)},
		{"NUL in a value", rawRequest(get, host, "X-Api-Key: "+secret+"\x00", orig)},
		{"space before the colon", rawRequest(get, host, "X-Api-Key : "+secret, orig)},
		{"two lengths", rawRequest("POST /v1/authorize HTTP/1.1", host, "Content-Length: 1", "Content-Length: 2", orig)},
		{"with a chunked body", rawRequest("POST /v1/authorize HTTP/1.1", host, "Transfer-Encoding: chunked", "X-Api-Key: "+secret, orig) + "4\r\nabcd\r\n0\r\n\r\n"},
		{"with a body past 256 KiB", rawRequest("POST /v1/authorize HTTP/1.1", host, "Content-Length: 300000", "X-Api-Key: "+secret, orig) + strings.Repeat("a", 300000)},
		{"with a body it waits to send", rawRequest("POST /v1/authorize HTTP/1.1", host, "Content-Length: 4", "Expect: 100-continue", "X-Api-Key: "+secret, orig)},
		{"length and chunked", rawRequest("POST /v1/authorize HTTP/1.1", host, "Content-Length: 1", "Transfer-Encoding: chunked", "X-Api-Key: "+secret, orig) + "0\r\n\r\n"},
		{"broken chunked body", rawRequest("POST /v1/authorize HTTP/1.1", host, "Transfer-Encoding: chunked", "X-Api-Key: "+secret, orig) + "zz\r\n"},
		{"unknown transfer coding", rawRequest("POST /v1/authorize HTTP/1.1", host, "Transfer-Encoding: gzip", orig)},
		{"bad method", rawRequest("G(T /v1/authorize HTTP/1.1", host, orig)},
		{"HTTP/2.0", rawRequest("GET /v1/authorize HTTP/2.0", host, orig)},
		{"bad version", rawRequest("GET /v1/authorize HTTP/1.x", host, orig)},
		{"unknown expectation", rawRequest(get, host, "Expect: something", "X-Api-Key: "+secret, orig)},
		{"headers too large", rawRequest(get, host, "X-Pad: "+strings.Repeat("a", 40<<10), "X-Api-Key: "+secret, orig)},
		{"request line too long", rawRequest("GET /v1/authorize?"+strings.Repeat("a", 40<<10)+" HTTP/1.1", host)},
		{"bare LF line ends", strings.ReplaceAll(rawRequest(get, host, "X-Api-Key: "+secret, orig), "\r\n", "\n")},
		{"CONNECT", rawRequest("CONNECT /v1/authorize HTTP/1.1", host, "X-Api-Key: "+secret, orig) + call},
		{"CONNECT without Host", rawRequest("CONNECT /v1/authorize HTTP/1.1", "X-Api-Key: "+secret, orig)},
		{"HTTP/1.0, unknown expectation", rawRequest("GET /v1/authorize HTTP/1.0", "Expect: something", "X-Api-Key: "+secret, orig)},
		// pipelined: every answer on the connection is compared
		{"three calls at once", call + rawRequest(get, host, "X-Api-Key: "+unknown, orig) + call},
		{"a call and part of the next", call + get + "\r\nHost: latc"},
		{"part of a call", get + "\r\nHost: latc"},
		{"with a body, then a call", rawRequest("POST /v1/authorize HTTP/1.1", host, "Content-Length: 4", "X-Api-Key: "+secret, orig) + "abcd" + call},
		{"with a body and a line end, then a call", rawRequest("POST /v1/authorize HTTP/1.1", host, "Content-Length: 4", "X-Api-Key: "+secret, orig) + "abcd\r\n" + call},
		{"with a chunked body, then a call", rawRequest("POST /v1/authorize HTTP/1.1", host, "Transfer-Encoding: chunked", "X-Api-Key: "+secret, orig) + "4\r\nabcd\r\n0\r\n\r\n" + call},
		{"with a body of 256 KiB less one, then a call", rawRequest("POST /v1/authorize HTTP/1.1", host, "Content-Length: 262143", "X-Api-Key: "+secret, orig) + strings.Repeat("a", 262143) + call},
		{"with a body of 256 KiB, then a call", rawRequest("POST /v1/authorize HTTP/1.1", host, "Content-Length: 262144", "X-Api-Key: "+secret, orig) + strings.Repeat("a", 262144) + call},
		{"with a body longer than said, then a call", rawRequest("POST /v1/authorize HTTP/1.1", host, "Content-Length: 2", "X-Api-Key: "+secret, orig) + "abcd" + call},
		{"HTTP/1.0 keep-alive, then a call", rawRequest("GET /v1/authorize HTTP/1.0", "Connection: keep-alive", "X-Api-Key: "+secret, orig) + call},
		{"HTTP/1.0 keep-alive on a second line, then a call", rawRequest("GET /v1/authorize HTTP/1.0", "Connection: x", "Connection: keep-alive", "X-Api-Key: "+secret, orig) + call},
		{"HTTP/1.0 keep-alive and close, then a call", rawRequest("GET /v1/authorize HTTP/1.0", "Connection: keep-alive, close", "X-Api-Key: "+secret, orig) + call},
		{"HTTP/1.0 without keep-alive, then a call", rawRequest("GET /v1/authorize HTTP/1.0", "X-Api-Key: "+secret, orig) + call},
		{"close on a second line, then a call", rawRequest(get, host, "Connection: x", "Connection: close", "X-Api-Key: "+secret, orig) + call},
		{"100-continue among other words", rawRequest(get, host, "Expect: 100-continue foo", "X-Api-Key: "+secret, orig) + call},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := exchange(t, apiAddr, tt.raw)
			got := exchange(t, authAddr, tt.raw)
			if closesAtOnce[tt.name] {
				if !got.Closed {
					t.Error("the listener kept the connection after its answer")
				}
				want.Closed = true
			}
			if len(want.Answers) == 0 && !strings.HasPrefix(tt.name, "part of a call") {
				t.Fatalf("net/http answered nothing: %+v", want)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("the forward-auth listener answers otherwise than net/http (-net/http +listener):\n%s", diff)
			}
		})
	}
}

// TestAuthorizeServerOwnAnswers covers what the forward-auth listener
// answers otherwise than the API's listener, by design: other paths, and
// request targets not in origin form.
func TestAuthorizeServerOwnAnswers(t *testing.T) {
	_, authAddr, secret, _ := authListeners(t, Timeouts{})
	tests := []struct {
		name   string
		raw    string
		status string
		code   string
	}{
		{"another path", rawRequest("GET /v1/applications HTTP/1.1", "Host: x", "X-Api-Key: "+secret), "404 Not Found", "NotFound"},
		{"a longer path", rawRequest("GET /v1/authorize/x HTTP/1.1", "Host: x", "X-Api-Key: "+secret), "404 Not Found", "NotFound"},
		{"health", rawRequest("GET /healthz HTTP/1.1", "Host: x"), "404 Not Found", "NotFound"},
		{"absolute form", rawRequest("GET http://x/v1/authorize HTTP/1.1", "Host: x", "X-Api-Key: "+secret), "400 Bad Request: request target not in origin form", ""},
		{"asterisk form", rawRequest("OPTIONS * HTTP/1.1", "Host: x"), "400 Bad Request: request target not in origin form", ""},
		// net/http takes an empty Host; after http.ReadRequest it cannot
		// be told from none
		{"empty Host", rawRequest("GET /v1/authorize HTTP/1.1", "Host:", "X-Api-Key: "+secret), "400 Bad Request: missing required Host header", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := exchange(t, authAddr, tt.raw)
			if len(x.Answers) != 1 {
				t.Fatalf("%d answers, want 1: %+v", len(x.Answers), x)
			}
			got := x.Answers[0]
			if got.Status != tt.status {
				t.Fatalf("status %q, want %q (%+v)", got.Status, tt.status, got)
			}
			if tt.code != "" && !strings.Contains(got.Body, `"code":"`+tt.code+`"`) {
				t.Errorf("body %s, want code %s", got.Body, tt.code)
			}
			if tt.code == "" && !x.Closed {
				t.Error("the connection stayed open after a refused request")
			}
		})
	}
}

// TestAuthorizeServerConnections: keep-alive, pipelined requests answered
// in order, and a connection closed after an answer that says so.
func TestAuthorizeServerConnections(t *testing.T) {
	_, authAddr, secret, _ := authListeners(t, Timeouts{})
	unknown, err := keyformat.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", authAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	one := func(key string) string {
		return rawRequest("GET /v1/authorize HTTP/1.1", "Host: x", "X-Api-Key: "+key, "X-Original-Method: GET", "X-Original-URI: /a")
	}
	// Three calls in one write, then a fourth after their answers.
	if _, err := io.WriteString(c, one(secret)+one(unknown)+one(secret)); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"VALID", "NOT_FOUND", "VALID", "VALID"} {
		if i == 3 {
			if _, err := io.WriteString(c, one(secret)); err != nil {
				t.Fatal(err)
			}
		}
		a := readAnswer(t, br, false)
		if got := a.Header.Get(HeaderCode); got != want {
			t.Errorf("call %d: %s %s, want %s", i, a.Status, got, want)
		}
		if a.SaysClose {
			t.Errorf("call %d: the answer ends a kept-alive connection", i)
		}
	}
	// An HTTP/1.0 call without keep-alive: answered, then closed.
	if _, err := io.WriteString(c, rawRequest("GET /v1/authorize HTTP/1.0", "X-Api-Key: "+secret, "X-Original-Method: GET", "X-Original-URI: /a")); err != nil {
		t.Fatal(err)
	}
	a := readAnswer(t, br, false)
	if a.Header.Get(HeaderCode) != "VALID" || !a.SaysClose {
		t.Errorf("HTTP/1.0 call: %s %v", a.Status, a.Header)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("after an HTTP/1.0 call without keep-alive: read %v, want EOF", err)
	}
}

// TestAuthorizeServerTimeouts: a connection idle past Idle is closed, and
// so is one whose request headers take longer than ReadHeader.
func TestAuthorizeServerTimeouts(t *testing.T) {
	const readHeader, idle = 200 * time.Millisecond, 2 * time.Second
	_, authAddr, secret, _ := authListeners(t, Timeouts{ReadHeader: readHeader, Idle: idle})
	call := rawRequest("GET /v1/authorize HTTP/1.1", "Host: x", "X-Api-Key: "+secret)
	for _, tt := range []struct {
		name, send string
		answers    int
		// the connection is closed after at least min and before max
		min, max time.Duration
	}{
		// as net/http's ReadHeaderTimeout: from the connection's start
		{"silent new connection", "", 0, readHeader, idle},
		{"slow headers", "GET /v1/authorize HTTP/1.1\r\nHost: x\r\n", 0, readHeader, idle},
		{"idle after a call", call, 1, idle, 2 * idle},
		{"slow headers after a call", call + "GET /v1/authorize HTTP/1.1\r\n", 1, readHeader, idle},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Timed from before the dial: the server's timer starts when
			// it accepts, which is after this. Timed from after the dial,
			// a test goroutine that the race detector's load keeps off
			// the CPU for a while takes its start late and sees the close
			// too soon (188 ms of 200 in one CI run).
			start := time.Now()
			c, err := net.Dial("tcp", authAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tt.send); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(3 * idle))
			br := bufio.NewReader(c)
			for range tt.answers {
				if a := readAnswer(t, br, false); a.Status != "200 OK" {
					t.Fatalf("answer %+v, want 200", a)
				}
			}
			n, err := br.Read(make([]byte, 1))
			took := time.Since(start)
			if n != 0 || !errors.Is(err, io.EOF) {
				t.Fatalf("read %d bytes, %v; want the server to close the connection", n, err)
			}
			if took < tt.min || took >= tt.max {
				t.Errorf("closed after %v, want from %v to %v", took, tt.min, tt.max)
			}
			t.Logf("closed after %v", took.Round(time.Millisecond))
		})
	}
}

// TestAuthorizeServerShutdown: Shutdown closes a connection waiting for a
// request, and Serve returns ErrAuthorizeServerClosed (authListeners'
// cleanup checks it).
func TestAuthorizeServerShutdown(t *testing.T) {
	_, authAddr, secret, srv := authListeners(t, Timeouts{})
	c, err := net.Dial("tcp", authAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, rawRequest("GET /v1/authorize HTTP/1.1", "Host: x", "X-Api-Key: "+secret)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	readAnswer(t, br, false)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("an idle connection after Shutdown: read %v, want EOF", err)
	}
	if _, err := net.DialTimeout("tcp", authAddr, time.Second); err == nil {
		t.Error("the listener still accepts connections after Shutdown")
	}
}

// TestAuthorizeServerTLS: over TLS the handler sees the connection's TLS
// state, as on the API's listener (keys bound to a client certificate
// are judged by it).
func TestAuthorizeServerTLS(t *testing.T) {
	// httptest's certificate (for 127.0.0.1), and a client that trusts it
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	defer ts.Close()
	var sawTLS atomic.Bool // set by the server's goroutine
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawTLS.Store(r.TLS != nil && r.TLS.HandshakeComplete)
		w.WriteHeader(http.StatusNoContent)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &AuthorizeServer{Handler: h}
	go srv.Serve(tls.NewListener(ln, &tls.Config{Certificates: ts.TLS.Certificates, NextProtos: []string{"http/1.1"}}))
	defer srv.Close()
	res, err := ts.Client().Get("https://" + ln.Addr().String() + "/v1/authorize")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent || !sawTLS.Load() {
		t.Errorf("status %d, TLS state seen %v; want 204 and the TLS state", res.StatusCode, sawTLS.Load())
	}
}

// TestAuthWriterCleansHeaders: the answer's header values are cleaned as
// net/http cleans them, and a name net/http would drop is dropped.
func TestAuthWriterCleansHeaders(t *testing.T) {
	w := &authWriter{h: http.Header{}}
	w.reset(http.MethodGet)
	w.h["X-Value"] = []string{" a\r\nInjected: yes \t"}
	w.h["Bad Name"] = []string{"x"}
	w.h["Content-Length"] = []string{"999"}
	w.WriteHeader(http.StatusOK)
	out := string(w.appendResponse(nil, &http.Request{ProtoMajor: 1, ProtoMinor: 1}, false))
	for _, want := range []string{"HTTP/1.1 200 OK\r\n", "\r\nX-Value: a  Injected: yes\r\n", "\r\nContent-Length: 0\r\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("answer lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"\r\nInjected", "Bad Name", "999"} {
		if strings.Contains(out, bad) {
			t.Errorf("answer has %q:\n%s", bad, out)
		}
	}
	if !strings.HasSuffix(out, "\r\n\r\n") {
		t.Errorf("answer does not end its header:\n%q", out)
	}
}

// BenchmarkAuthorizeListeners measures an allowed forward-auth call over
// one kept-alive loopback connection, on the API's listener (net/http)
// and on the forward-auth listener, both in this process: the client
// reads each answer without allocating, so allocs/op is the server's.
func BenchmarkAuthorizeListeners(b *testing.B) {
	apiAddr, authAddr, secret, _ := authListeners(b, Timeouts{})
	req := []byte(rawRequest("GET /v1/authorize HTTP/1.1", "Host: latchkey", "Authorization: Bearer "+secret,
		"X-Original-Method: GET", "X-Original-URI: /shipments/1"))
	for _, l := range []struct{ name, addr string }{{"net/http", apiAddr}, {"authorize-addr", authAddr}} {
		b.Run("listener="+l.name, func(b *testing.B) {
			c, err := net.Dial("tcp", l.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if err := skipAnswer(br); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAuthorizeAnswer writes an allowed call's answer, as the
// API's handler leaves its headers, into a connection's buffer: the part
// of a call the forward-auth listener does itself. It must not allocate.
func BenchmarkAuthorizeAnswer(b *testing.B) {
	_, _, secret, srv := authListeners(b, Timeouts{})
	raw := rawRequest("GET /v1/authorize HTTP/1.1", "Host: latchkey", "X-Api-Key: "+secret, "X-Original-Method: GET", "X-Original-URI: /shipments/1")
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		b.Fatal(err)
	}
	req.RemoteAddr = "127.0.0.1:40000"
	w := authWriter{h: make(http.Header, 16)}
	w.reset(req.Method)
	srv.Handler.ServeHTTP(&w, req)
	if w.status != http.StatusOK {
		b.Fatalf("status %d, want 200", w.status)
	}
	out := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		out = w.appendResponse(out[:0], req, false)
	}
	if !bytes.HasPrefix(out, []byte("HTTP/1.1 200 OK\r\n")) {
		b.Fatalf("answer %q", out)
	}
}

// skipAnswer reads an answer without a body (an allowed call's) up to
// the end of its header, and checks that it is a 200.
func skipAnswer(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(line), "HTTP/1.1 200 ") {
		return errors.New("answer: " + string(line))
	}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			return nil
		}
	}
}

func TestHasToken(t *testing.T) {
	for _, tt := range []struct {
		v, token string
		want     bool
	}{
		{"", "close", false},
		{"close", "close", true},
		{"Keep-Alive", "keep-alive", true},
		{"keep-alive, close", "close", true},
		{"x,\tclose ", "close", true},
		{"closed", "close", false},
		{"enclose", "close", false},
		{"100-continue foo", "100-continue", true},
		{"100-continuex", "100-continue", false},
	} {
		if got := hasToken(tt.v, tt.token); got != tt.want {
			t.Errorf("hasToken(%q, %q) = %v, want %v", tt.v, tt.token, got, tt.want)
		}
	}
}

// TestHandlerNames: the names appendResponse writes without checking
// are valid field names, and only they skip the check.
func TestHandlerNames(t *testing.T) {
	for _, k := range []string{HeaderKeyID, HeaderApplication, HeaderAccount, HeaderScopes, HeaderCode,
		HeaderExternalID, HeaderMetadata, HeaderIdentityID, HeaderMessage, "Cache-Control", "Content-Type",
		http.CanonicalHeaderKey("WWW-Authenticate")} {
		if !handlerName(k) || !httpguts.ValidHeaderFieldName(k) {
			t.Errorf("%q: handlerName %v, valid %v; want both", k, handlerName(k), httpguts.ValidHeaderFieldName(k))
		}
	}
	for _, k := range []string{"X Latchkey-Code", "X-Latchkey-Code:", "", "x-latchkey-code"} {
		if handlerName(k) {
			t.Errorf("handlerName(%q) = true", k)
		}
	}
}

func TestHasLineBreak(t *testing.T) {
	for v, want := range map[string]bool{"": false, "abc": false, "a\rb": true, "a\nb": true, "\t\x0b\x0c": false, "\r": true, "ab\n": true} {
		if got := hasLineBreak(v); got != want {
			t.Errorf("hasLineBreak(%q) = %v, want %v", v, got, want)
		}
	}
}
