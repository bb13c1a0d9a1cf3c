package proxy

import (
	"crypto/tls"
	"maps"
	"mime"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"testing"

	"github.com/latchkey/latchkey/internal/httpapi"
)

// TestRewriteForwardingHeaders: the rewrite sets X-Forwarded-For, -Host,
// -Proto and X-Real-IP exactly as it did when it called
// httputil.ProxyRequest.SetXForwarded (the reference below), for peers
// and chains of every shape.
func TestRewriteForwardingHeaders(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	p := &Proxy{api: &httpapi.Server{TrustedProxies: trusted}}
	u, _ := url.Parse("http://upstream:9000")
	rewrite := p.rewrite(u)
	reference := func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		h := pr.Out.Header
		httpapi.DeleteClientHeaders(h)
		p.api.DeleteUntrustedCertHeaders(pr.In, h)
		delete(h, "X-Forwarded-For")
		client := httpapi.ClientIP(pr.In, trusted)
		if peer, err := netip.ParseAddrPort(pr.In.RemoteAddr); err == nil && peer.Addr().Unmap() != client && client.IsValid() {
			h["X-Forwarded-For"] = []string{client.String()}
		}
		pr.SetXForwarded()
		if client.IsValid() {
			h.Set("X-Real-Ip", client.String())
		}
	}
	for _, c := range []struct {
		name, remote, xff string
		tls               bool
	}{
		{"IPv4 peer", "192.0.2.7:4321", "", false},
		{"IPv4 peer, chain ignored", "192.0.2.7:4321", "198.51.100.1", false},
		{"IPv6 peer", "[2001:db8::1]:4321", "", true},
		{"IPv4-mapped peer", "[::ffff:192.0.2.7]:4321", "", false},
		{"trusted proxy for a client", "10.1.2.3:80", "198.51.100.1", false},
		{"trusted proxy, chain of trusted ones", "10.1.2.3:80", "203.0.113.9, 10.9.9.9", false},
		{"trusted proxy, no chain", "10.1.2.3:80", "", false},
		{"trusted IPv6 proxy for an IPv4 client", "[fd00::1]:80", "198.51.100.1", true},
		{"trusted proxy, garbled chain", "10.1.2.3:80", "nonsense", false},
		{"not host:port", "@", "", false},
		{"bare address", "192.0.2.7", "", false},
		{"empty", "", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := &http.Request{Method: "GET", URL: &url.URL{Path: "/x"}, Host: "api.example", RemoteAddr: c.remote,
				Header: http.Header{"Accept": {"*/*"}, "X-Real-Ip": {"6.6.6.6"}, "X-Forwarded-Host": {"evil"}}}
			if c.xff != "" {
				in.Header.Set("X-Forwarded-For", c.xff)
			}
			if c.tls {
				in.TLS = &tls.ConnectionState{}
			}
			run := func(f func(*httputil.ProxyRequest)) http.Header {
				out := in.Clone(t.Context())
				f(&httputil.ProxyRequest{In: in, Out: out})
				return out.Header
			}
			got, want := run(rewrite), run(reference)
			if !maps.EqualFunc(got, want, slices.Equal[[]string]) {
				t.Errorf("rewrite set\n%v\nSetXForwarded's would be\n%v", got, want)
			}
			for k, vv := range got {
				if cap(vv) != len(vv) {
					t.Errorf("%s: capacity %d for %d values: an append would write into another header's", k, cap(vv), len(vv))
				}
			}
		})
	}
}

// TestStreamed: an answer is streamed when it has no length or when
// mime.ParseMediaType reads its Content-Type as text/event-stream.
func TestStreamed(t *testing.T) {
	for _, ct := range []string{
		"", "application/json", "text/event-stream", "TEXT/Event-Stream; charset=utf-8",
		"  text/event-stream  ", "text/event-stream; a=1; a=2", "text/event-stream;;", "text/event-streams",
		"text/eventſstream", "text/plain; x=text/event-stream", "text/event-stream\t;q=1", ";text/event-stream",
	} {
		res := &http.Response{ContentLength: 10, Header: http.Header{}}
		if ct != "" {
			res.Header.Set("Content-Type", ct)
		}
		mt, _, _ := mime.ParseMediaType(ct)
		if got, want := streamed(res), mt == "text/event-stream"; got != want {
			t.Errorf("Content-Type %q: streamed %v, want %v", ct, got, want)
		}
	}
	if !streamed(&http.Response{ContentLength: -1, Header: http.Header{}}) {
		t.Error("an answer without a length is streamed")
	}
}
