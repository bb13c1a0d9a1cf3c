package proxy_test

import (
	"io"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/gatewaytest"
	"github.com/latchkey/latchkey/internal/proxy"
	"golang.org/x/net/websocket"
)

// wsEcho is a WebSocket echo upstream that reports each connection's end.
func wsEcho(t *testing.T) (url string, ended <-chan struct{}) {
	t.Helper()
	done := make(chan struct{}, 16)
	url = newUpstream(t, websocket.Handler(func(ws *websocket.Conn) {
		defer func() { done <- struct{}{} }()
		_, _ = io.Copy(ws, ws)
	}).ServeHTTP)
	return url, done
}

// clock is a settable time for the verifier.
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// TestUpgradeEndsWithItsKey opens a WebSocket through the proxy, changes
// its key, and checks that the connection is closed, at both ends, when
// the key is deactivated, deleted or expires, and only then.
func TestUpgradeEndsWithItsKey(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, env *gatewaytest.Env, k, other gatewaytest.Key, c *clock)
		closes bool
	}{
		{"deactivated", func(t *testing.T, env *gatewaytest.Env, k, _ gatewaytest.Key, _ *clock) {
			env.SetStatus(t, k.ID, latchkey.StatusInactive)
		}, true},
		{"deleted", func(t *testing.T, env *gatewaytest.Env, k, _ gatewaytest.Key, _ *clock) {
			if err := env.Service.DeleteAccessKey(t.Context(), env.Operator, k.ID, true); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"expired", func(t *testing.T, env *gatewaytest.Env, k, _ gatewaytest.Key, c *clock) {
			exp := time.Now().Add(time.Hour)
			if _, err := env.Service.UpdateAccessKey(t.Context(), env.Operator, k.ID, latchkey.AccessKeyUpdate{ExpiresAt: &exp}); err != nil {
				t.Fatal(err)
			}
			c.Advance(2 * time.Hour)
		}, true},
		{"description changed", func(t *testing.T, env *gatewaytest.Env, k, _ gatewaytest.Key, _ *clock) {
			d := "still in use"
			if _, err := env.Service.UpdateAccessKey(t.Context(), env.Operator, k.ID, latchkey.AccessKeyUpdate{Description: &d}); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"another key deactivated", func(t *testing.T, env *gatewaytest.Env, _, other gatewaytest.Key, _ *clock) {
			env.SetStatus(t, other.ID, latchkey.StatusInactive)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := gatewaytest.New(t, gatewaytest.Options{})
			c := &clock{}
			env.Verifier.Now = c.Now
			k, other := env.Key(t, "chat", nil), env.Key(t, "chat", nil)
			up, ended := wsEcho(t)
			h := serveHardened(t, env, up, proxy.ClientTimeouts{})
			ws := dialWebSocket(t, h.URL, k.Secret)
			if err := echo(ws, "hello"); err != nil {
				t.Fatal(err)
			}
			if !tt.closes {
				tt.change(t, env, k, other, c)
				time.Sleep(4 * 250 * time.Millisecond) // four checks
				_ = ws.SetDeadline(time.Now().Add(5 * time.Second))
				if err := echo(ws, "still here"); err != nil {
					t.Errorf("the WebSocket of a key still valid: %v", err)
				}
				return
			}
			readErr := waitClosed(ws)
			start := time.Now()
			tt.change(t, env, k, other, c)
			select {
			case at := <-readErr:
				t.Logf("the caller's read failed %s after the change", at.Sub(start).Round(time.Millisecond))
			case <-time.After(3 * time.Second):
				t.Fatal("the WebSocket is still open 3s after the change")
			}
			select {
			case <-ended:
			case <-time.After(3 * time.Second):
				t.Error("the upstream's end of the WebSocket is still open")
			}
			// A new handshake with the key is refused.
			cfg, _ := websocket.NewConfig("ws"+h.URL[len("http"):]+"/chat", h.URL)
			cfg.Header.Set("Authorization", "Bearer "+k.Secret)
			if ws, err := websocket.DialConfig(cfg); err == nil {
				ws.Close()
				t.Error("a new handshake with the key was let through")
			}
		})
	}
}

// TestUpgradeRevocationBound measures, over 20 WebSockets, the time from
// deactivating their key to the caller's read failing. Each is the only
// WebSocket open, so the check loop starts with it and the change comes
// just after: the worst case, about one check interval.
// (cmd/latchkey's TestProxyWebSocketRevocation measures changes at random
// points of the interval, through the API.)
func TestUpgradeRevocationBound(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	up, _ := wsEcho(t)
	h := serveHardened(t, env, up, proxy.ClientTimeouts{})
	var took []time.Duration
	for range 20 {
		k := env.Key(t, "chat", nil)
		ws := dialWebSocket(t, h.URL, k.Secret)
		if err := echo(ws, "hello"); err != nil {
			t.Fatal(err)
		}
		readErr := waitClosed(ws)
		start := time.Now()
		env.SetStatus(t, k.ID, latchkey.StatusInactive)
		select {
		case at := <-readErr:
			took = append(took, at.Sub(start))
		case <-time.After(3 * time.Second):
			t.Fatal("a WebSocket is still open 3s after its key was deactivated")
		}
		if err := env.Service.DeleteAccessKey(t.Context(), env.Operator, k.ID, false); err != nil {
			t.Fatal(err)
		}
	}
	med, p99, worst := percentiles(took)
	t.Logf("deactivation to a failed read, %d WebSockets: median %s, p99 %s, max %s", len(took), med, p99, worst)
	if worst > time.Second {
		t.Errorf("a WebSocket outlived its key by %s, want under 1s", worst)
	}
}

// waitClosed reads ws until a read fails, and then sends the time.
func waitClosed(ws *websocket.Conn) <-chan time.Time {
	failed := make(chan time.Time, 1)
	go func() {
		var s string
		for websocket.Message.Receive(ws, &s) == nil {
		}
		failed <- time.Now()
	}()
	return failed
}

// percentiles returns the median, the 99th percentile (nearest rank) and
// the largest of d, to the millisecond.
func percentiles(d []time.Duration) (med, p99, worst time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	rank := (len(s)*99 + 99) / 100 // ceil(0.99 n)
	return s[len(s)/2].Round(time.Millisecond), s[rank-1].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond)
}
