package proxy_test

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/gatewaytest"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/proxy"
	"golang.org/x/net/websocket"
)

// seen is what the upstream received.
type seen struct {
	Method, Path, Query string
	Header              http.Header
}

// echoUpstream records each call and answers with what it saw.
type echoUpstream struct {
	mu    sync.Mutex
	calls []seen
	srv   *httptest.Server
}

func newEchoUpstream(t *testing.T) *echoUpstream {
	t.Helper()
	u := &echoUpstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone()}
		u.mu.Lock()
		u.calls = append(u.calls, s)
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *echoUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.calls)
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// startProxy serves a proxy to upstream on a real socket.
func startProxy(t *testing.T, env *gatewaytest.Env, upstream string, tm proxy.Timeouts) *httptest.Server {
	t.Helper()
	p, err := proxy.New(proxy.Config{Upstream: mustURL(t, upstream), API: env.API, Timeouts: tm})
	if err != nil {
		t.Fatal(err)
	}
	ps := httptest.NewServer(p)
	t.Cleanup(ps.Close)
	return ps
}

func TestNewRefusesBadUpstreams(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	for _, s := range []string{"", "ftp://x", "/relative", "http://user:pw@127.0.0.1:1", "http://127.0.0.1:1/?q=1", "http://"} {
		t.Run(s, func(t *testing.T) {
			u, _ := url.Parse(s)
			if _, err := proxy.New(proxy.Config{Upstream: u, API: env.API}); latchkey.ErrorCode(err) != latchkey.EINVALID {
				t.Errorf("New(%q) = %v, want InvalidArgument", s, err)
			}
		})
	}
}

func TestDecisions(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{TrustedProxies: []string{"127.0.0.1/32"},
		ScopeRules: []string{"GET /shipments* shipments:read", "POST /shipments* shipments:write"}})
	good := env.Key(t, "web", &latchkey.Restrictions{Scopes: []string{"shipments:read"}})
	goodExternalID := "cus_42"
	if _, err := env.Service.UpdateAccessKey(t.Context(), env.Operator, good.ID, latchkey.AccessKeyUpdate{ExternalID: &goodExternalID,
		Metadata: json.RawMessage(`{"plan":"pro"}`)}); err != nil {
		t.Fatal(err)
	}
	inactive := env.Key(t, "cron", nil)
	env.SetStatus(t, inactive.ID, latchkey.StatusInactive)
	fenced := env.Key(t, "fenced", &latchkey.Restrictions{AllowedIPs: []string{"192.0.2.0/24"}})
	limited := env.Key(t, "limited", &latchkey.Restrictions{RateLimit: &latchkey.RateLimit{PerMinute: 1}})
	exposed := env.Key(t, "leaky", nil)
	unknown := env.Key(t, "gone", nil)
	env.SetStatus(t, unknown.ID, latchkey.StatusInactive)
	if err := env.Service.DeleteAccessKey(t.Context(), env.Operator, unknown.ID, false); err != nil {
		t.Fatal(err)
	}

	up := newEchoUpstream(t)
	ps := startProxy(t, env, up.srv.URL+"/api", proxy.Timeouts{})

	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(good.ID+":"+good.Secret))
	tests := []struct {
		name   string
		method string
		target string
		header map[string]string
		status int
		code   string // X-Latchkey-Code for a refusal
	}{
		{name: "bearer", target: "/shipments/1?page=2", header: map[string]string{"Authorization": "Bearer " + good.Secret}, status: 200},
		{name: "basic", target: "/shipments/1", header: map[string]string{"Authorization": basic}, status: 200},
		{name: "x-api-key", target: "/shipments/1", header: map[string]string{"X-Api-Key": good.Secret}, status: 200},
		{name: "forged identity is replaced", target: "/shipments/1", header: map[string]string{"X-Api-Key": good.Secret,
			"X-Latchkey-Access-Key-Id": "LKIAFORGEDFORGEDFORG", "X-Latchkey-Application": "admin-app", "X-Latchkey-Extra": "x",
			"X-Latchkey-External-Id": "cus_forged", "X-Latchkey-Metadata": "eyJwbGFuIjoiZnJlZSJ9",
			// underscore twins, which CGI, WSGI and Rack servers merge with the real names
			"X_Latchkey_External_Id": "cus_forged", "X-Latchkey_Metadata": "eyJwbGFuIjoiZnJlZSJ9"}, status: 200},
		{name: "missing", target: "/shipments/1", status: 401, code: "MISSING"},
		{name: "malformed", target: "/shipments/1", header: map[string]string{"X-Api-Key": "lksk_nope"}, status: 401, code: "MALFORMED"},
		{name: "unknown", target: "/shipments/1", header: map[string]string{"X-Api-Key": unknown.Secret}, status: 401, code: "NOT_FOUND"},
		{name: "inactive", target: "/shipments/1", header: map[string]string{"X-Api-Key": inactive.Secret}, status: 401, code: "INACTIVE"},
		{name: "wrong ip", target: "/x", header: map[string]string{"X-Api-Key": fenced.Secret}, status: 403, code: "IP_NOT_ALLOWED"},
		{name: "ip from a trusted proxy", target: "/x", header: map[string]string{"X-Api-Key": fenced.Secret, "X-Forwarded-For": "192.0.2.10",
			"X-Latchkey-External-Id": "cus_forged", "X-Latchkey-Metadata": "eyJwbGFuIjoiZnJlZSJ9"}, status: 200},
		{name: "scope by rule", method: "POST", target: "/shipments", header: map[string]string{"X-Api-Key": good.Secret}, status: 403, code: "SCOPE_DENIED"},
		{name: "first call of a limited key", target: "/x", header: map[string]string{"X-Api-Key": limited.Secret}, status: 200},
		{name: "rate limited", target: "/x", header: map[string]string{"X-Api-Key": limited.Secret}, status: 429, code: "RATE_LIMITED"},
		{name: "secret in the url", target: "/x?api_key=" + exposed.Secret, header: map[string]string{"X-Api-Key": good.Secret}, status: 403, code: "CREDENTIALS_IN_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.count()
			method := tt.method
			if method == "" {
				method = "GET"
			}
			req, _ := http.NewRequestWithContext(t.Context(), method, ps.URL+tt.target, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if tt.status != 200 {
				var eb httpapi.ErrorBody
				if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code != tt.code || resp.Header.Get(httpapi.HeaderCode) != tt.code {
					t.Errorf("refusal: code header %q, body %s; want %s", resp.Header.Get(httpapi.HeaderCode), body, tt.code)
				}
				if up.count() != before {
					t.Errorf("a refused call reached the upstream")
				}
				if tt.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if tt.status == 429 && resp.Header.Get("Retry-After") == "" {
					t.Error("429 without Retry-After")
				}
				return
			}
			var got seen
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("upstream answer %s: %v", body, err)
			}
			path, query, _ := strings.Cut(tt.target, "?")
			if got.Method != method || got.Path != "/api"+path || got.Query != query {
				t.Errorf("upstream saw %s %s?%s, want %s /api%s?%s", got.Method, got.Path, got.Query, method, path, query)
			}
			for _, h := range []string{"Authorization", "X-Api-Key", "X-Latchkey-Extra"} {
				if v := got.Header.Get(h); v != "" {
					t.Errorf("upstream saw %s: %q", h, v)
				}
			}
			for h := range got.Header {
				if strings.Contains(h, "_") && latchkey.IsIdentityHeader(h) {
					t.Errorf("upstream saw %s: %q", h, got.Header[h])
				}
			}
			key := map[string]gatewaytest.Key{"bearer": good, "basic": good, "x-api-key": good, "forged identity is replaced": good,
				"ip from a trusted proxy": fenced, "first call of a limited key": limited}[tt.name]
			wantID := map[string]string{
				httpapi.HeaderKeyID: key.ID, httpapi.HeaderApplication: key.Application, httpapi.HeaderAccount: latchkey.DefaultAccount,
				httpapi.HeaderExternalID: "", httpapi.HeaderMetadata: "",
			}
			if key == good {
				wantID[httpapi.HeaderExternalID] = goodExternalID
				wantID[httpapi.HeaderMetadata] = base64.RawURLEncoding.EncodeToString([]byte(`{"plan":"pro"}`))
			}
			gotID := map[string]string{}
			for h := range wantID {
				gotID[h] = got.Header.Get(h)
			}
			if diff := cmp.Diff(wantID, gotID); diff != "" {
				t.Errorf("identity at the upstream (-want +got):\n%s", diff)
			}
			if key == good && got.Header.Get(httpapi.HeaderScopes) != "shipments:read" {
				t.Errorf("scopes at the upstream: %q", got.Header.Get(httpapi.HeaderScopes))
			}
			if key == limited && resp.Header.Get("RateLimit-Limit") != "1" {
				t.Errorf("RateLimit-Limit to the caller = %q, want 1", resp.Header.Get("RateLimit-Limit"))
			}
		})
	}
	if where := env.Exposed(t, exposed.ID); where != "URL of a GET request to /x" {
		t.Errorf("key sent in the proxy's URL: exposed where = %q", where)
	}
}

func TestForwardedFor(t *testing.T) {
	tests := []struct {
		name    string
		trusted []string
		xff     string
		want    string
	}{
		{"untrusted peer: its chain is dropped", nil, "198.51.100.1", "127.0.0.1"},
		{"trusted peer: its chain is kept", []string{"127.0.0.1/32"}, "198.51.100.1", "198.51.100.1, 127.0.0.1"},
		{"no chain", []string{"127.0.0.1/32"}, "", "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := gatewaytest.New(t, gatewaytest.Options{TrustedProxies: tt.trusted})
			k := env.Key(t, "web", nil)
			up := newEchoUpstream(t)
			ps := startProxy(t, env, up.srv.URL, proxy.Timeouts{})
			req, _ := http.NewRequestWithContext(t.Context(), "GET", ps.URL+"/", nil)
			req.Header.Set("X-Api-Key", k.Secret)
			if tt.xff != "" {
				req.Header.Set("X-Forwarded-For", tt.xff)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var got seen
			_ = json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			if v := got.Header.Get("X-Forwarded-For"); v != tt.want {
				t.Errorf("X-Forwarded-For at the upstream = %q, want %q", v, tt.want)
			}
			if got.Header.Get("X-Forwarded-Host") == "" || got.Header.Get("X-Forwarded-Proto") != "http" {
				t.Errorf("X-Forwarded-Host/Proto not set: %v", got.Header)
			}
		})
	}
}

// TestConcurrentLoad sends many calls at once with a mix of keys, each with
// its own body, and checks that every answer is the right one.
func TestConcurrentLoad(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	keys := []gatewaytest.Key{env.Key(t, "a", nil), env.Key(t, "b", nil), env.Key(t, "c", nil)}
	bad := env.Key(t, "d", nil)
	env.SetStatus(t, bad.ID, latchkey.StatusInactive)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s|%s", r.Header.Get(httpapi.HeaderApplication), b)
	}))
	t.Cleanup(up.Close)
	ps := startProxy(t, env, up.URL, proxy.Timeouts{})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(client.CloseIdleConnections)

	const workers, calls = 32, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers*calls)
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				k := keys[(w+i)%len(keys)]
				wantStatus, want := 200, fmt.Sprintf("%s|w%d-c%d", k.Application, w, i)
				if i%10 == 9 {
					k, wantStatus = bad, 401
				}
				req, _ := http.NewRequestWithContext(t.Context(), "POST", ps.URL+"/echo", strings.NewReader(fmt.Sprintf("w%d-c%d", w, i)))
				req.Header.Set("X-Api-Key", k.Secret)
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != wantStatus || (wantStatus == 200 && string(b) != want) {
					errs <- fmt.Errorf("worker %d call %d: %d %q, want %d %q", w, i, resp.StatusCode, b, wantStatus, want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestLargeBodies streams several MiB each way and checks them by digest.
func TestLargeBodies(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	k := env.Key(t, "web", nil)
	const size = 8 << 20
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("X-Request-Digest", hex.EncodeToString(h.Sum(nil)))
		w.Header().Set("X-Request-Bytes", fmt.Sprint(n))
		// answer with as many bytes, of a digest the caller can check
		_, _ = io.Copy(w, io.LimitReader(&counter{}, size))
	}))
	t.Cleanup(up.Close)
	ps := startProxy(t, env, up.URL, proxy.Timeouts{})

	body := make([]byte, size)
	if _, err := rand.Read(body); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	req, _ := http.NewRequestWithContext(t.Context(), "PUT", ps.URL+"/upload", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+k.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("X-Request-Digest"); got != hex.EncodeToString(sum[:]) {
		t.Errorf("upstream got a body of %s bytes with another digest", resp.Header.Get("X-Request-Bytes"))
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil || n != size {
		t.Fatalf("response body: %d bytes, %v", n, err)
	}
	want := sha256.New()
	_, _ = io.Copy(want, io.LimitReader(&counter{}, size))
	if hex.EncodeToString(h.Sum(nil)) != hex.EncodeToString(want.Sum(nil)) {
		t.Error("response body differs from what the upstream sent")
	}
}

// counter is an endless reader of a repeating byte pattern.
type counter struct{ i byte }

func (c *counter) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.i
		c.i++
	}
	return len(p), nil
}

// TestStreaming: the upstream's first bytes reach the caller while the
// upstream is still writing (an event stream is flushed as it comes), and a slow upstream within
// the response-header timeout is waited for.
func TestStreaming(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	k := env.Key(t, "web", nil)
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: second\n\n")
	}))
	t.Cleanup(up.Close)
	ps := startProxy(t, env, up.URL, proxy.Timeouts{})
	req, _ := http.NewRequestWithContext(t.Context(), "GET", ps.URL+"/events", nil)
	req.Header.Set("X-Api-Key", k.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q, %v", line, err)
	}
	close(release) // only now may the upstream finish
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: second\n\n" {
		t.Errorf("rest of the stream: %q", rest)
	}
}

func TestFailingUpstreams(t *testing.T) {
	// A port nothing listens on: take one, then close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()

	// An upstream that accepts and hangs up without answering.
	hangup := listenFunc(t, func(c net.Conn) {
		_, _ = bufio.NewReader(c).ReadString('\n')
		c.Close()
	})
	// An upstream that accepts, reads, and never answers.
	silent := listenFunc(t, func(c net.Conn) {
		_, _ = io.Copy(io.Discard, c)
	})
	// An upstream that answers 500 itself: passed on as it is.
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream's own error", http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)

	tests := []struct {
		name     string
		upstream string
		status   int
		json     bool
	}{
		{"connection refused", refused, 502, true},
		{"hangs up", hangup, 502, true},
		{"never answers", silent, 504, true},
		{"answers 500", broken.URL, 500, false},
	}
	env := gatewaytest.New(t, gatewaytest.Options{})
	k := env.Key(t, "web", nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := startProxy(t, env, tt.upstream, proxy.Timeouts{Dial: time.Second, ResponseHeader: 300 * time.Millisecond})
			req, _ := http.NewRequestWithContext(t.Context(), "GET", ps.URL+"/x", nil)
			req.Header.Set("X-Api-Key", k.Secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if !tt.json {
				return
			}
			var eb httpapi.ErrorBody
			if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code != latchkey.EUNAVAILABLE || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("body %s (%v), Content-Type %q: want a JSON %s error", body, err, resp.Header.Get("Content-Type"), latchkey.EUNAVAILABLE)
			}
		})
	}
}

// listenFunc serves each connection with fn on a real socket and returns
// its http:// URL.
func listenFunc(t *testing.T, fn func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { fn(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// TestWebSocket runs a real WebSocket handshake and echo through the proxy.
func TestWebSocket(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	k := env.Key(t, "chat", nil)
	handshake := make(chan http.Header, 1)
	up := httptest.NewServer(websocket.Server{
		Handshake: func(cfg *websocket.Config, r *http.Request) error {
			handshake <- r.Header.Clone()
			return nil
		},
		Handler: func(ws *websocket.Conn) { _, _ = io.Copy(ws, ws) },
	})
	t.Cleanup(up.Close)
	ps := startProxy(t, env, up.URL, proxy.Timeouts{})
	wsURL := "ws" + strings.TrimPrefix(ps.URL, "http") + "/chat"

	cfg, err := websocket.NewConfig(wsURL, ps.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header.Set("Authorization", "Bearer "+k.Secret)
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatalf("handshake through the proxy: %v", err)
	}
	defer ws.Close()
	h := <-handshake
	if h.Get("Authorization") != "" || h.Get(httpapi.HeaderApplication) != "chat" || h.Get(httpapi.HeaderKeyID) != k.ID {
		t.Errorf("upstream handshake headers: %v", h)
	}
	for _, msg := range []string{"hello", strings.Repeat("x", 100<<10)} {
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		// the echo may come back in several frames: read it all
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(ws, got); err != nil {
			t.Fatal(err)
		}
		if string(got) != msg {
			t.Errorf("echo of %d bytes came back different", len(msg))
		}
	}

	// without a key the handshake is refused with 401, before the upstream
	cfg, _ = websocket.NewConfig(wsURL, ps.URL)
	if _, err := websocket.DialConfig(cfg); err == nil || !strings.Contains(err.Error(), "bad status") {
		t.Errorf("keyless handshake: %v, want a refusal", err)
	}
	select {
	case h := <-handshake:
		t.Errorf("a keyless handshake reached the upstream: %v", h)
	default:
	}
}
