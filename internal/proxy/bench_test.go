package proxy_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/gatewaytest"
	"github.com/latchkey/latchkey/internal/proxy"
)

// sink is a ResponseWriter that discards the answer, reused between calls.
type sink struct {
	h      http.Header
	status int
}

func (w *sink) Header() http.Header         { return w.h }
func (w *sink) WriteHeader(code int)        { w.status = code }
func (w *sink) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkProxy: one call through latchkey's proxy (decision, credential
// removed, identity headers, a real round trip to an upstream on
// loopback that answers 256 bytes), as serve configures it (no Transport
// given: the lean path's own HTTP/1.1 client, forward.go), next to Go's
// plain httputil.ReverseProxy on latchkey's http.Transport
// (NewTransport). B/op shows what each
// call leaves for the collector; cpu-ns/op is the process's CPU time
// per call (the upstream's, in the same process, included), the figure to
// compare on a machine shared with other work, where ns/op grows with the
// other work's share of the cores.
func BenchmarkProxy(b *testing.B) {
	answer := make([]byte, 256)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(answer) }))
	defer up.Close()
	env := gatewaytest.New(b, gatewaytest.Options{})
	k := env.Key(b, "web", nil)
	tr := proxy.NewTransport(proxy.Timeouts{})
	lk, err := proxy.New(proxy.Config{Upstream: mustURL(b, up.URL), API: env.API})
	if err != nil {
		b.Fatal(err)
	}
	u := mustURL(b, up.URL)
	plain := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) }, Transport: tr}
	// and with a pool of copy buffers, as bench/load's tuned baseline has
	pooled := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) }, Transport: tr, BufferPool: &buffers{}}
	for _, bb := range []struct {
		name string
		h    http.Handler
	}{{"latchkey", lk}, {"httputil", plain}, {"httputil-pooled", pooled}} {
		b.Run(bb.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "http://proxy/shipments/42", nil)
			req.Header.Set("Authorization", "Bearer "+k.Secret)
			w := &sink{h: http.Header{}}
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				clear(w.h)
				bb.h.ServeHTTP(w, req)
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// buffers is an httputil.BufferPool.
type buffers struct{ p sync.Pool }

func (b *buffers) Get() []byte {
	if a, ok := b.p.Get().(*[32 << 10]byte); ok {
		return a[:]
	}
	return make([]byte, 32<<10)
}

func (b *buffers) Put(buf []byte) { b.p.Put((*[32 << 10]byte)(buf[:32<<10])) }

// cpuTime is the process's CPU time so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
