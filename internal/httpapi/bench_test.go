package httpapi_test

import (
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// cpuTime is the process's CPU time so far. On a machine shared with
// other work, wall-clock ns/op grows with the other work's share of the
// cores; CPU time per operation (cpu-ns/op) does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

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
// own cost (parsing, writing) is not in it; bench/load measures that. The
// refusals of an unknown well-formed key and of a bad checksum are
// measured beside the valid key: a flood of them must cost no more per
// call than a valid key (the guard is off, as in bench/load's floods).
func BenchmarkAuthorize(b *testing.B) {
	e := newEnv(b)
	e.mustApp(b, "default", "web")
	k := e.mustKey(b, "default", "web")
	e.api.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} // nginx's address
	h := e.api.Handler()
	unknown, err := keyformat.NewSecret()
	if err != nil {
		b.Fatal(err)
	}
	bad := []byte(unknown)
	bad[len(bad)-1] = keyformat.Alphabet[(strings.IndexByte(keyformat.Alphabet, bad[len(bad)-1])+1)%len(keyformat.Alphabet)]
	for _, bc := range []struct {
		name, secret string
		status       int
		code         latchkey.Code
	}{
		{"key=valid", k.Secret, http.StatusOK, latchkey.CodeValid},
		{"key=unknown", unknown, http.StatusUnauthorized, latchkey.CodeNotFound},
		{"key=bad-checksum", string(bad), http.StatusUnauthorized, latchkey.CodeMalformed},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req, err := http.NewRequest(http.MethodGet, "http://latchkey/v1/authorize", nil)
			if err != nil {
				b.Fatal(err)
			}
			req.RemoteAddr = "127.0.0.1:50000"
			req.Header.Set("Authorization", "Bearer "+bc.secret)
			req.Header.Set("X-Original-Method", "GET")
			req.Header.Set("X-Original-URI", "/shipments/42?expand=items")
			req.Header.Set("User-Agent", "bench/1.0")
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, req)
			if got := w.h.Get("X-Latchkey-Code"); got != string(bc.code) {
				b.Fatalf("X-Latchkey-Code %q, want %q: not the path the benchmark names", got, bc.code)
			}
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, req)
				if w.status != bc.status {
					b.Fatalf("status %d, want %d", w.status, bc.status)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// TestAuthorizeAllocs holds forward auth to what BenchmarkAuthorize
// measures: an allowed call allocates once in latchkey's handler (the
// answer headers' values together), where it allocated nine times before
// (one per header, and the status writer) and twice until the
// verification request stayed on the stack (the Canary hook gets a copy).
func TestAuthorizeAllocs(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, "default", "web")
	k := e.mustKey(t, "default", "web")
	e.api.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	h := e.api.Handler()
	req, err := http.NewRequest(http.MethodGet, "http://latchkey/v1/authorize", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.RemoteAddr = "127.0.0.1:50000"
	req.Header.Set("X-Api-Key", k.Secret)
	req.Header.Set("X-Forwarded-Method", "GET")
	req.Header.Set("X-Forwarded-Uri", "/shipments/42")
	w := &discardWriter{h: http.Header{}}
	n := testing.AllocsPerRun(1000, func() {
		clear(w.h)
		h.ServeHTTP(w, req)
	})
	if w.status != http.StatusOK || w.h.Get("X-Latchkey-Access-Key-Id") != k.ID || w.h.Get("X-Latchkey-Code") != "VALID" {
		t.Fatalf("status %d, headers %v", w.status, w.h)
	}
	if _, ok := w.h["X-Latchkey-Scopes"]; !ok {
		t.Errorf("no X-Latchkey-Scopes header (it must be there, empty): %v", w.h)
	}
	if n > 1 {
		t.Errorf("an allowed forward-auth call allocates %v times, want at most 1", n)
	}
}
