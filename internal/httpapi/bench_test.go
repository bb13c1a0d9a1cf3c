package httpapi_test

import (
	"net/http"
	"net/netip"
	"testing"
)

// discardWriter is a ResponseWriter that keeps nothing but the headers,
// reused between calls: what the benchmarks measure is the handler.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkAuthorize measures the forward-auth endpoint in the process,
// through the server's whole handler (guard, routing, decision, identity
// headers), as nginx asks it: GET /v1/authorize with the call's method
// and URI in X-Original-* headers and the key in Authorization. net/http's
// own cost (parsing, writing) is not in it; bench/load measures that.
func BenchmarkAuthorize(b *testing.B) {
	e := newEnv(b)
	e.mustApp(b, "default", "web")
	k := e.mustKey(b, "default", "web")
	e.api.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} // nginx's address
	h := e.api.Handler()
	req, err := http.NewRequest(http.MethodGet, "http://latchkey/v1/authorize", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.RemoteAddr = "127.0.0.1:50000"
	req.Header.Set("Authorization", "Bearer "+k.Secret)
	req.Header.Set("X-Original-Method", "GET")
	req.Header.Set("X-Original-URI", "/shipments/42?expand=items")
	req.Header.Set("User-Agent", "bench/1.0")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d, want 200", w.status)
		}
	}
}
