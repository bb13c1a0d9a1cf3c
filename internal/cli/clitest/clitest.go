// Package clitest starts a real latchkey server for tests of the client and
// the CLI: the SQLite store in a temporary directory, the verification index
// and usage recorder, the management service and the HTTP API, wired the way
// `latchkey serve` wires them, listening on 127.0.0.1:0.
package clitest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/verify"
)

// TB is the part of testing.TB that Start needs, so that a testscript
// setup can start a server too.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// Server is a running latchkey server.
type Server struct {
	URL     string
	Admin   client.Credentials // the first operator, as serve creates it
	Service *manage.Service
	HTTP    *httptest.Server
}

// Start starts a server that stops when the test ends.
func Start(t TB) *Server {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "latchkey.db"))
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	ix := verify.NewIndex()
	if _, err := ix.Sync(ctx, store); err != nil {
		t.Fatalf("loading index: %v", err)
	}
	log := slog.New(slog.DiscardHandler)
	// Usage is flushed to the store when the server stops, not during the
	// test: a read that runs while a flush is being written does not see the
	// usage being written (verify.Recorder.Flush clears it first), and the
	// tests must not depend on that timing.
	rec := verify.NewRecorder(store, time.Hour, log)
	svc := manage.New(store, ix, log)
	// Test receivers listen on loopback: open it, as an operator would
	// with serve --webhook-allow-cidr 127.0.0.0/8.
	svc.Destinations = &manage.Destinations{Policy: latchkey.DestinationPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}}
	dispatcher := manage.NewDispatcher(store, log)
	dispatcher.Destinations = svc.Destinations
	boot, err := svc.Bootstrap(ctx)
	if err != nil || boot == nil {
		t.Fatalf("bootstrap: %v", err)
	}
	verifier := verify.New(ix, rec)
	verifier.Quotas = svc // as serve wires it
	api := &httpapi.Server{
		Service: svc, Verifier: verifier, Log: log,
		Ready:    func(ctx context.Context) error { return store.Ping(ctx) },
		Webhooks: dispatcher, // pings are sent at once
	}
	hs := httptest.NewServer(api.Handler())
	recCtx, stopRec := context.WithCancel(ctx)
	rec.Start(recCtx)
	t.Cleanup(func() {
		hs.Close()
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = rec.Stop(sctx)
		stopRec()
		_ = store.Close()
	})
	return &Server{
		URL:     hs.URL,
		Admin:   client.Credentials{AccessKeyID: boot.ID, SecretAccessKey: boot.Secret},
		Service: svc,
		HTTP:    hs,
	}
}

// Client returns a client of the server with the given credentials.
func (s *Server) Client(t TB, c client.Credentials) *client.Client {
	t.Helper()
	cl, err := client.New(s.URL, client.WithCredentials(c), client.WithUserAgent("clitest"))
	if err != nil {
		t.Fatalf("%v", err)
	}
	return cl
}

// Verifier creates a principal with role verifier and returns its
// credentials, for a protected API that asks latchkey about its callers.
func (s *Server) Verifier(t TB, name string) client.Credentials {
	t.Helper()
	p, err := s.Client(t, s.Admin).CreatePrincipal(context.Background(), client.CreatePrincipalInput{Name: name, Role: latchkey.RoleVerifier})
	if err != nil {
		t.Fatalf("creating verifier: %v", err)
	}
	return p.AccessKey.Credentials()
}
