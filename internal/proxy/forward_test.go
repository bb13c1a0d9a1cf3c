package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/gatewaytest"
	"github.com/latchkey/latchkey/internal/proxy"
)

// TestHopByHop: a call without a body (forward.go's lean path) and one
// with a body (httputil.ReverseProxy) reach the upstream alike: no
// hop-by-hop header, none that Connection names, Te only as "trailers",
// Forwarded and X-Forwarded-* set by the proxy, no User-Agent when the
// caller sent none, no Accept-Encoding the caller did not send; and the
// answer's hop-by-hop headers do not reach the caller.
func TestHopByHop(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	k := env.Key(t, "web", nil)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s := seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone()}
		w.Header().Set("Connection", "X-Upstream-Hop")
		w.Header().Set("X-Upstream-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Upstream-End", "kept")
		_ = json.NewEncoder(w).Encode(s)
	}))
	t.Cleanup(up.Close)
	ps := startProxy(t, env, up.URL, proxy.Timeouts{})
	for _, method := range []string{"GET", "DELETE", "POST"} {
		t.Run(method, func(t *testing.T) {
			var body io.Reader
			if method == "POST" {
				body = strings.NewReader(`{"a":1}`)
			}
			req, _ := http.NewRequestWithContext(t.Context(), method, ps.URL+"/x?a=1;b=2&c=3", body)
			req.Header.Set("X-Api-Key", k.Secret)
			req.Header.Set("Connection", "X-Hop, keep-alive")
			req.Header.Set("X-Hop", "1")
			req.Header.Set("Keep-Alive", "timeout=5")
			req.Header.Set("Proxy-Authorization", "Basic eDp5")
			req.Header.Set("Proxy-Connection", "keep-alive")
			req.Header.Set("Te", "trailers, deflate")
			req.Header.Set("Forwarded", "for=198.51.100.1")
			req.Header.Set("X-Forwarded-Host", "forged.example")
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("X-Kept", "a")
			req.Header.Add("X-Kept", "b")
			req.Header["User-Agent"] = []string{""}
			req.Header.Set("Accept-Encoding", "identity")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got seen
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
				t.Fatalf("status %d, %v", resp.StatusCode, err)
			}
			for _, h := range []string{"Connection", "X-Hop", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Forwarded", "User-Agent", "X-Api-Key"} {
				if v, ok := got.Header[h]; ok {
					t.Errorf("upstream saw %s: %q", h, v)
				}
			}
			want := map[string]string{"Te": "trailers", "X-Forwarded-Proto": "http", "X-Forwarded-Host": strings.TrimPrefix(ps.URL, "http://"),
				"X-Forwarded-For": "127.0.0.1", "Accept-Encoding": "identity", "X-Kept": "a,b"}
			for h, w := range want {
				if v := strings.Join(got.Header[h], ","); v != w {
					t.Errorf("upstream saw %s: %q, want %q", h, v, w)
				}
			}
			if got.Method != method || got.Path != "/x" || got.Query != "c=3" {
				t.Errorf("upstream saw %s %s?%s", got.Method, got.Path, got.Query)
			}
			for _, h := range []string{"X-Upstream-Hop", "Keep-Alive"} {
				if v := resp.Header.Get(h); v != "" {
					t.Errorf("caller saw %s: %q", h, v)
				}
			}
			if resp.Header.Get("X-Upstream-End") != "kept" {
				t.Errorf("caller lost the upstream's end-to-end header: %v", resp.Header)
			}
		})
	}
	// No Accept-Encoding from the caller: none asked of the upstream.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", ps.URL+"/x", nil)
	req.Header.Set("X-Api-Key", k.Secret)
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got seen
	_ = json.NewDecoder(resp.Body).Decode(&got)
	if v, ok := got.Header["Accept-Encoding"]; ok {
		t.Errorf("upstream was asked for Accept-Encoding %q, which the caller did not send", v)
	}
}

// TestInformationalAndTrailers: a 103 Early Hints answer reaches the
// caller before the final answer, and the final answer's trailers follow
// its body. A 103 does not take away the rate-limit headers latchkey adds
// to the final answer.
func TestInformationalAndTrailers(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	k := env.Key(t, "web", &latchkey.Restrictions{RateLimit: &latchkey.RateLimit{PerSecond: 100, Burst: 100}})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc")
	}))
	t.Cleanup(up.Close)
	ps := startProxy(t, env, up.URL, proxy.Timeouts{})
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			var hints []string
			trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				if code == http.StatusEarlyHints {
					hints = append(hints, h.Get("Link"))
				}
				return nil
			}}
			var body io.Reader
			if method == "POST" {
				body = strings.NewReader("x")
			}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), method, ps.URL+"/x", body)
			req.Header.Set("X-Api-Key", k.Secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if string(b) != "body" || resp.Trailer.Get("X-Checksum") != "abc" {
				t.Errorf("body %q, trailers %v", b, resp.Trailer)
			}
			if len(hints) != 1 || hints[0] != "</style.css>; rel=preload" {
				t.Errorf("103 Early Hints seen: %q", hints)
			}
			if got := resp.Header.Get("RateLimit-Limit"); got != "100" {
				t.Errorf("final answer's RateLimit-Limit = %q after a 103, want 100", got)
			}
		})
	}
}

// TestUpstreamClosesKeptAliveConnections: a call on a kept-alive
// connection that the upstream has since closed is sent again on a new
// one, and HEAD, 204 and 304 answers (no body) leave their connection
// fit for the next call.
func TestUpstreamClosesKeptAliveConnections(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	k := env.Key(t, "web", nil)
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "hello")
		}
	}))
	t.Cleanup(up.Close)
	ps := startProxy(t, env, up.URL, proxy.Timeouts{})
	do := func(method, path string, want int, wantBody string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, ps.URL+path, nil)
		req.Header.Set("X-Api-Key", k.Secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || string(b) != wantBody {
			t.Fatalf("%s %s: %d %q, want %d %q", method, path, resp.StatusCode, b, want, wantBody)
		}
	}
	for range 3 {
		do("GET", "/x", 200, "hello")
		do("HEAD", "/x", 200, "")
		do("GET", "/204", 204, "")
		do("GET", "/304", 304, "")
		up.CloseClientConnections() // every kept-alive connection, now idle
	}
	if n := calls.Load(); n != 12 {
		t.Errorf("upstream got %d calls, want 12 (each once)", n)
	}
}

// TestCallerGoesAway: when the caller hangs up, the proxy's call to the
// upstream ends too.
func TestCallerGoesAway(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	k := env.Key(t, "web", nil)
	arrived, ended := make(chan struct{}), make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
		close(ended)
	}))
	t.Cleanup(up.Close)
	ps := startProxy(t, env, up.URL, proxy.Timeouts{})
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", ps.URL+"/slow", nil)
	req.Header.Set("X-Api-Key", k.Secret)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel()
	<-errc
	select {
	case <-ended:
	case <-time.After(30 * time.Second): // a bound for a hang, not a timing
		t.Fatal("the upstream's call is still open after the caller left")
	}
}

// TestLeanCallsShareNothing: the lean path reuses the outgoing request's
// header map and storage from call to call (forward.go's pool); each call
// reaches the upstream with its own headers only, never an earlier
// call's, its credential or its User-Agent, even with many calls at once.
func TestLeanCallsShareNothing(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	k := env.Key(t, "web", nil)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(seen{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()})
	}))
	t.Cleanup(up.Close)
	ps := startProxy(t, env, up.URL, proxy.Timeouts{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 25 {
				tag := fmt.Sprintf("%d-%d", g, i)
				req, _ := http.NewRequestWithContext(t.Context(), "GET", ps.URL+"/x", nil)
				req.Header.Set("Authorization", "Bearer "+k.Secret)
				if i%2 == 0 {
					req.Header.Set("X-Only-Even", tag)
					req.Header.Set("User-Agent", "agent-"+tag)
				} else {
					req.Header["User-Agent"] = []string{""}
				}
				req.Header.Set("X-Tag", tag)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				var got seen
				err = json.NewDecoder(resp.Body).Decode(&got)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					t.Errorf("status %d, %v", resp.StatusCode, err)
					return
				}
				h := got.Header
				if v := h.Get("X-Tag"); v != tag {
					t.Errorf("call %s: upstream saw X-Tag %q", tag, v)
				}
				if _, ok := h["Authorization"]; ok {
					t.Errorf("call %s: the credential reached the upstream", tag)
				}
				if i%2 == 0 {
					if h.Get("X-Only-Even") != tag || h.Get("User-Agent") != "agent-"+tag {
						t.Errorf("call %s: upstream saw X-Only-Even %q, User-Agent %q", tag, h.Get("X-Only-Even"), h.Get("User-Agent"))
					}
				} else if v, ok := h["X-Only-Even"]; ok || h.Get("User-Agent") != "" {
					t.Errorf("call %s: upstream saw an earlier call's X-Only-Even %q or User-Agent %q", tag, v, h.Get("User-Agent"))
				}
				if len(h["X-Forwarded-For"]) != 1 || len(h["X-Latchkey-Access-Key-Id"]) != 1 {
					t.Errorf("call %s: X-Forwarded-For %q, X-Latchkey-Access-Key-Id %q", tag, h["X-Forwarded-For"], h["X-Latchkey-Access-Key-Id"])
				}
			}
		})
	}
	wg.Wait()
}
