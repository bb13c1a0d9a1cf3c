package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/gatewaytest"
)

// serverKeys makes signing keys through a server process's API.
type serverKeys struct{ c *client }

func (k serverKeys) SigningKey(t testing.TB, app, alg string) gatewaytest.SigningKey {
	t.Helper()
	k.c.do("POST", "/v1/applications", map[string]any{"name": app}, 201)
	priv := gatewaytest.NewKeyPair(t, alg)
	out := k.c.do("POST", "/v1/applications/"+app+"/access-keys", map[string]any{"public_key": gatewaytest.PublicKeyPEM(t, priv.Public())}, 201)
	return gatewaytest.SigningKey{ID: out["access_key_id"].(string), Application: app, Algorithm: alg, Key: priv}
}

func (k serverKeys) SetStatus(t testing.TB, id string, s latchkey.Status) {
	t.Helper()
	k.c.do("PATCH", "/v1/access-keys/"+id, map[string]any{"status": string(s)}, 200)
}

// TestGatewaysSigned sends signed calls through the real nginx
// (auth_request) and Caddy (forward_auth), configured by the files
// docs/integrations.md shows, with a latchkey serve process deciding: each
// refused with its own code, and only valid ones reach the API. Neither
// gateway sends latchkey the body, so a body changed under its signed
// digest passes them (the API must check it, or use the proxy).
func TestGatewaysSigned(t *testing.T) {
	for _, gw := range []struct {
		name  string
		start func(t *testing.T, latchkey, upstream string) string
	}{{"nginx", startNginx}, {"caddy", startCaddy}} {
		t.Run(gw.name, func(t *testing.T) {
			srv, c := adminClient(t, "--trusted-proxies", "127.0.0.1")
			api, calls := recordingAPI(t)
			listen := gw.start(t, strings.TrimPrefix(srv.endpoint, "http://"), strings.TrimPrefix(api.URL, "http://"))
			gatewaytest.RunSigned(t, serverKeys{c}, "http://"+listen, true, func(t *testing.T, r *http.Request, body []byte) latchkey.Code {
				t.Helper()
				return sendThrough(t, r, body, calls, gw.name)
			})
		})
	}
}

// sendThrough sends r through a gateway and returns the decision: VALID
// when the API answered (and it got the signing key's identity), else the
// refusal's code, which must not have reached the API.
func sendThrough(t *testing.T, r *http.Request, body []byte, calls func() int, gateway string) latchkey.Code {
	t.Helper()
	before := calls()
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	resp, err := clientFrom("127.0.0.2").Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if sv := resp.Header.Get("Server"); gateway != "" && !strings.HasPrefix(strings.ToLower(sv), gateway) {
		t.Errorf("Server %q: the answer did not come through %s", sv, gateway)
	}
	if resp.StatusCode == 200 {
		var got upstreamCall
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("API's answer %s: %v", b, err)
		}
		if !strings.HasPrefix(got.Header.Get("X-Latchkey-Access-Key-Id"), "LKIA") {
			t.Errorf("identity at the API: %v", got.Header)
		}
		return latchkey.CodeValid
	}
	code := gatewaytest.Refusal(t, resp, b)
	if calls() != before {
		t.Errorf("a call refused with %s reached the API", code)
	}
	return code
}
