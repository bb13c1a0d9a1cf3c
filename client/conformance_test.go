package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/cli/clitest"
	"github.com/latchkey/latchkey/sdk/conformance"
)

// TestConformance runs the SDK conformance suite (sdk/conformance/cases.json)
// through Middleware. It starts its own latchkey server, or uses the one
// the fixture file named by LATCHKEY_CONFORMANCE_FIXTURE describes (written
// by go run ./sdk/conformance/setup), as the other languages' runners do.
func TestConformance(t *testing.T) {
	suite, err := conformance.Cases()
	if err != nil {
		t.Fatal(err)
	}
	f := conformanceFixture(t)
	var passed atomic.Int64
	for _, c := range suite.Cases {
		t.Run(c.Name, func(t *testing.T) {
			runConformanceCase(t, f, &c)
			if !t.Failed() {
				passed.Add(1)
			}
		})
	}
	// The count CI reports for each language.
	t.Logf("conformance: go net/http: %d of %d cases passed", passed.Load(), len(suite.Cases))
}

func conformanceFixture(t *testing.T) *conformance.Fixture {
	t.Helper()
	if path := os.Getenv("LATCHKEY_CONFORMANCE_FIXTURE"); path != "" {
		f, err := conformance.ReadFixture(path)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	srv := clitest.Start(t)
	f, err := conformance.Prepare(t.Context(), srv.URL, srv.Admin)
	if err != nil {
		t.Fatal(err)
	}
	e, err := conformance.StartEndpoints()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	f.Fill(e)
	sg, err := conformance.StartSigner(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sg.Close() })
	return f
}

// seen is what the protected handler saw.
type seen struct {
	identity client.Identity
	method   string
	path     string
	header   http.Header
	body     []byte
}

func runConformanceCase(t *testing.T, f *conformance.Fixture, c *conformance.Case) {
	sub := func(s string) string {
		t.Helper()
		out, err := f.Substitute(s, c.Key)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	endpoint, err := f.Endpoint(c)
	if err != nil {
		t.Fatal(err)
	}
	v, err := client.New(endpoint, client.WithCredentials(f.Verifier.Client()))
	if err != nil {
		t.Fatal(err)
	}
	var got *seen
	h := client.Middleware(client.MiddlewareOptions{Client: v, Timeout: time.Duration(f.TimeoutMS) * time.Millisecond, Scope: func(*http.Request) string { return c.Scope }})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, _ := client.IdentityFrom(r.Context())
			b, err := io.ReadAll(r.Body)
			if err != nil {
				t.Errorf("the handler read the body: %v", err)
			}
			got = &seen{identity: id, method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: b}
			w.WriteHeader(http.StatusOK)
		}))

	// The target goes on the wire as written (httptest keeps it as the
	// RequestURI); the caller's address is the connection's peer.
	var body io.Reader
	if c.Request.Body != nil {
		body = bytes.NewReader([]byte(*c.Request.Body))
	}
	r := httptest.NewRequestWithContext(context.WithoutCancel(t.Context()), c.Request.Method, sub(c.Request.Target), body)
	r.RemoteAddr = c.Request.ClientIP + ":40000"
	for k, val := range c.Request.Headers {
		r.Header.Set(k, sub(val))
	}
	if c.Request.Sign != nil {
		// signed by the fixture's signer for the authority this harness
		// sends (httptest's Host, example.com)
		h, err := conformance.SignFor(t.Context(), f, &conformance.SignRequest{Method: c.Request.Method, Target: sub(c.Request.Target),
			Authority: r.Host, Scheme: "http", Body: c.Request.Body, Sign: *c.Request.Sign})
		if err != nil {
			t.Fatal(err)
		}
		for k, val := range h {
			r.Header.Set(k, val)
		}
	}
	w := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(w, r)
	took := time.Since(start)

	e := c.Expect
	if w.Code != e.Status {
		t.Errorf("status %d, want %d", w.Code, e.Status)
	}
	if e.ErrorCode != "" {
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code != e.ErrorCode || body.Error.Message == "" {
			t.Errorf("body %s, want a JSON error with code %s and a message", conformance.Compact(w.Body.Bytes()), e.ErrorCode)
		}
	}
	for k, want := range e.Headers {
		if got := w.Header().Get(k); got != sub(want) {
			t.Errorf("header %s: %q, want %q", k, got, want)
		}
	}
	for _, k := range e.HeadersPresent {
		if w.Header().Get(k) == "" {
			t.Errorf("header %s missing", k)
		}
	}
	for _, k := range e.HeadersAbsent {
		if v := w.Header().Get(k); v != "" {
			t.Errorf("header %s: %q, want none", k, v)
		}
	}
	if e.MaxMS > 0 && took > time.Duration(e.MaxMS)*time.Millisecond {
		t.Errorf("answered in %s, want within %dms", took, e.MaxMS)
	}
	switch {
	case e.Handler == nil && got != nil:
		t.Errorf("the protected handler ran (as %+v); it must not", got.identity)
	case e.Handler != nil && got == nil:
		t.Errorf("the protected handler did not run")
	case e.Handler != nil:
		want := client.Identity{AccessKeyID: sub(e.Handler.Identity.AccessKeyID), Application: sub(e.Handler.Identity.Application),
			Account: sub(e.Handler.Identity.Account)}
		if !reflect.DeepEqual(got.identity, want) {
			t.Errorf("the handler saw identity %+v, want %+v", got.identity, want)
		}
		if e.Handler.Body != nil && string(got.body) != *e.Handler.Body {
			t.Errorf("the handler read a body of %d bytes, not the case's %d", len(got.body), len(*e.Handler.Body))
		}
		if got.method != e.Handler.Method || got.path != e.Handler.Path {
			t.Errorf("the handler saw %s %s, want %s %s", got.method, got.path, e.Handler.Method, e.Handler.Path)
		}
		for _, name := range e.Handler.HeadersAbsent {
			for k := range got.header {
				if latchkey.HeaderNameEqual(k, name) {
					t.Errorf("the handler saw header %s", k)
				}
			}
		}
	}
}
