package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/gatewaytest"
)

// TestUpgradesWatch: only upgrades are watched (any other call is passed
// through untouched); the context of an upgrade is cancelled, with the
// reason, when its key is deactivated; and the check loop stops once no
// upgraded connection is open.
func TestUpgradesWatch(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	k := env.Key(t, "chat", nil)
	e := env.Verifier.Index.Get(k.ID)
	u := newUpgrades(env.Verifier, slog.New(slog.DiscardHandler))
	u.every = 10 * time.Millisecond

	plain := httptest.NewRequest("GET", "/chat", nil)
	if got := u.watch(plain, e); got != plain {
		t.Error("a call that is not an upgrade was changed")
	}
	// "Connection: Upgrade" without an Upgrade header is no upgrade to
	// httputil.ReverseProxy either.
	half := httptest.NewRequest("GET", "/chat", nil)
	half.Header.Set("Connection", "Upgrade")
	if got := u.watch(half, e); got != half {
		t.Error("a call with Connection: Upgrade and no Upgrade header was watched")
	}

	upgrade := func() (*http.Request, context.CancelFunc) {
		ctx, cancel := context.WithCancel(t.Context())
		r := httptest.NewRequestWithContext(ctx, "GET", "/chat", nil)
		r.Header.Set("Connection", "keep-alive, Upgrade")
		r.Header.Set("Upgrade", "websocket")
		return u.watch(r, e), cancel
	}
	ended, endCall := upgrade()
	endCall() // the tunnel closed by itself
	revoked, endRevoked := upgrade()
	defer endRevoked()

	env.SetStatus(t, k.ID, latchkey.StatusInactive)
	select {
	case <-revoked.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the upgrade of a deactivated key is still open")
	}
	var cause revokedError
	if !errors.As(context.Cause(revoked.Context()), &cause) || cause.Code != latchkey.CodeInactive {
		t.Errorf("cause %v, want the key's INACTIVE", context.Cause(revoked.Context()))
	}
	if !errors.Is(context.Cause(ended.Context()), context.Canceled) {
		t.Errorf("the upgrade that ended by itself: cause %v, want its own cancellation", context.Cause(ended.Context()))
	}
	for i := 0; ; i++ {
		u.mu.Lock()
		watching, open := u.watching, len(u.byKey)
		u.mu.Unlock()
		if !watching && open == 0 {
			break
		}
		if i == 500 {
			t.Fatalf("the check loop still runs (%d keys with open upgrades)", open)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkBound is what ServeHTTP adds to an allowed call for the body
// timeout and the upgrade watch: for a call without a body that is not an
// upgrade (BenchmarkProxy's), a header lookup and no allocation.
func BenchmarkBound(b *testing.B) {
	env := gatewaytest.New(b, gatewaytest.Options{})
	k := env.Key(b, "web", nil)
	e := env.Verifier.Index.Get(k.ID)
	p := &Proxy{client: ClientTimeouts{}.withDefaults(), upgrades: newUpgrades(env.Verifier, slog.New(slog.DiscardHandler))}
	r := httptest.NewRequest("GET", "/shipments/42", nil)
	r.Header.Set("Authorization", "Bearer x")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		if p.bound(w, r, e) != r {
			b.Fatal("a plain call was changed")
		}
	}
}
