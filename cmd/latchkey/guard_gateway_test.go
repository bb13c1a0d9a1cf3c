package main

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/keyformat"
)

// TestGuardThroughGateways floods the brute-force guard through every
// surface a client reaches it by, real nginx and Caddy from Debian's
// packages with the documented configurations and latchkey's reverse
// proxy, with unknown keys whose every call claims another
// client address: a fresh X-Forwarded-For, X-Real-IP and Forwarded value
// each time, and chains that name a trusted proxy as the last hop. The
// guard must count the client the gateway saw (the address each surface's
// own server connected from), not what the client wrote: after the budget
// the flooding client is THROTTLED, even with the valid key and yet
// another forged address, and the refused calls never reach the API; a
// second client behind the same gateway is still served, so the guard
// does not count the gateway itself either.
func TestGuardThroughGateways(t *testing.T) {
	const budget = 4
	api := &servedAPI{}
	upstream := httptest.NewServer(api)
	t.Cleanup(upstream.Close)
	// A refill too slow to give back a call during the test.
	srv, c := adminClient(t, "--trusted-proxies", "127.0.0.1", "--guard-failures", fmt.Sprint(budget),
		"--guard-refill-per-minute", "0.01", "--proxy-upstream", upstream.URL, "--proxy-addr", "127.0.0.1:0")
	proxyAddr := strings.TrimPrefix(srv.waitFor(proxyRE), "http://")
	c.do("POST", "/v1/applications", map[string]any{"name": "shipping"}, 201)
	secret := c.do("POST", "/v1/applications/shipping/access-keys", map[string]any{}, 201)["secret_access_key"].(string)

	lk := strings.TrimPrefix(srv.endpoint, "http://")
	up := strings.TrimPrefix(upstream.URL, "http://")
	surfaces := []struct {
		name, addr string
		// flooder and bystander are the loopback addresses the two
		// clients connect from; each surface has its own, so that one
		// surface's flood does not spend another's budget.
		flooder, bystander string
	}{
		{"nginx", startNginx(t, lk, up), "127.0.0.11", "127.0.0.12"},
		{"caddy", startCaddy(t, lk, up), "127.0.0.21", "127.0.0.22"},
		{"proxy", proxyAddr, "127.0.0.31", "127.0.0.32"},
	}
	n := 0
	// forgedAddress is the next client address a call claims: IPv4 and
	// IPv6 from documentation ranges, one /64 each, never the same twice.
	forgedAddress := func() string {
		n++
		if n%2 == 0 {
			return fmt.Sprintf("2001:db8:%x:%x::1", n/65536, n%65536)
		}
		return fmt.Sprintf("198.51.%d.%d", n/250, n%250+1)
	}
	forged := func() [][2]string {
		a, b := forgedAddress(), forgedAddress()
		return [][2]string{
			{"X-Forwarded-For", a}, {"X-Real-IP", a}, {"Forwarded", fmt.Sprintf(`for="[%s]"`, b)},
			// A chain whose last hop is the trusted proxy, as if the
			// gateway had forwarded it already.
			{"X-Forwarded-For", b + ", 127.0.0.1"}, {"True-Client-IP", b}, {"CF-Connecting-IP", a},
		}
	}
	// call sends key from the address from through the surface at addr, with a
	// fresh set of forged addresses, and returns the decision code and
	// how many calls reached the API.
	call := func(t *testing.T, addr, from, key string) (status int, code string, reached int) {
		t.Helper()
		before := api.count()
		hdr := append([][2]string{{"X-Api-Key", key}}, forged()...)
		resp, _ := rawCall(t, from, addr, "GET", "/shipments/1", hdr)
		return resp.StatusCode, resp.Header.Get("X-Latchkey-Code"), api.count() - before
	}
	for _, s := range surfaces {
		t.Run(s.name, func(t *testing.T) {
			for i := range budget {
				unknown, err := keyformat.NewSecret()
				if err != nil {
					t.Fatal(err)
				}
				if status, code, reached := call(t, s.addr, s.flooder, unknown); code != "NOT_FOUND" || reached != 0 {
					t.Fatalf("unknown key %d of the budget: status %d, code %q, %d calls served; want NOT_FOUND, none served", i+1, status, code, reached)
				}
			}
			unknown, err := keyformat.NewSecret()
			if err != nil {
				t.Fatal(err)
			}
			if status, code, reached := call(t, s.addr, s.flooder, unknown); status != 429 || code != "THROTTLED" || reached != 0 {
				t.Errorf("unknown key past the budget: status %d, code %q, %d calls served; want 429 THROTTLED, none served (the guard counted the forged addresses)", status, code, reached)
			}
			if status, code, reached := call(t, s.addr, s.flooder, secret); status != 429 || code != "THROTTLED" || reached != 0 {
				t.Errorf("valid key from the throttled client: status %d, code %q, %d calls served; want 429 THROTTLED, none served", status, code, reached)
			}
			if status, code, reached := call(t, s.addr, s.bystander, secret); status != 200 || reached != 1 {
				t.Errorf("valid key from another client behind the same gateway: status %d, code %q, %d calls served; want 200, 1 served (the guard counted the gateway)", status, code, reached)
			}
		})
	}
}
