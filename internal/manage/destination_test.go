package manage_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"golang.org/x/net/dns/dnsmessage"
)

// dnsServer is a tiny authoritative DNS server on 127.0.0.1 whose answers
// a test changes while it runs, as a rebinding attacker changes theirs.
type dnsServer struct {
	addr string

	mu      sync.Mutex
	answers map[string][]netip.Addr // by lower-case name with the final dot
	queries map[string]int
}

func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	s := &dnsServer{addr: pc.LocalAddr().String(), answers: map[string][]netip.Addr{}, queries: map[string]int{}}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if msg, ok := s.answer(buf[:n]); ok {
				_, _ = pc.WriteTo(msg, from)
			}
		}
	}()
	return s
}

// set makes name resolve to addrs from now on.
func (s *dnsServer) set(name string, addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var as []netip.Addr
	for _, a := range addrs {
		as = append(as, netip.MustParseAddr(a))
	}
	s.answers[strings.ToLower(name)+"."] = as
}

func (s *dnsServer) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[strings.ToLower(name)+"."]
}

func (s *dnsServer) answer(query []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := strings.ToLower(q.Name.String())
	s.mu.Lock()
	addrs, known := s.answers[name]
	s.queries[name]++
	s.mu.Unlock()
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	_ = b.StartQuestions()
	_ = b.Question(q)
	_ = b.StartAnswers()
	rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}
	for _, a := range addrs {
		switch {
		case q.Type == dnsmessage.TypeA && a.Is4():
			_ = b.AResource(rr, dnsmessage.AResource{A: a.As4()})
		case q.Type == dnsmessage.TypeAAAA && a.Is6():
			_ = b.AAAAResource(rr, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
	}
	msg, err := b.Finish()
	return msg, err == nil
}

// resolver is Go's own resolver, sending every query to this server.
func (s *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.addr)
	}}
}

func portOf(t *testing.T, addr net.Addr) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func (e *env) onlyDelivery(t *testing.T, webhookID string) *latchkey.WebhookDelivery {
	t.Helper()
	ds, _, err := e.svc.ListDeliveries(t.Context(), e.admin, latchkey.DeliveryFilter{WebhookID: webhookID})
	if err != nil || len(ds) != 1 {
		t.Fatalf("ListDeliveries = %v, %v", ds, err)
	}
	return ds[0]
}

// TestDeliveryCatchesDNSRebinding: a name that resolves to a public
// address when the webhook is created and to 127.0.0.1 at delivery is
// refused at delivery, through the real resolver and dial path; once the
// operator opens 127.0.0.1, the same path delivers, so the refusal was
// the policy's and not a broken setup.
func TestDeliveryCatchesDNSRebinding(t *testing.T) {
	e := newEnv(t)
	dns := startDNS(t)
	dest := &manage.Destinations{Resolver: dns.resolver()} // nothing opened
	e.svc.Destinations = dest
	r := newReceiver(t, e.clock.Now, 0)
	const name = "hooks.rebind.test"
	url := "http://" + name + ":" + portOf(t, r.srv.Listener.Addr()) + "/hook"

	dns.set(name, "93.184.215.14")
	w := e.hookURL(t, r, url)
	if dns.count(name) == 0 {
		t.Fatal("the name was not resolved at creation")
	}

	dns.set(name, "127.0.0.1")
	atCreation := dns.count(name)
	if _, err := e.svc.PingWebhook(t.Context(), e.admin, w.ID); err != nil {
		t.Fatal(err)
	}
	d := e.dispatcher()
	d.Destinations = dest
	e.deliver(t, d)
	got := e.onlyDelivery(t, w.ID)
	if got.Status != latchkey.DeliveryPending || got.LastError != "destination not allowed" || got.ResponseCode != 0 {
		t.Fatalf("after rebinding to 127.0.0.1: %+v", got)
	}
	if dns.count(name) == atCreation {
		t.Error("the name was not resolved again at delivery")
	}
	if r.calls != 0 {
		t.Fatalf("the receiver on 127.0.0.1 was called %d times", r.calls)
	}

	// One public and one loopback address: refused too, whichever would
	// be dialled first.
	dns.set(name, "93.184.215.14", "::1")
	e.clock.Advance(time.Hour)
	e.deliver(t, d)
	if got := e.onlyDelivery(t, w.ID); got.Attempts != 2 || got.LastError != "destination not allowed" {
		t.Fatalf("with a public and a loopback address: %+v", got)
	}

	// Creating a webhook for the name now is refused, naming the rule but
	// not the address.
	_, err := e.svc.CreateWebhook(t.Context(), e.admin, latchkey.DefaultAccount, latchkey.NewWebhook{URL: url})
	wantCode(t, err, latchkey.EDESTINATION)
	if msg := latchkey.ErrorMessage(err); !strings.Contains(msg, "loopback address (::1/128)") || strings.Contains(msg, "93.184") {
		t.Errorf("message %q", msg)
	}

	dns.set(name, "127.0.0.1")
	dest.Policy.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	e.clock.Advance(time.Hour)
	e.deliver(t, d)
	if got := e.onlyDelivery(t, w.ID); got.Status != latchkey.DeliveryDelivered || got.ResponseCode != 204 {
		t.Fatalf("with 127.0.0.1 opened: %+v", got)
	}
	if r.calls != 1 {
		t.Errorf("receiver calls %d, want 1", r.calls)
	}
}

func (e *env) hookURL(t *testing.T, r *receiver, url string) *manage.CreatedWebhook {
	t.Helper()
	w, err := e.svc.CreateWebhook(t.Context(), e.admin, latchkey.DefaultAccount, latchkey.NewWebhook{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	if r != nil {
		r.secret = w.Secret
	}
	return w
}

// resolverFunc is a Resolver made of a function.
type resolverFunc func(ctx context.Context, host string) ([]netip.Addr, error)

func (f resolverFunc) LookupNetIP(ctx context.Context, _, host string) ([]netip.Addr, error) {
	return f(ctx, host)
}

// leakyText matches what a delivery error must never say: an address, a
// port, or words of the system's error that tell one failure from another.
var leakyText = regexp.MustCompile(`(?i)\d+\.\d+\.\d+|\[|::|:\d|dial|refused|reset|unreachable|i/o|no such host|lookup|x509|tls:|certificate|eof|malformed|deadline`)

// TestDeliveryErrorsAreGeneric: each way a delivery can fail shows one of
// the few fixed messages in the delivery log, never an address or the
// system's error; the detail goes to the debug log, and only there.
func TestDeliveryErrorsAreGeneric(t *testing.T) {
	loopback := latchkey.DestinationPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	listen := func(t *testing.T, serve func(net.Conn)) string {
		t.Helper()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go serve(c)
			}
		}()
		return ln.Addr().String()
	}
	status := func(t *testing.T, code int, location string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if location != "" {
				w.Header().Set("Location", location)
			}
			w.WriteHeader(code)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	var redirected sync.Mutex
	redirectCalls := 0
	redirectTarget := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		redirected.Lock()
		redirectCalls++
		redirected.Unlock()
	}))
	t.Cleanup(redirectTarget.Close)

	tests := []struct {
		name string
		url  func(t *testing.T) string
		// delivery is the policy and resolver at delivery; nil: as at
		// creation (127.0.0.1 opened, no DNS)
		delivery *manage.Destinations
		timeout  time.Duration
		want     string
		// debug is what the debug log must say of the cause
		debug string
	}{
		{name: "closed port", url: func(t *testing.T) string {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln.Close()
			return "http://" + ln.Addr().String() + "/hook"
		}, want: "connection failed", debug: "connection refused"},
		{name: "name does not resolve", url: func(*testing.T) string { return "http://hooks.nowhere.test/hook" },
			want: "connection failed", debug: "no such host"},
		{name: "resolver does not answer in time", url: func(*testing.T) string { return "http://hooks.slow.test/hook" },
			delivery: &manage.Destinations{Policy: loopback, LookupTimeout: 50 * time.Millisecond,
				Resolver: resolverFunc(func(ctx context.Context, _ string) ([]netip.Addr, error) {
					<-ctx.Done()
					return nil, ctx.Err()
				})},
			want: "connection failed", debug: "deadline exceeded"},
		{name: "port open, no answer", url: func(t *testing.T) string {
			return "http://" + listen(t, func(c net.Conn) {
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, _ = bufio.NewReader(c).ReadString(0) // until the client gives up
			}) + "/hook"
		}, timeout: 200 * time.Millisecond, want: "timed out", debug: "deadline exceeded"},
		{name: "not HTTP", url: func(t *testing.T) string {
			return "http://" + listen(t, func(c net.Conn) {
				defer c.Close()
				// After the request's headers, so that the client reads
				// the banner as its answer.
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
			}) + "/hook"
		}, want: "connection failed", debug: "malformed HTTP"},
		{name: "untrusted certificate", url: func(t *testing.T) string {
			srv := httptest.NewUnstartedServer(http.NotFoundHandler())
			srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
			srv.StartTLS()
			t.Cleanup(srv.Close)
			return srv.URL + "/hook"
		}, want: "TLS handshake failed", debug: "certificate"},
		{name: "HTTP 500", url: func(t *testing.T) string { return status(t, 500, "") + "/hook" }, want: "HTTP 500"},
		{name: "redirect", url: func(t *testing.T) string { return status(t, 302, redirectTarget.URL) + "/hook" },
			want: "HTTP 302 (redirects are not followed)"},
		{name: "policy narrowed after creation", url: func(t *testing.T) string { return status(t, 204, "") + "/hook" },
			delivery: &manage.Destinations{Resolver: noDNS{}}, want: "destination not allowed", debug: "loopback address (127.0.0.0/8)"},
		{name: "metadata name", url: func(t *testing.T) string { return "http://metadata.google.internal/computeMetadata/v1/" },
			delivery: &manage.Destinations{Resolver: noDNS{}}, want: "destination not allowed", debug: "cloud metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.name == "metadata name" {
				// Created while the name was unknown to the policy's
				// checks: it is judged at delivery all the same.
				e.svc.Destinations = &manage.Destinations{Resolver: noDNS{}, Policy: latchkey.DestinationPolicy{
					Allow: []netip.Prefix{netip.MustParsePrefix("169.254.169.254/32")}}}
			}
			w := e.hookURL(t, nil, tt.url(t))
			if _, err := e.svc.PingWebhook(t.Context(), e.admin, w.ID); err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			d := manage.NewDispatcher(e.store, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			d.Now, d.Destinations = e.clock.Now, e.dest
			if tt.delivery != nil {
				d.Destinations = tt.delivery
			}
			if tt.timeout > 0 {
				d.Timeout = tt.timeout
			}
			e.deliver(t, d)
			got := e.onlyDelivery(t, w.ID)
			if got.LastError != tt.want {
				t.Errorf("last_error %q, want %q\nlog:\n%s", got.LastError, tt.want, logs.String())
			}
			if leakyText.MatchString(got.LastError) {
				t.Errorf("last_error %q says too much", got.LastError)
			}
			var sawDebug bool
			for line := range strings.Lines(logs.String()) {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				if rec["level"] == "DEBUG" {
					sawDebug = sawDebug || strings.Contains(line, tt.debug)
					continue
				}
				if strings.Contains(line, "127.0.0.1") || strings.Contains(line, "169.254") || (tt.debug != "" && strings.Contains(line, tt.debug)) {
					t.Errorf("a %s log line holds the detail: %s", rec["level"], line)
				}
			}
			if tt.debug != "" && !sawDebug {
				t.Errorf("the debug log does not say %q:\n%s", tt.debug, logs.String())
			}
		})
	}
	redirected.Lock()
	defer redirected.Unlock()
	if redirectCalls != 0 {
		t.Errorf("the redirect was followed %d times", redirectCalls)
	}
}

// TestWebhookURLChecks: the policy at creation and update, with a resolver
// that knows a few names.
func TestWebhookURLChecks(t *testing.T) {
	e := newEnv(t)
	names := map[string][]string{
		"hooks.example.com":        {"93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"},
		"internal.corp":            {"10.20.30.40"},
		"mixed.example.com":        {"93.184.215.14", "192.168.1.5"},
		"opened.corp":              {"10.1.2.3"},
		"nat64.example.com":        {"64:ff9b::a9fe:a9fe"},
		"ula-meta.corp":            {"fd00:ec2::254"},
		"ula-ordinary.corp":        {"fd12:3456::1"},
		"metadata.google.internal": {"93.184.215.14"}, // what DNS says does not matter
	}
	var lookups []string
	e.svc.Destinations = &manage.Destinations{
		Policy: latchkey.DestinationPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24"), netip.MustParsePrefix("fd00::/8")}},
		Resolver: resolverFunc(func(_ context.Context, host string) ([]netip.Addr, error) {
			lookups = append(lookups, host)
			var out []netip.Addr
			for _, a := range names[host] {
				out = append(out, netip.MustParseAddr(a))
			}
			if out == nil {
				return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
			}
			return out, nil
		}),
	}
	tests := []struct {
		url  string
		code string // "" when accepted
		rule string // in the message
	}{
		{"https://hooks.example.com/latchkey", "", ""},
		{"https://not-yet.example.com/latchkey", "", ""}, // does not resolve: the delivery decides
		{"https://internal.corp/", latchkey.EDESTINATION, "private address (10.0.0.0/8, RFC 1918)"},
		{"https://mixed.example.com/", latchkey.EDESTINATION, "private address (192.168.0.0/16, RFC 1918)"},
		{"https://opened.corp/", "", ""},
		{"http://10.1.2.99:8080/", "", ""},
		{"http://10.1.3.1/", latchkey.EDESTINATION, "private address (10.0.0.0/8, RFC 1918)"},
		{"http://127.0.0.1:9000/", latchkey.EDESTINATION, "loopback address (127.0.0.0/8)"},
		{"http://localhost:9000/", latchkey.EDESTINATION, "loopback address"},
		{"http://api.localhost/", latchkey.EDESTINATION, "loopback address"},
		{"http://[::ffff:127.0.0.1]/", latchkey.EDESTINATION, "loopback address (127.0.0.0/8)"},
		{"http://[64:ff9b::7f00:1]/", latchkey.EDESTINATION, "NAT64 address (64:ff9b::/96) of a loopback address (127.0.0.0/8)"},
		{"http://[2002:7f00:1::]/", latchkey.EDESTINATION, "6to4 address (2002::/16) of a loopback address (127.0.0.0/8)"},
		{"https://nat64.example.com/", latchkey.EDESTINATION, "cloud metadata address (169.254.169.254/32)"},
		{"http://169.254.169.254/latest/meta-data/", latchkey.EDESTINATION, "cloud metadata address (169.254.169.254/32)"},
		{"http://metadata.google.internal/", latchkey.EDESTINATION, "cloud metadata address (169.254.169.254/32)"},
		{"http://[fd00:ec2::254]/", latchkey.EDESTINATION, "cloud metadata address (fd00:ec2::254/128)"},
		{"https://ula-meta.corp/", latchkey.EDESTINATION, "cloud metadata address (fd00:ec2::254/128)"},
		{"https://ula-ordinary.corp/", "", ""},
		{"http://0.0.0.0/", latchkey.EDESTINATION, "unspecified address (0.0.0.0/32)"},
		{"http://[::]/", latchkey.EDESTINATION, "unspecified address (::/128)"},
		{"http://100.64.0.1/", latchkey.EDESTINATION, "shared (carrier-grade NAT) address"},
		{"http://[fe80::1]/", latchkey.EDESTINATION, "link-local address (fe80::/10)"},
		{"http://224.0.0.251/", latchkey.EDESTINATION, "multicast address (224.0.0.0/4)"},
		{"http://127.1/", latchkey.EINVALID, "standard form"},
		{"http://2130706433/", latchkey.EINVALID, "standard form"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := e.svc.CreateWebhook(t.Context(), e.admin, latchkey.DefaultAccount, latchkey.NewWebhook{URL: tt.url})
			wantCode(t, err, tt.code)
			msg := latchkey.ErrorMessage(err)
			if tt.code != "" && !strings.Contains(msg, tt.rule) {
				t.Errorf("message %q does not name %q", msg, tt.rule)
			}
			if tt.code == latchkey.EDESTINATION && !strings.Contains(msg, "--webhook-allow-cidr") {
				t.Errorf("message %q does not say how to open the range", msg)
			}
			// A name's addresses are never shown (the rule of a metadata
			// endpoint is its address, which everybody knows).
			for _, a := range names[strings.Split(strings.TrimPrefix(strings.TrimPrefix(tt.url, "https://"), "http://"), "/")[0]] {
				if rule, _ := latchkey.ClassifyDestination(netip.MustParseAddr(a)); !rule.Metadata && strings.Contains(msg, a) {
					t.Errorf("message %q shows the address %s", msg, a)
				}
			}
		})
	}

	w, err := e.svc.CreateWebhook(t.Context(), e.admin, latchkey.DefaultAccount, latchkey.NewWebhook{URL: "https://hooks.example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	bad := "https://internal.corp/hook"
	_, err = e.svc.UpdateWebhook(t.Context(), e.admin, w.ID, latchkey.WebhookUpdate{URL: &bad})
	wantCode(t, err, latchkey.EDESTINATION)
	// Who may not change the webhook learns nothing of the name: the
	// answer comes before any lookup.
	lookups = nil
	_, err = e.svc.UpdateWebhook(t.Context(), e.viewer, w.ID, latchkey.WebhookUpdate{URL: &bad})
	wantCode(t, err, latchkey.EFORBIDDEN)
	_, err = e.svc.UpdateWebhook(t.Context(), e.otherAdmin, w.ID, latchkey.WebhookUpdate{URL: &bad})
	wantCode(t, err, latchkey.ENOTFOUND)
	_, err = e.svc.CreateWebhook(t.Context(), e.viewer, latchkey.DefaultAccount, latchkey.NewWebhook{URL: bad})
	wantCode(t, err, latchkey.EFORBIDDEN)
	if len(lookups) != 0 {
		t.Errorf("names looked up for callers who may not write: %v", lookups)
	}
	good := "https://opened.corp/hook"
	if got, err := e.svc.UpdateWebhook(t.Context(), e.admin, w.ID, latchkey.WebhookUpdate{URL: &good}); err != nil || got.URL != good {
		t.Fatalf("UpdateWebhook to an opened range = %+v, %v", got, err)
	}
}

// syncBuffer is a strings.Builder safe for the dispatcher's concurrent
// log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
