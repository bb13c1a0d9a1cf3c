package proxy_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/gatewaytest"
	"github.com/latchkey/latchkey/internal/proxy"
)

// BenchmarkProxySigned: one call through the proxy with a bearer key next
// to calls signed with an Ed25519 and an ECDSA P-256 signing key (RFC
// 9421: parse, nonce claimed in the in-process cache, signature verified),
// and a signed POST whose 1 KiB body is checked against its Content-Digest,
// in the same run, to a loopback upstream that answers 256 bytes. Each
// signed call is signed before the timer starts (a client's cost, not the
// proxy's), with a nonce of its own.
func BenchmarkProxySigned(b *testing.B) {
	answer := make([]byte, 256)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write(answer)
	}))
	defer up.Close()
	env := gatewaytest.New(b, gatewaytest.Options{})
	bearer := env.Key(b, "web", nil)
	ed := env.SigningKey(b, "signed-ed25519", latchkey.AlgEd25519)
	p256 := env.SigningKey(b, "signed-p256", latchkey.AlgECDSAP256SHA)
	lk, err := proxy.New(proxy.Config{Upstream: mustURL(b, up.URL), API: env.API, Transport: proxy.NewTransport(proxy.Timeouts{})})
	if err != nil {
		b.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), 1024)
	for _, bb := range []struct {
		name string
		key  *gatewaytest.SigningKey // nil: bearer
		body []byte
	}{
		{"bearer", nil, nil},
		{"signed-ed25519", &ed, nil},
		{"signed-ecdsa-p256", &p256, nil},
		{"bearer-post-1KiB", nil, body},
		{"signed-ed25519-post-1KiB", &ed, body},
	} {
		b.Run(bb.name, func(b *testing.B) {
			method := http.MethodGet
			if bb.body != nil {
				method = http.MethodPost
			}
			reqs := make([]*http.Request, b.N)
			for i := range reqs {
				r := httptest.NewRequest(method, "http://proxy/shipments/42", nil)
				if bb.key == nil {
					r.Header.Set("Authorization", "Bearer "+bearer.Secret)
				} else {
					gatewaytest.Sign(b, r, bb.body, *bb.key, gatewaytest.Signing{})
				}
				reqs[i] = r
			}
			w := &sink{h: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := reqs[i]
				if bb.body != nil {
					r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(bb.body)), int64(len(bb.body))
				}
				clear(w.h)
				lk.ServeHTTP(w, r)
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}
