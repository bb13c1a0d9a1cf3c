package proxy_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/gatewaytest"
	"github.com/latchkey/latchkey/internal/proxy"
)

// TestSignedCalls sends signed calls through the proxy: each refused with
// its own code, and only the valid ones reach the upstream, with the body
// the client signed.
func TestSignedCalls(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	var got []byte
	up := newBodyUpstream(t, &got)
	ps := startProxy(t, env, up.srv.URL, proxy.Timeouts{})
	env.RunSigned(t, ps.URL, false, func(t *testing.T, r *http.Request, body []byte) latchkey.Code {
		t.Helper()
		before := up.count()
		got = nil
		return sendSigned(t, r, body, func(code latchkey.Code) {
			if reached := up.count() != before; reached != (code == latchkey.CodeValid) {
				t.Errorf("%s: reached the upstream = %v", code, reached)
			}
			if code == latchkey.CodeValid && body != nil && !bytes.Equal(got, body) {
				t.Errorf("the upstream got body %q, want %q", got, body)
			}
		})
	})
}

// sendSigned sends r with body and returns the decision: VALID for an
// answer from the upstream, else the refusal's code.
func sendSigned(t *testing.T, r *http.Request, body []byte, check func(latchkey.Code)) latchkey.Code {
	t.Helper()
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	code := latchkey.CodeValid
	if resp.StatusCode != 200 {
		code = gatewaytest.Refusal(t, resp, b)
	}
	if check != nil {
		check(code)
	}
	return code
}

// newBodyUpstream is an echoUpstream that also keeps the last body it got.
func newBodyUpstream(t *testing.T, got *[]byte) *echoUpstream {
	t.Helper()
	u := newEchoUpstream(t)
	h := u.srv.Config.Handler
	u.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading the body: %v", err)
		}
		*got = b
		h.ServeHTTP(w, r)
	})
	return u
}

// TestSignedBodyStreamed sends signed bodies longer than the proxy holds:
// they stream to the upstream, and one that does not match its digest is
// cut short there (the upstream never reads it whole) and refused.
func TestSignedBodyStreamed(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{})
	type got struct {
		body []byte
		err  error
	}
	gotc := make(chan got, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		gotc <- got{b, err}
	}))
	t.Cleanup(up.Close)
	p, err := proxy.New(proxy.Config{Upstream: mustURL(t, up.URL), API: env.API, SignedBodyBuffer: 64})
	if err != nil {
		t.Fatal(err)
	}
	ps := httptest.NewServer(p)
	t.Cleanup(ps.Close)
	k := env.SigningKey(t, "uploader", latchkey.AlgEd25519)
	signed := bytes.Repeat([]byte("0123456789abcdef"), 1024)
	tests := []struct {
		name    string
		body    []byte
		chunked bool
		want    latchkey.Code
	}{
		{"matches", signed, false, latchkey.CodeValid},
		{"matches, chunked", signed, true, latchkey.CodeValid},
		{"last byte changed", append(bytes.Clone(signed[:len(signed)-1]), 'X'), false, latchkey.CodeDigestMismatch},
		{"first byte changed, chunked", append([]byte("X"), signed[1:]...), true, latchkey.CodeDigestMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.NewRequest("PUT", ps.URL+"/files/1", nil)
			if err != nil {
				t.Fatal(err)
			}
			gatewaytest.Sign(t, r, signed, k, gatewaytest.Signing{})
			r.Body = io.NopCloser(bytes.NewReader(tt.body))
			r.ContentLength = int64(len(tt.body))
			if tt.chunked {
				r.Body, r.ContentLength = io.NopCloser(io.MultiReader(bytes.NewReader(tt.body))), -1
			}
			code := sendSigned(t, r, nil, nil)
			if code != tt.want {
				t.Errorf("%s, want %s", code, tt.want)
			}
			select {
			case g := <-gotc:
				switch {
				case tt.want == latchkey.CodeValid && (g.err != nil || !bytes.Equal(g.body, signed)):
					t.Errorf("the upstream got %d bytes, err %v; want the whole body", len(g.body), g.err)
				case tt.want != latchkey.CodeValid && g.err == nil:
					t.Errorf("the upstream read a whole body of %d bytes that does not match its digest", len(g.body))
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the upstream was not called")
			}
		})
	}
}

// TestSignedOrigin: a signed call is judged at the scheme and authority
// the client addressed. Behind a load balancer that ends TLS, the proxy
// takes them from X-Forwarded-Proto and X-Forwarded-Host, but only from a
// trusted proxy: a client cannot have a signature made for another host
// accepted by naming that host itself.
func TestSignedOrigin(t *testing.T) {
	for _, tt := range []struct {
		name    string
		trusted []string
		want    latchkey.Code
	}{
		{"from a trusted proxy", []string{"127.0.0.0/8"}, latchkey.CodeValid},
		{"from anyone else", nil, latchkey.CodeSignatureInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := gatewaytest.New(t, gatewaytest.Options{TrustedProxies: tt.trusted})
			k := env.SigningKey(t, "signer", latchkey.AlgEd25519)
			up := newEchoUpstream(t)
			ps := startProxy(t, env, up.srv.URL, proxy.Timeouts{})
			// what the client signed: its request to the API's public name
			signed, err := http.NewRequest("GET", "https://api.example.com/orders/7?page=2", nil)
			if err != nil {
				t.Fatal(err)
			}
			gatewaytest.Sign(t, signed, nil, k, gatewaytest.Signing{})
			r, err := http.NewRequestWithContext(t.Context(), "GET", ps.URL+"/orders/7?page=2", nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Header = signed.Header.Clone()
			r.Header.Set("X-Forwarded-Host", "api.example.com")
			r.Header.Set("X-Forwarded-Proto", "https")
			if got := sendSigned(t, r, nil, nil); got != tt.want {
				t.Errorf("%s, want %s", got, tt.want)
			}
		})
	}
}
