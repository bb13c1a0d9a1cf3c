package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/keyformat"
)

// signedAlerts is a webhook receiver that checks each delivery's Standard
// Webhooks signature itself (HMAC-SHA256 over "id.timestamp.body" with the
// base64-decoded whsec_ key) and keeps the canary.triggered events.
type signedAlerts struct {
	t      *testing.T
	mu     sync.Mutex
	secret string
	got    []map[string]any
}

func (s *signedAlerts) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s.secret, "whsec_"))
	if err != nil || len(key) == 0 {
		s.t.Errorf("webhook secret unusable: %v", err)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !slices.Contains(strings.Fields(r.Header.Get("webhook-signature")), want) {
		s.t.Errorf("delivery %s: the signature does not verify", r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var ev struct {
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		s.t.Errorf("delivery body: %v", err)
	}
	if ev.Type == "canary.triggered" {
		s.got = append(s.got, ev.Data)
	}
	w.WriteHeader(http.StatusNoContent)
}

// waitFor returns the first alert for key id with this path.
func (s *signedAlerts) waitFor(t *testing.T, id, path string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		for _, a := range s.got {
			if a["access_key_id"] == id && a["path"] == path {
				s.mu.Unlock()
				return a
			}
		}
		s.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no signed canary.triggered alert for %s on %s", id, path)
	return nil
}

// TestGatewaysCanary puts real nginx (auth_request) and real Caddy
// (forward_auth), configured by the documented files, in front of an API
// with a latchkey serve process deciding, and presents a canary key through
// each: the client's answer is byte for byte that of a key that was never
// registered (apart from Date), in the Authorization and in the X-Api-Key
// header; a signed canary.triggered webhook arrives naming the key, the
// surface and the path; the API is never reached. A canary beside a valid
// key is refused CREDENTIAL_AMBIGUOUS by both gateways and alerts too.
func TestGatewaysCanary(t *testing.T) {
	rcv := &signedAlerts{t: t}
	hooks := httptest.NewServer(rcv)
	t.Cleanup(hooks.Close)
	srv, c := adminClient(t, "--trusted-proxies", "127.0.0.1", "--webhook-allow-cidr", "127.0.0.0/8")
	wh := c.do("POST", "/v1/webhooks", map[string]any{"url": hooks.URL + "/hook", "events": []string{"canary.triggered"}}, 201)
	rcv.mu.Lock()
	rcv.secret, _ = wh["secret"].(string)
	rcv.mu.Unlock()
	c.do("POST", "/v1/applications", map[string]any{"name": "billing"}, 201)
	valid := c.do("POST", "/v1/applications/billing/access-keys", map[string]any{}, 201)["secret_access_key"].(string)
	unknown, err := keyformat.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	api, calls := recordingAPI(t)
	lk := strings.TrimPrefix(srv.endpoint, "http://")

	for _, gw := range []struct {
		name  string
		start func(t *testing.T, latchkey, upstream string) string
	}{
		{"nginx", startNginx},
		{"caddy", startCaddy},
	} {
		t.Run(gw.name, func(t *testing.T) {
			base := "http://" + gw.start(t, lk, strings.TrimPrefix(api.URL, "http://"))
			// A canary of its own for each case: alerts for one key are
			// coalesced to one a minute after the first.
			newCanary := func() (id, secret string) {
				k := c.do("POST", "/v1/applications/billing/access-keys", map[string]any{"canary": true, "description": "canary: " + gw.name}, 201)
				return k["access_key_id"].(string), k["secret_access_key"].(string)
			}
			call := func(t *testing.T, path string, header ...[2]string) (*http.Response, string) {
				t.Helper()
				req, err := http.NewRequestWithContext(t.Context(), "GET", base+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("User-Agent", "canary-gw-test/1")
				for _, kv := range header {
					req.Header.Add(kv[0], kv[1])
				}
				resp, err := clientFrom("127.0.0.2").Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				resp.Header.Del("Date")
				dump, err := httputil.DumpResponse(resp, true)
				if err != nil {
					t.Fatal(err)
				}
				return resp, string(dump)
			}
			if resp, _ := call(t, "/ok", [2]string{"X-Api-Key", valid}); resp.StatusCode != http.StatusOK {
				t.Fatalf("a valid key through %s: %d; the comparisons below would prove nothing", gw.name, resp.StatusCode)
			}
			before := calls()
			for _, header := range []string{"Authorization", "X-Api-Key"} {
				t.Run(header, func(t *testing.T) {
					id, secret := newCanary()
					value := func(s string) string {
						if header == "Authorization" {
							return "Bearer " + s
						}
						return s
					}
					path := "/invoices/" + gw.name + "/" + strings.ToLower(header)
					resp, got := call(t, path, [2]string{header, value(secret)})
					_, want := call(t, path, [2]string{header, value(unknown)})
					if resp.StatusCode != http.StatusUnauthorized || got != want {
						t.Errorf("through %s the canary was answered\n%s\nand an unknown key\n%s", gw.name, got, want)
					}
					a := rcv.waitFor(t, id, path)
					if a["surface"] != "authorize" || a["ip"] != "127.0.0.2" || a["user_agent"] != "canary-gw-test/1" || a["application"] != "billing" {
						t.Errorf("alert %v", a)
					}
				})
			}
			t.Run("beside a valid key", func(t *testing.T) {
				id, secret := newCanary()
				path := "/invoices/" + gw.name + "/two"
				resp, dump := call(t, path, [2]string{"Authorization", "Bearer " + valid}, [2]string{"X-Api-Key", secret})
				body := dump[strings.Index(dump, "\r\n\r\n")+4:]
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("valid key and canary through %s: %s", gw.name, dump)
				}
				checkRefusal(t, resp, []byte(body), "CREDENTIAL_AMBIGUOUS")
				rcv.waitFor(t, id, path)
				// and the other way round, with two X-Api-Key lines
				id, secret = newCanary()
				path += "-lines"
				resp, dump = call(t, path, [2]string{"X-Api-Key", secret}, [2]string{"X-Api-Key", valid})
				if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(dump, "CREDENTIAL_AMBIGUOUS") {
					t.Errorf("canary and valid key in two X-Api-Key lines through %s: %s", gw.name, dump)
				}
				rcv.waitFor(t, id, path)
			})
			if calls() != before {
				t.Errorf("%d refused calls reached the API", calls()-before)
			}
		})
	}
}
