package client_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/cli/clitest"
	"github.com/latchkey/latchkey/internal/httpapi"
)

// countingTransport counts the calls the middleware makes to latchkey.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type mwEnv struct {
	admin   *client.Client
	calls   *countingTransport
	clock   *fakeClock
	handler http.Handler
}

// newMWEnv starts a real latchkey server and a protected handler behind the
// middleware, which asks that server as a verifier principal. The caller's
// address is taken from the test's X-Test-Ip header.
func newMWEnv(t *testing.T, o client.MiddlewareOptions) *mwEnv {
	t.Helper()
	srv := clitest.Start(t)
	e := &mwEnv{admin: srv.Client(t, srv.Admin), calls: &countingTransport{}, clock: &fakeClock{t: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}}
	v, err := client.New(srv.URL, client.WithCredentials(srv.Verifier(t, "api-gateway")), client.WithHTTPClient(&http.Client{Transport: e.calls}))
	if err != nil {
		t.Fatal(err)
	}
	o.Client, o.Now = v, e.clock.Now
	o.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Test-Ip") }
	e.handler = client.Middleware(o)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := client.IdentityFrom(r.Context())
		if !ok {
			http.Error(w, "no identity", 500)
			return
		}
		_ = json.NewEncoder(w).Encode(id)
	}))
	return e
}

// key creates an application's key with restrictions.
func (e *mwEnv) key(t *testing.T, app string, r *latchkey.Restrictions) *client.CreatedAccessKey {
	t.Helper()
	ctx := t.Context()
	if _, err := e.admin.GetApplication(ctx, "", app); latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
		if _, err := e.admin.CreateApplication(ctx, client.CreateApplicationInput{Name: app}); err != nil {
			t.Fatal(err)
		}
	}
	k, err := e.admin.CreateAccessKey(ctx, client.CreateAccessKeyInput{Application: app})
	if err != nil {
		t.Fatal(err)
	}
	if r != nil {
		if _, err := e.admin.UpdateAccessKey(ctx, k.ID, latchkey.AccessKeyUpdate{Restrictions: r}); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

func (e *mwEnv) setStatus(t *testing.T, id string, s latchkey.Status) {
	t.Helper()
	if _, err := e.admin.UpdateAccessKey(t.Context(), id, latchkey.AccessKeyUpdate{Status: &s}); err != nil {
		t.Fatal(err)
	}
}

// call sends one request through the middleware.
func (e *mwEnv) call(t *testing.T, method, target, ip string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), method, target, nil)
	r.Header.Set("X-Test-Ip", ip)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	return w
}

func TestMiddlewareDecisions(t *testing.T) {
	e := newMWEnv(t, client.MiddlewareOptions{CacheTTL: -1, Scope: func(r *http.Request) string {
		if r.Method == "POST" {
			return "orders:write"
		}
		return ""
	}})
	good := e.key(t, "shop", &latchkey.Restrictions{AllowedIPs: []string{"192.0.2.0/24"}, Scopes: []string{"orders:read"}})
	off := e.key(t, "cron", nil)
	e.setStatus(t, off.ID, latchkey.StatusInactive)
	limited := e.key(t, "batch", &latchkey.Restrictions{RateLimit: &latchkey.RateLimit{PerMinute: 1}})

	tests := []struct {
		name   string
		method string
		target string
		ip     string
		hdr    map[string]string
		status int
		code   latchkey.Code
		app    string
	}{
		{"bearer", "GET", "/orders", "192.0.2.1", map[string]string{"Authorization": "Bearer " + good.SecretAccessKey}, 200, "", "shop"},
		{"basic", "GET", "/orders", "192.0.2.1", map[string]string{"Authorization": basic(good.ID, good.SecretAccessKey)}, 200, "", "shop"},
		{"x-api-key", "GET", "/orders", "192.0.2.1", map[string]string{"X-Api-Key": good.SecretAccessKey}, 200, "", "shop"},
		{"basic with another key's id", "GET", "/orders", "192.0.2.1", map[string]string{"Authorization": basic(off.ID, good.SecretAccessKey)}, 401, latchkey.CodeNotFound, ""},
		{"missing", "GET", "/orders", "192.0.2.1", nil, 401, latchkey.CodeMissing, ""},
		{"malformed", "GET", "/orders", "192.0.2.1", map[string]string{"X-Api-Key": "lksk_short"}, 401, latchkey.CodeMalformed, ""},
		{"inactive", "GET", "/orders", "192.0.2.1", map[string]string{"X-Api-Key": off.SecretAccessKey}, 401, latchkey.CodeInactive, ""},
		{"wrong ip", "GET", "/orders", "198.51.100.1", map[string]string{"X-Api-Key": good.SecretAccessKey}, 403, latchkey.CodeIPNotAllowed, ""},
		{"scope", "POST", "/orders", "192.0.2.1", map[string]string{"X-Api-Key": good.SecretAccessKey}, 403, latchkey.CodeScopeDenied, ""},
		{"secret in the url", "GET", "/orders?x=" + good.SecretAccessKey, "192.0.2.1", map[string]string{"X-Api-Key": good.SecretAccessKey}, 403, latchkey.CodeCredentialsInURL, ""},
		{"credential parameter in the url", "GET", "/orders?api_key=abc", "192.0.2.1", map[string]string{"X-Api-Key": good.SecretAccessKey}, 403, latchkey.CodeCredentialsInURL, ""},
		{"rate limit, first call", "GET", "/", "192.0.2.1", map[string]string{"X-Api-Key": limited.SecretAccessKey}, 200, "", "batch"},
		{"rate limited", "GET", "/", "192.0.2.1", map[string]string{"X-Api-Key": limited.SecretAccessKey}, 429, latchkey.CodeRateLimited, ""},
		{"bearer and x-api-key", "GET", "/orders", "192.0.2.1", map[string]string{"Authorization": "Bearer " + good.SecretAccessKey, "X-Api-Key": off.SecretAccessKey}, 401, latchkey.CodeCredentialAmbiguous, ""},
		{"a comma-joined list", "GET", "/orders", "192.0.2.1", map[string]string{"X-Api-Key": good.SecretAccessKey + "," + off.SecretAccessKey}, 401, latchkey.CodeCredentialAmbiguous, ""},
		{"an underscore twin", "GET", "/orders", "192.0.2.1", map[string]string{"X_Api_Key": good.SecretAccessKey}, 401, latchkey.CodeCredentialAmbiguous, ""},
		{"a signature beside a bearer key", "GET", "/orders", "192.0.2.1", map[string]string{"Authorization": "Bearer " + good.SecretAccessKey,
			"Signature-Input": `sig1=("@method" "@target-uri");created=1;keyid="LKIAEXAMPLEEXAMPLE23"`, "Signature": "sig1=:AAAA:"}, 401, latchkey.CodeCredentialAmbiguous, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.call(t, tt.method, tt.target, tt.ip, tt.hdr)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status == 200 {
				var id client.Identity
				_ = json.Unmarshal(w.Body.Bytes(), &id)
				if id.Application != tt.app || id.Account != latchkey.DefaultAccount || id.AccessKeyID == "" {
					t.Errorf("identity %+v, want application %s", id, tt.app)
				}
				return
			}
			var body httpapi.ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code != string(tt.code) || body.Error.Message == "" {
				t.Errorf("body %s, want a JSON error with code %s", w.Body, tt.code)
			}
			if w.Header().Get("X-Latchkey-Code") != string(tt.code) {
				t.Errorf("X-Latchkey-Code %q", w.Header().Get("X-Latchkey-Code"))
			}
			if tt.status == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tt.status == 429 && w.Header().Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		})
	}
}

func basic(id, secret string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(id, secret)
	return r.Header.Get("Authorization")
}

// TestMiddlewareCache: positive decisions are reused for the TTL and no
// longer; refusals and rate-limited keys are asked about every time; a
// decision is reused only for the same key, address and scope.
func TestMiddlewareCache(t *testing.T) {
	e := newMWEnv(t, client.MiddlewareOptions{}) // DefaultCacheTTL
	k := e.key(t, "shop", nil)
	limited := e.key(t, "batch", &latchkey.Restrictions{RateLimit: &latchkey.RateLimit{PerSecond: 100, Burst: 100}})
	hdr := map[string]string{"X-Api-Key": k.SecretAccessKey}

	type step struct {
		name      string
		do        func()
		ip        string
		hdr       map[string]string
		status    int
		wantCalls int64 // calls to latchkey made by this step
	}
	steps := []step{
		{name: "first call asks", ip: "192.0.2.1", hdr: hdr, status: 200, wantCalls: 1},
		{name: "second call is cached", ip: "192.0.2.1", hdr: hdr, status: 200, wantCalls: 0},
		{name: "another address asks", ip: "192.0.2.2", hdr: hdr, status: 200, wantCalls: 1},
		{name: "deactivated, still cached (the documented staleness)", do: func() { e.setStatus(t, k.ID, latchkey.StatusInactive) },
			ip: "192.0.2.1", hdr: hdr, status: 200, wantCalls: 0},
		{name: "just before the TTL, still cached", do: func() { e.clock.Advance(client.DefaultCacheTTL - time.Millisecond) },
			ip: "192.0.2.1", hdr: hdr, status: 200, wantCalls: 0},
		{name: "at the TTL, asks and is refused", do: func() { e.clock.Advance(time.Millisecond) },
			ip: "192.0.2.1", hdr: hdr, status: 401, wantCalls: 1},
		{name: "refusals are not cached", ip: "192.0.2.1", hdr: hdr, status: 401, wantCalls: 1},
		{name: "reactivated: passes at once", do: func() { e.setStatus(t, k.ID, latchkey.StatusActive) },
			ip: "192.0.2.1", hdr: hdr, status: 200, wantCalls: 1},
		{name: "rate-limited key asks", ip: "192.0.2.1", hdr: map[string]string{"X-Api-Key": limited.SecretAccessKey}, status: 200, wantCalls: 1},
		{name: "rate-limited key asks every time", ip: "192.0.2.1", hdr: map[string]string{"X-Api-Key": limited.SecretAccessKey}, status: 200, wantCalls: 1},
		{name: "no key never asks", ip: "192.0.2.1", status: 401, wantCalls: 0},
	}
	for _, s := range steps {
		if s.do != nil {
			s.do()
		}
		before := e.calls.n.Load()
		w := e.call(t, "GET", "/", s.ip, s.hdr)
		if w.Code != s.status {
			t.Fatalf("%s: status %d, want %d: %s", s.name, w.Code, s.status, w.Body)
		}
		if got := e.calls.n.Load() - before; got != s.wantCalls {
			t.Errorf("%s: %d calls to latchkey, want %d", s.name, got, s.wantCalls)
		}
	}
}

func TestMiddlewareTTLBound(t *testing.T) {
	tests := []struct {
		name     string
		ttl      time.Duration
		after    time.Duration
		wantCall bool
	}{
		{"default, within", 0, client.DefaultCacheTTL - time.Second, false},
		{"default, past", 0, client.DefaultCacheTTL, true},
		{"an hour is cut to the maximum", time.Hour, client.MaxCacheTTL, true},
		{"within the maximum", time.Hour, client.MaxCacheTTL - time.Second, false},
		{"negative: no cache", -1, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newMWEnv(t, client.MiddlewareOptions{CacheTTL: tt.ttl})
			k := e.key(t, "shop", nil)
			hdr := map[string]string{"X-Api-Key": k.SecretAccessKey}
			e.call(t, "GET", "/", "192.0.2.1", hdr)
			e.clock.Advance(tt.after)
			before := e.calls.n.Load()
			if w := e.call(t, "GET", "/", "192.0.2.1", hdr); w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			if called := e.calls.n.Load() > before; called != tt.wantCall {
				t.Errorf("asked latchkey again: %v, want %v", called, tt.wantCall)
			}
		})
	}
}

// TestMiddlewareUnreachable: when latchkey cannot be reached, calls are
// refused with 503, never let through.
func TestMiddlewareUnreachable(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	c, err := client.New(url, client.WithCredentials(client.Credentials{SecretAccessKey: "x"}))
	if err != nil {
		t.Fatal(err)
	}
	reached := false
	h := client.Middleware(client.MiddlewareOptions{Client: c})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
	r := httptest.NewRequestWithContext(t.Context(), "GET", "/", nil)
	r.Header.Set("X-Api-Key", "lksk_"+"0123456789012345678901234567890123456789abcdef")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body, _ := io.ReadAll(w.Body)
	if w.Code != 503 || reached {
		t.Fatalf("status %d, reached %v: %s", w.Code, reached, body)
	}
	var eb httpapi.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code != latchkey.EUNAVAILABLE {
		t.Errorf("body %s", body)
	}
}

// TestMiddlewareSlowService: a latchkey that does not answer in time is
// treated as unreachable: 503 after the timeout, by default and when set,
// with an http.Client that has no timeout of its own.
func TestMiddlewareSlowService(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	c, err := client.New(slow.URL, client.WithCredentials(client.Credentials{SecretAccessKey: "x"}),
		client.WithHTTPClient(&http.Client{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		timeout time.Duration
		want    time.Duration
	}{
		{"default", 0, client.DefaultVerifyTimeout},
		{"set", 300 * time.Millisecond, 300 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reached := false
			h := client.Middleware(client.MiddlewareOptions{Client: c, Timeout: tt.timeout})(
				http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
			r := httptest.NewRequestWithContext(t.Context(), "GET", "/", nil)
			r.Header.Set("X-Api-Key", "lksk_"+"0123456789012345678901234567890123456789abcdef")
			w := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(w, r)
			took := time.Since(start)
			if w.Code != 503 || reached {
				t.Fatalf("status %d, reached %v, want 503 and not reached", w.Code, reached)
			}
			// the bound, not the slow service, ended the wait
			if took < tt.want || took > tt.want+5*time.Second {
				t.Errorf("refused after %v, want about %v", took, tt.want)
			}
		})
	}
}

// TestMiddlewareStatusesMatchServer: the middleware answers each decision
// code with the status latchkey's gateway surfaces use.
func TestMiddlewareStatusesMatchServer(t *testing.T) {
	got, want := map[string]int{}, map[string]int{}
	for _, c := range httpapi.DecisionCodes() {
		want[c] = httpapi.StatusForCode(latchkey.Code(c))
		got[c] = client.StatusForCode(latchkey.Code(c))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("statuses (-server +client):\n%s", diff)
	}
}

// TestMiddlewareExternalIDAndMetadata: the handler reads the key's external
// ID and metadata from the context, on a fresh decision and a cached one,
// and a client's own X-Latchkey-* headers do not change them.
func TestMiddlewareExternalIDAndMetadata(t *testing.T) {
	e := newMWEnv(t, client.MiddlewareOptions{})
	ctx := t.Context()
	if _, err := e.admin.CreateApplication(ctx, client.CreateApplicationInput{Name: "shop"}); err != nil {
		t.Fatal(err)
	}
	k, err := e.admin.CreateAccessKey(ctx, client.CreateAccessKeyInput{Application: "shop", ExternalID: "cus_42",
		Metadata: json.RawMessage(`{"plan": "pro"}`)})
	if err != nil {
		t.Fatal(err)
	}
	plain := e.key(t, "shop", nil)
	tests := []struct {
		name, secret string
		want         client.Identity
	}{
		{"with both", k.SecretAccessKey, client.Identity{AccessKeyID: k.ID, Application: "shop", Account: "default",
			ExternalID: "cus_42", Metadata: json.RawMessage(`{"plan":"pro"}`)}},
		{"cached", k.SecretAccessKey, client.Identity{AccessKeyID: k.ID, Application: "shop", Account: "default",
			ExternalID: "cus_42", Metadata: json.RawMessage(`{"plan":"pro"}`)}},
		{"without", plain.SecretAccessKey, client.Identity{AccessKeyID: plain.ID, Application: "shop", Account: "default"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.call(t, "GET", "/orders", "192.0.2.1", map[string]string{"X-Api-Key": tt.secret,
				"X-Latchkey-External-Id": "cus_forged", "X-Latchkey-Metadata": "eyJwbGFuIjoiZnJlZSJ9"})
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			var got client.Identity
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			// the test's handler wrote nil as null
			for _, m := range []*json.RawMessage{&got.Metadata, &got.IdentityMetadata, &got.ApplicationMetadata} {
				if string(*m) == "null" {
					*m = nil
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMiddlewareIdentity: the handler reads the key's identity and its
// application's metadata from the context; a key drawing from an
// identity's quota is never served from the cache, so that the quota
// refuses the call after the last unit.
func TestMiddlewareIdentity(t *testing.T) {
	e := newMWEnv(t, client.MiddlewareOptions{})
	ctx := t.Context()
	id, err := e.admin.CreateIdentity(ctx, "", latchkey.NewIdentity{Name: "acme", ExternalID: "cus_1",
		Metadata: json.RawMessage(`{"plan":"pro"}`), Quota: &latchkey.Quota{Remaining: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateApplication(ctx, client.CreateApplicationInput{Name: "shop", IdentityID: id.ID,
		Metadata: json.RawMessage(`{"channel":"web"}`)}); err != nil {
		t.Fatal(err)
	}
	k, err := e.admin.CreateAccessKey(ctx, client.CreateAccessKeyInput{Application: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	want := client.Identity{AccessKeyID: k.ID, Application: "shop", Account: "default", IdentityID: id.ID,
		IdentityExternalID: "cus_1", IdentityMetadata: json.RawMessage(`{"plan":"pro"}`), ApplicationMetadata: json.RawMessage(`{"channel":"web"}`)}
	for i, status := range []int{http.StatusOK, http.StatusOK, http.StatusTooManyRequests} {
		w := e.call(t, "GET", "/orders", "192.0.2.1", map[string]string{"X-Api-Key": k.SecretAccessKey})
		if w.Code != status {
			t.Fatalf("call %d: status %d, want %d: %s", i, w.Code, status, w.Body)
		}
		if status != http.StatusOK {
			continue
		}
		var got client.Identity
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if string(got.Metadata) == "null" {
			got.Metadata = nil
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("call %d: identity (-want +got):\n%s", i, diff)
		}
	}
}
