package main

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseWebhookAllow(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
		err  string
	}{
		{name: "none"},
		{name: "ranges and addresses", in: []string{"10.1.2.0/24", "127.0.0.1", "fd00:1::/64,169.254.169.254/32", " ::1 "},
			want: []string{"10.1.2.0/24", "127.0.0.1/32", "fd00:1::/64", "169.254.169.254/32", "::1/128"}},
		{name: "host bits set", in: []string{"10.1.2.3/24"}, err: `--webhook-allow-cidr "10.1.2.3/24": host bits are set; did you mean 10.1.2.0/24?`},
		{name: "not an address", in: []string{"intranet"}, err: `--webhook-allow-cidr "intranet": expected a CIDR range`},
		{name: "bad length", in: []string{"10.0.0.0/33"}, err: `--webhook-allow-cidr "10.0.0.0/33": expected a CIDR range`},
		{name: "zone", in: []string{"fe80::1%eth0"}, err: `--webhook-allow-cidr "fe80::1%eth0": expected`},
		{name: "mapped range", in: []string{"::ffff:10.0.0.0/104"}, err: `write IPv4 ranges as IPv4, such as 10.0.0.0/8`},
		{name: "mapped address", in: []string{"::ffff:10.0.0.1"}, err: `write IPv4 ranges as IPv4, such as 10.0.0.1/32`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWebhookAllow(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want []netip.Prefix
			for _, s := range tt.want {
				want = append(want, netip.MustParsePrefix(s))
			}
			if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestServeWebhookAllowCIDR: a receiver on 127.0.0.1 is refused by
// default, and reached once the operator opens it, by flag or by
// environment.
func TestServeWebhookAllowCIDR(t *testing.T) {
	var calls atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("webhook-signature") != "" {
			calls.Add(1)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)
	hook := map[string]any{"url": rcv.URL + "/hook"}

	srv, c := adminClient(t)
	got := c.do("POST", "/v1/webhooks", hook, http.StatusBadRequest)
	if errCode(got) != "DestinationNotAllowed" || !strings.Contains(got["error"].(map[string]any)["message"].(string), "loopback address (127.0.0.0/8)") {
		t.Errorf("without an opening: %v", got)
	}
	srv.stop()

	for _, tc := range []struct {
		name string
		args []string
		env  string
	}{
		{name: "flag", args: []string{"--webhook-allow-cidr", "127.0.0.1/32"}},
		{name: "environment", env: "192.0.2.0/24,127.0.0.0/8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("LATCHKEY_WEBHOOK_ALLOW_CIDR", tc.env)
			}
			srv, c := adminClient(t, tc.args...)
			before := calls.Load()
			w := c.do("POST", "/v1/webhooks", hook, http.StatusCreated)
			id := w["id"].(string)
			c.do("POST", "/v1/webhooks/"+id+"/ping", nil, http.StatusOK)
			// The ping's answer may come while the server's own dispatcher
			// is sending it: wait for the delivery log to say.
			deadline := time.Now().Add(10 * time.Second)
			for {
				ds := c.do("GET", "/v1/webhooks/"+id+"/deliveries", nil, http.StatusOK)["deliveries"].([]any)
				d := ds[0].(map[string]any)
				if d["status"] == "delivered" && d["response_code"] == float64(204) {
					break
				}
				if d["status"] != "pending" || d["last_error"] != "" || time.Now().After(deadline) {
					t.Fatalf("ping: %v", d)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if calls.Load() != before+1 {
				t.Errorf("receiver calls %d, want %d", calls.Load(), before+1)
			}
			if !strings.Contains(srv.stderr.String(), "webhook destinations opened") {
				t.Errorf("the opening is not logged:\n%s", srv.stderr)
			}
			// 10.0.0.0/8 stays refused.
			if got := c.do("POST", "/v1/webhooks", map[string]any{"url": "http://10.0.0.1/hook"}, http.StatusBadRequest); errCode(got) != "DestinationNotAllowed" {
				t.Errorf("10.0.0.1: %v", got)
			}
			srv.stop()
		})
	}
}

// FuzzParseWebhookAllow: whatever the operator writes, an accepted value
// is a canonical range that opens nothing beyond what was written.
func FuzzParseWebhookAllow(f *testing.F) {
	for _, s := range []string{"10.1.2.0/24", "127.0.0.1", "fd00:1::/64,::1", "10.1.2.3/24", "::ffff:10.0.0.0/104", "fe80::1%eth0", " , "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseWebhookAllow([]string{s})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--webhook-allow-cidr ") {
				t.Fatalf("error %q does not name the flag", err)
			}
			return
		}
		var written []string
		for _, w := range strings.Split(s, ",") {
			if w = strings.TrimSpace(w); w != "" {
				written = append(written, w)
			}
		}
		if len(got) != len(written) {
			t.Fatalf("%q gave %d ranges for %d values", s, len(got), len(written))
		}
		for i, p := range got {
			if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				t.Fatalf("%q gave %s", s, p)
			}
			// Exactly the range written, or the one address.
			want, err := netip.ParsePrefix(written[i])
			if err != nil {
				a := netip.MustParseAddr(written[i])
				want = netip.PrefixFrom(a, a.BitLen())
			}
			if p != want {
				t.Fatalf("%q gave %s for %q", s, p, written[i])
			}
		}
	})
}
