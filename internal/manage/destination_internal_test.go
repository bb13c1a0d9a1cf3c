package manage

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// TestControlChecksTheSocket: the second wall. A dialler that skipped the
// check of resolved addresses would still be stopped just before connect,
// whatever address it reached by.
func TestControlChecksTheSocket(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	d := &Destinations{}
	st := &attemptState{}
	dialer := &net.Dialer{Timeout: time.Second, Control: d.control("hooks.example.com", st)}
	_, err := dialer.DialContext(t.Context(), "tcp", srv.Listener.Addr().String())
	var re *refusedError
	if !errors.As(err, &re) || !st.refused.Load() {
		t.Fatalf("dial to %s through the control: %v", srv.Listener.Addr(), err)
	}
	if err := d.control("h", nil)("tcp", "93.184.215.14:443", nil); err != nil {
		t.Errorf("public address refused: %v", err)
	}
	for _, a := range []string{"[::1]:80", "[::ffff:127.0.0.1]:80", "169.254.169.254:80", "[fe80::1%eth0]:80", "garbage"} {
		if err := d.control("h", nil)("tcp", a, nil); err == nil {
			t.Errorf("%s allowed", a)
		}
	}
}

// TestDeliveryTransportUsesNoProxy: a proxy from the environment would
// connect to the destination itself, beyond the dialler's check.
func TestDeliveryTransportUsesNoProxy(t *testing.T) {
	d := NewDispatcher(nil, nil)
	tr, ok := d.client.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport %T", d.client.Transport)
	}
	if tr.Proxy != nil {
		t.Error("the delivery transport has a Proxy function")
	}
	if d.client.CheckRedirect == nil || d.client.CheckRedirect(nil, nil) != http.ErrUseLastResponse {
		t.Error("the delivery client follows redirects")
	}
}

func TestPublicError(t *testing.T) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	timeout := &url.Error{Op: "Post", URL: "http://x", Err: context.DeadlineExceeded}
	tests := []struct {
		name                          string
		parent                        context.Context
		refused, connected, tlsFailed bool
		err                           error
		want                          string
	}{
		{"refused", t.Context(), true, false, false, errors.New("x"), msgNotAllowed},
		{"refused while shutting down", cancelled, true, false, false, context.Canceled, msgNotAllowed},
		{"shutting down", cancelled, false, true, false, context.Canceled, msgInterrupted},
		{"TLS", t.Context(), false, true, true, errors.New("tls: bad certificate"), msgTLS},
		{"timeout before connecting", t.Context(), false, false, false, timeout, msgConnect},
		{"timeout after connecting", t.Context(), false, true, false, timeout, msgTimeout},
		{"anything else", t.Context(), false, true, false, errors.New("unexpected EOF"), msgConnect},
	}
	for _, tt := range tests {
		st := &attemptState{}
		st.refused.Store(tt.refused)
		st.connected.Store(tt.connected)
		st.tlsFailed.Store(tt.tlsFailed)
		if got := publicError(tt.parent, st, tt.err); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
