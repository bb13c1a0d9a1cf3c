package main

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/gatewaytest"
)

// TestReplicasSignedReplay signs one call and sends it through the proxy
// of one replica, then replays it to the proxy of another (same
// authority, as behind a load balancer). With the nonces shared through
// Redis (--rate-limit-store) the replay is NONCE_REPLAYED; without, each
// replica accepts the nonce once, which is what docs/security.md says.
// Both replicas share a PostgreSQL database.
func TestReplicasSignedReplay(t *testing.T) {
	redisURL := testRedisURL(t)
	api, calls := recordingAPI(t)
	for _, tc := range []struct {
		name string
		args []string
		want latchkey.Code
	}{
		{"shared through Redis", []string{"--rate-limit-store", redisURL}, latchkey.CodeNonceReplayed},
		{"per replica", nil, latchkey.CodeValid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, newPGDatabase(t), 2, append(tc.args, "--proxy-upstream", api.URL, "--proxy-addr", "127.0.0.1:0")...)
			var proxies []string
			for _, r := range c.replicas {
				proxies = append(proxies, r.waitFor(proxyRE))
			}
			k := serverKeys{&client{t: t, endpoint: c.replicas[0].endpoint, auth: c.admin}}.SigningKey(t, "replayed", latchkey.AlgEd25519)
			signed := func(base string) *http.Request {
				r, err := http.NewRequestWithContext(t.Context(), "GET", base+"/orders/7", nil)
				if err != nil {
					t.Fatal(err)
				}
				gatewaytest.Sign(t, r, nil, k, gatewaytest.Signing{})
				return r
			}
			// the second replica learns of the key from the database
			deadline := time.Now().Add(10 * time.Second)
			for sendThrough(t, signed(proxies[1]), nil, calls, "") != latchkey.CodeValid {
				if time.Now().After(deadline) {
					t.Fatal("the second replica never accepted the key")
				}
				time.Sleep(50 * time.Millisecond)
			}
			r := signed(proxies[0])
			if got := sendThrough(t, r, nil, calls, ""); got != latchkey.CodeValid {
				t.Fatalf("first replica: %s", got)
			}
			again := r.Clone(t.Context())
			u, err := url.Parse(proxies[1])
			if err != nil {
				t.Fatal(err)
			}
			again.URL.Host, again.Host = u.Host, r.URL.Host // sent to the second, for the same authority
			if got := sendThrough(t, again, nil, calls, ""); got != tc.want {
				t.Errorf("replayed to the second replica: %s, want %s", got, tc.want)
			}
			if got := sendThrough(t, r.Clone(t.Context()), nil, calls, ""); got != latchkey.CodeNonceReplayed {
				t.Errorf("replayed to the first replica: %s, want NONCE_REPLAYED", got)
			}
		})
	}
}
