package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/internal/postgres"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/verify"
)

// start is the injected clock's first reading.
var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable time source shared by the service and the verifier.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer is a bytes.Buffer safe for the server's concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// names is a resolver that knows only its own entries, so that tests never
// ask the network.
type names map[string][]netip.Addr

func (n names) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := n[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// cred is an access key as the client holds it.
type cred struct{ id, secret string }

// env is a running API over a real SQLite store in a temporary directory,
// with principals of every role.
type env struct {
	store    latchkey.Store
	dbPath   string // the SQLite file; "" on PostgreSQL
	ix       *verify.Index
	rec      *verify.Recorder
	svc      *manage.Service
	verifier *verify.Verifier
	api      *httpapi.Server
	ts       *httptest.Server
	clock    *clock

	operator   cred // operator "admin" of the default account (bootstrap)
	admin      cred // admin "alice" of the default account
	viewer     cred // viewer "victor" of the default account
	verifierP  cred // verifier "vera" of the default account
	otherAdmin cred // admin "olga" of account "other"
}

type envOptions struct {
	log *slog.Logger
	// postgres runs the env on a throwaway PostgreSQL database instead of
	// a SQLite file.
	postgres bool
}

// newEnv starts a server with the default account, account "other" and a
// principal of every role, all created through manage.Service.
func newEnv(t testing.TB, opts ...func(*envOptions)) *env {
	t.Helper()
	var o envOptions
	for _, f := range opts {
		f(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	ctx := t.Context()
	e := &env{clock: &clock{t: start}}
	var store latchkey.Store
	var err error
	if o.postgres {
		store, err = postgres.Open(ctx, pgtest.NewDatabase(t))
	} else {
		e.dbPath = filepath.Join(t.TempDir(), "latchkey.db")
		store, err = sqlite.Open(ctx, e.dbPath)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e.store = store
	e.ix = verify.NewIndex()
	if _, err := e.ix.Sync(ctx, store); err != nil {
		t.Fatal(err)
	}
	// A long interval: tests flush explicitly.
	e.rec = verify.NewRecorder(store, time.Hour, o.log)
	e.svc = manage.New(store, e.ix, o.log)
	e.svc.Now = e.clock.Now
	// The default destination policy, without real DNS: names that tests
	// do not teach it are unknown (accepted at creation).
	e.svc.Destinations = &manage.Destinations{Resolver: names{}}
	e.verifier = verify.New(e.ix, e.rec)
	e.verifier.Now = e.clock.Now

	boot, err := e.svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.operator = cred{boot.ID, boot.Secret}
	sys := latchkey.System()
	if _, err := e.svc.CreateAccount(ctx, sys, "other", latchkey.AccountUpdate{}); err != nil {
		t.Fatal(err)
	}
	mk := func(account, name string, role latchkey.Role) cred {
		t.Helper()
		p, err := e.svc.CreatePrincipal(ctx, sys, account, name, role)
		if err != nil {
			t.Fatalf("CreatePrincipal(%s, %s): %v", account, name, err)
		}
		return cred{p.AccessKey.ID, p.AccessKey.Secret}
	}
	e.admin = mk(latchkey.DefaultAccount, "alice", latchkey.RoleAdmin)
	e.viewer = mk(latchkey.DefaultAccount, "victor", latchkey.RoleViewer)
	e.verifierP = mk(latchkey.DefaultAccount, "vera", latchkey.RoleVerifier)
	e.otherAdmin = mk("other", "olga", latchkey.RoleAdmin)

	e.api = &httpapi.Server{Service: e.svc, Verifier: e.verifier, Log: o.log}
	e.ts = httptest.NewServer(e.api.Handler())
	t.Cleanup(e.ts.Close)
	return e
}

func withLogger(l *slog.Logger) func(*envOptions) {
	return func(o *envOptions) { o.log = l }
}

func onPostgres(o *envOptions) { o.postgres = true }

// auth sets a credential on a request.
type auth func(*http.Request)

func noAuth(*http.Request) {}

func bearer(c cred) auth {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+c.secret) }
}

func basic(c cred) auth {
	return func(r *http.Request) { r.SetBasicAuth(c.id, c.secret) }
}

// basicNoID is what curl -u :SECRET sends.
func basicNoID(c cred) auth {
	return func(r *http.Request) { r.SetBasicAuth("", c.secret) }
}

func apiKey(c cred) auth {
	return func(r *http.Request) { r.Header.Set("X-Api-Key", c.secret) }
}

func header(name, value string) auth {
	return func(r *http.Request) { r.Header.Set(name, value) }
}

func both(as ...auth) auth {
	return func(r *http.Request) {
		for _, a := range as {
			a(r)
		}
	}
}

func basicHeader(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

// resp is a response read in full.
type resp struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request. body "" sends no body; a body is sent as JSON
// unless as sets another Content-Type.
func (e *env) do(t *testing.T, method, path string, as auth, body string) *resp {
	t.Helper()
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.ts.URL+path, rb)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if as != nil {
		as(req)
	}
	return e.send(t, req)
}

func (e *env) send(t *testing.T, req *http.Request) *resp {
	t.Helper()
	res, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &resp{status: res.StatusCode, header: res.Header, body: b}
}

// decode unmarshals the body into v, failing the test on an error.
func (r *resp) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
}

// errorBody returns the error of an error response, checking its shape:
// exactly {"error":{"code","message"}}.
func (r *resp) errorBody(t *testing.T) httpapi.ErrorBody {
	t.Helper()
	var raw map[string]map[string]string
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatalf("error body %s: %v", r.body, err)
	}
	inner, ok := raw["error"]
	if len(raw) != 1 || !ok || len(inner) != 2 || inner["code"] == "" || inner["message"] == "" {
		t.Fatalf("error body %s: want exactly {\"error\":{\"code\",\"message\"}}", r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	var eb httpapi.ErrorBody
	eb.Error.Code, eb.Error.Message = inner["code"], inner["message"]
	return eb
}

// apiCase is one request and what it must answer.
type apiCase struct {
	name   string
	method string
	path   string
	as     auth
	body   string
	status int
	code   string                  // error code, for error statuses
	check  func(*testing.T, *resp) // more checks on the response
}

// run runs the cases in order, each as a subtest.
func (e *env) run(t *testing.T, cases []apiCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, tc.method, tc.path, tc.as, tc.body)
			e.expect(t, tc, r)
		})
	}
}

func (e *env) expect(t *testing.T, tc apiCase, r *resp) {
	t.Helper()
	if r.status != tc.status {
		t.Fatalf("%s %s: status %d, want %d; body %s", tc.method, tc.path, r.status, tc.status, r.body)
	}
	if tc.status >= 400 {
		eb := r.errorBody(t)
		if tc.code != "" && eb.Error.Code != tc.code {
			t.Errorf("%s %s: code %q, want %q (message %q)", tc.method, tc.path, eb.Error.Code, tc.code, eb.Error.Message)
		}
		if got := httpapi.StatusFor(eb.Error.Code); got != r.status {
			t.Errorf("code %s is answered with %d, but StatusFor says %d", eb.Error.Code, r.status, got)
		}
		if r.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
	}
	checkSchema(t, tc.method, tc.path, r)
	if tc.check != nil {
		tc.check(t, r)
	}
}

// Fixtures made through the service as the operator.

func (e *env) sys() latchkey.Actor { return latchkey.System() }

func (e *env) mustApp(t testing.TB, account, name string) *latchkey.Application {
	t.Helper()
	app, err := e.svc.CreateApplication(t.Context(), e.sys(), account, name, "", nil)
	if err != nil {
		t.Fatalf("CreateApplication(%s, %s): %v", account, name, err)
	}
	return app
}

func (e *env) mustKey(t testing.TB, account, app string) *manage.CreatedKey {
	t.Helper()
	k, err := e.svc.CreateAccessKey(t.Context(), e.sys(), account, app, latchkey.NewAccessKey{Description: "fixture"})
	if err != nil {
		t.Fatalf("CreateAccessKey(%s, %s): %v", account, app, err)
	}
	return k
}

func (e *env) mustDeactivate(t *testing.T, id string) {
	t.Helper()
	st := latchkey.StatusInactive
	if _, err := e.svc.UpdateAccessKey(t.Context(), e.sys(), id, latchkey.AccessKeyUpdate{Status: &st}); err != nil {
		t.Fatal(err)
	}
}

// auditEvents returns every audit event, oldest first.
func (e *env) auditEvents(t *testing.T) []*latchkey.AuditEvent {
	t.Helper()
	var all []*latchkey.AuditEvent
	f := latchkey.AuditFilter{Limit: 1000}
	for {
		evs, next, err := e.svc.ListAuditEvents(t.Context(), e.sys(), f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
		if next == "" {
			break
		}
		f.After = next
	}
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	return all
}

// storedKey reads a key straight from the store.
func (e *env) storedKey(t *testing.T, id string) *latchkey.AccessKey {
	t.Helper()
	var k *latchkey.AccessKey
	err := e.store.View(t.Context(), func(tx latchkey.Tx) (err error) {
		k, err = tx.FindAccessKey(t.Context(), id)
		return err
	})
	if err != nil {
		t.Fatalf("FindAccessKey(%s): %v", id, err)
	}
	return k
}

// jsonBody marshals v for a request body.
func jsonBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
