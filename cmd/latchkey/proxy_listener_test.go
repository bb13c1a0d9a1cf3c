package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// bodyReadingAPI is a protected API that reads each call's whole body
// before it answers with the body's length.
func bodyReadingAPI(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return
		}
		fmt.Fprintf(w, "%d bytes", n)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestProxySlowClients is TestSlowClients for the reverse proxy's
// listener: connections that drip their headers, keep-alive connections
// left idle, bodies that stop arriving from a caller with a valid key, and
// bodies dripped by a caller without one are all closed by the server
// within their bound, while a normal caller is answered promptly.
func TestProxySlowClients(t *testing.T) {
	if testing.Short() {
		t.Skip("slow clients take seconds")
	}
	const readHeader, body, idle = time.Second, time.Second, 2 * time.Second
	api := bodyReadingAPI(t)
	home := t.TempDir()
	srv := startBinary(t, plainBinary(t), home, "--log-level", "warn",
		"--proxy-upstream", api.URL, "--proxy-addr", "127.0.0.1:0",
		"--proxy-read-header-timeout", readHeader.String(), "--proxy-body-timeout", body.String(),
		"--proxy-idle-timeout", idle.String())
	proxyURL := srv.waitFor(proxyRE)
	addr := strings.TrimPrefix(proxyURL, "http://")
	c := operatorClient(t, srv)
	c.do("POST", "/v1/applications", map[string]any{"name": "shop"}, 201)
	secret := c.do("POST", "/v1/applications/shop/access-keys", map[string]any{}, 201)["secret_access_key"].(string)

	type slow struct {
		conn   net.Conn
		opened time.Time
		closed atomic.Int64 // Unix nanoseconds when the server closed it
		status atomic.Int32 // the answer's status, if any
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	// open sends first, then drips drip (if not 0) every 100ms until the
	// server closes the connection, noting the answer's status and when
	// the server closed it.
	open := func(first string, drip byte) *slow {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		s := &slow{conn: conn, opened: time.Now()}
		if _, err := io.WriteString(conn, first); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			br := bufio.NewReader(conn)
			if res, err := http.ReadResponse(br, nil); err == nil {
				s.status.Store(int32(res.StatusCode))
				_, _ = io.Copy(io.Discard, res.Body)
			}
			_, _ = io.Copy(io.Discard, br) // returns when the server closes
			s.closed.Store(time.Now().UnixNano())
		})
		if drip != 0 {
			wg.Go(func() {
				for ctx.Err() == nil && s.closed.Load() == 0 {
					if _, err := conn.Write([]byte{drip}); err != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			})
		}
		return s
	}
	const nHeader, nStalled, nKeyless, nIdle = 200, 50, 50, 50
	var headers, stalled, keyless, idles []*slow
	for range nHeader {
		headers = append(headers, open("GET /orders HTTP/1.1\r\nHost: x\r\nX-Api-Key: "+secret+"\r\nX-Slow: ", 'a'))
	}
	for range nStalled {
		stalled = append(stalled, open("POST /orders HTTP/1.1\r\nHost: x\r\nX-Api-Key: "+secret+"\r\nContent-Length: 10000\r\n\r\n{\"a\":", 0))
	}
	for range nKeyless {
		keyless = append(keyless, open("POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n", ' '))
	}
	for range nIdle {
		s := open("GET /orders HTTP/1.1\r\nHost: x\r\nX-Api-Key: "+secret+"\r\n\r\n", 0)
		s.opened = time.Now() // idle from about here
		idles = append(idles, s)
	}

	// A normal caller, meanwhile.
	client := &http.Client{Timeout: 10 * time.Second}
	var worst time.Duration
	for range 20 {
		t0 := time.Now()
		req, _ := http.NewRequestWithContext(t.Context(), "POST", proxyURL+"/orders", strings.NewReader(`{"n":1}`))
		req.Header.Set("X-Api-Key", secret)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != "7 bytes" {
			t.Errorf("a normal call: %d %q", res.StatusCode, b)
		}
		worst = max(worst, time.Since(t0))
		time.Sleep(50 * time.Millisecond)
	}
	if worst > time.Second {
		t.Errorf("a normal caller waited %s with %d slow connections open", worst, nHeader+nStalled+nKeyless+nIdle)
	}

	// The slack is for a loaded 2-core CI machine, as in TestSlowClients.
	const slack = 3 * time.Second
	deadline := time.Now().Add(idle + 2*slack)
	check := func(what string, conns []*slow, limit time.Duration, status int) {
		t.Helper()
		var longest time.Duration
		for _, s := range conns {
			for s.closed.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			at := s.closed.Load()
			if at == 0 {
				t.Errorf("%s: a connection was still open after %s", what, time.Since(s.opened).Round(time.Millisecond))
				return
			}
			if got := int(s.status.Load()); got != status {
				t.Errorf("%s: answered %d, want %d", what, got, status)
			}
			longest = max(longest, time.Unix(0, at).Sub(s.opened))
		}
		if longest > limit {
			t.Errorf("%s: closed after up to %s, want within %s", what, longest.Round(time.Millisecond), limit)
		}
		t.Logf("%d %s connections closed by the server after at most %s", len(conns), what, longest.Round(time.Millisecond))
	}
	check("header-dripping", headers, readHeader+slack, 0)
	check("stalled-body", stalled, body+slack, http.StatusRequestTimeout)
	check("keyless body-dripping", keyless, slack, http.StatusUnauthorized)
	check("idle keep-alive", idles, idle+slack, http.StatusOK)
	cancel()
	wg.Wait()
	srv.stop()
}

// TestProxyRefusesWithoutReading: through the real binary, a large upload
// without a valid key gets its 401 at once, closing the connection, and a
// request with Expect: 100-continue gets the 401 instead of 100 Continue.
// (internal/proxy's TestRefusedBodyIsNotRead counts the bytes read.)
func TestProxyRefusesWithoutReading(t *testing.T) {
	api := bodyReadingAPI(t)
	srv, _ := adminClient(t, "--proxy-upstream", api.URL, "--proxy-addr", "127.0.0.1:0")
	proxyURL := srv.waitFor(proxyRE)

	req, _ := http.NewRequestWithContext(t.Context(), "PUT", proxyURL+"/upload", bytes.NewReader(make([]byte, 32<<20)))
	req.Header.Set("X-Api-Key", "lksk_not_a_key")
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("upload with a bad key: %v, want its 401", err)
	}
	res.Body.Close()
	if res.StatusCode != 401 || !res.Close {
		t.Errorf("upload with a bad key: %d (Connection: %q), want 401 with Connection: close", res.StatusCode, res.Header.Get("Connection"))
	}

	conn := dialRaw(t, strings.TrimPrefix(proxyURL, "http://"), "PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n")
	if res := readResponse(t, conn); res.StatusCode != 401 {
		t.Errorf("Expect: 100-continue with no key: first answer %d, want 401", res.StatusCode)
	}
	srv.stop()
}

// TestProxyWebSocketRevocation measures, through the real binary, how long
// a WebSocket outlives its key: from the PATCH that deactivates the key,
// and from the DELETE that deletes it, to the caller's read failing, over
// 20 WebSockets each. Another WebSocket stays open throughout, as on a
// server in use, so that each change falls at a random point of the
// proxy's check interval.
func TestProxyWebSocketRevocation(t *testing.T) {
	if testing.Short() {
		t.Skip("40 WebSockets, each closed by a key change")
	}
	ended := make(chan struct{}, 64)
	api := httptest.NewServer(websocket.Handler(func(ws *websocket.Conn) {
		defer func() { ended <- struct{}{} }()
		_, _ = io.Copy(ws, ws)
	}))
	t.Cleanup(api.Close)
	home := t.TempDir()
	srv := startBinary(t, plainBinary(t), home, "--log-level", "info", "--proxy-upstream", api.URL, "--proxy-addr", "127.0.0.1:0")
	proxyURL := srv.waitFor(proxyRE)
	c := operatorClient(t, srv)
	c.do("POST", "/v1/applications", map[string]any{"name": "chat"}, 201)
	c.do("POST", "/v1/applications", map[string]any{"name": "lobby"}, 201)
	lobby := c.do("POST", "/v1/applications/lobby/access-keys", map[string]any{}, 201)["secret_access_key"].(string)
	background := dialProxyWebSocket(t, proxyURL, lobby)

	trial := func(change func(id string)) (time.Duration, string) {
		t.Helper()
		k := c.do("POST", "/v1/applications/chat/access-keys", map[string]any{}, 201)
		id, secret := k["access_key_id"].(string), k["secret_access_key"].(string)
		ws := dialProxyWebSocket(t, proxyURL, secret)
		if err := wsEcho(ws, "hello"); err != nil {
			t.Fatal(err)
		}
		failed := make(chan time.Time, 1)
		go func() {
			var s string
			for websocket.Message.Receive(ws, &s) == nil {
			}
			failed <- time.Now()
		}()
		// A random point of the check interval.
		time.Sleep(rand.N(250 * time.Millisecond))
		start := time.Now()
		change(id)
		var took time.Duration
		select {
		case at := <-failed:
			took = at.Sub(start)
		case <-time.After(5 * time.Second):
			t.Fatalf("a WebSocket was still open 5s after its key changed\nstderr:\n%s", srv.stderr)
		}
		select {
		case <-ended:
		case <-time.After(5 * time.Second):
			t.Fatal("the upstream's end of a WebSocket stayed open after its key changed")
		}
		return took, id
	}
	var patched, deleted []time.Duration
	for range 20 {
		took, id := trial(func(id string) {
			c.do("PATCH", "/v1/access-keys/"+id, map[string]any{"status": "Inactive"}, 200)
		})
		patched = append(patched, took)
		c.do("DELETE", "/v1/access-keys/"+id, nil, 204) // an application has two keys at most
		took, _ = trial(func(id string) {
			c.do("DELETE", "/v1/access-keys/"+id+"?force=true", nil, 204)
		})
		deleted = append(deleted, took)
	}
	for _, m := range []struct {
		what string
		d    []time.Duration
	}{{"PATCH status Inactive", patched}, {"DELETE", deleted}} {
		med, p99, worst := percentiles(m.d)
		t.Logf("%s to the caller's failed read, %d WebSockets: median %s, p99 %s, max %s", m.what, len(m.d), med, p99, worst)
		if worst > 1500*time.Millisecond {
			t.Errorf("%s: a WebSocket outlived its key by %s, want under 1.5s", m.what, worst)
		}
	}
	if err := wsEcho(background, "still here"); err != nil {
		t.Errorf("the WebSocket of a key left alone: %v", err)
	}
	if !strings.Contains(srv.stderr.String(), "closed upgraded connections") {
		t.Errorf("no log line for the closed connections:\n%s", srv.stderr)
	}
	srv.stop()
}

func dialProxyWebSocket(t *testing.T, proxyURL, secret string) *websocket.Conn {
	t.Helper()
	cfg, err := websocket.NewConfig("ws"+strings.TrimPrefix(proxyURL, "http")+"/chat", proxyURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header.Set("X-Api-Key", secret)
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatalf("WebSocket handshake through the proxy: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func wsEcho(ws *websocket.Conn, msg string) error {
	_ = ws.SetDeadline(time.Now().Add(5 * time.Second))
	defer ws.SetDeadline(time.Time{})
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

// percentiles returns the median, the 99th percentile (nearest rank) and
// the largest of d, to the millisecond.
func percentiles(d []time.Duration) (med, p99, worst time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	rank := (len(s)*99 + 99) / 100 // ceil(0.99 n)
	return s[len(s)/2].Round(time.Millisecond), s[rank-1].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond)
}
