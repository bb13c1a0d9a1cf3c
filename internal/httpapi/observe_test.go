package httpapi_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

// decisions is a verify.Observer that counts codes.
type decisions struct {
	mu sync.Mutex
	n  map[latchkey.Code]int
}

func (d *decisions) Decided(c latchkey.Code) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n[c]++
}

func (d *decisions) Took(time.Duration) {}

func (d *decisions) take() map[latchkey.Code]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.n
	d.n = map[latchkey.Code]int{}
	return n
}

// TestRefusalsAreObserved: every refusal decided before the verifier is
// asked reaches the Observer once, as the verifier's own decisions do, on
// every surface of the API: forward auth, /v1/verify asked about a call,
// and the management API's own CredentialsInUrl refusal, which stands for
// the authentication of its caller that it replaces.
func TestRefusalsAreObserved(t *testing.T) {
	e := newEnv(t)
	obs := &decisions{n: map[latchkey.Code]int{}}
	e.verifier.Observer = obs
	fake, err := keyformat.NewSecret() // well formed, no key of this server
	if err != nil {
		t.Fatal(err)
	}
	op := bearer(e.operator)
	tests := []struct {
		name   string
		method string
		path   string
		as     auth
		body   string
		status int
		want   map[latchkey.Code]int
	}{
		{"forward auth: credential in the call's URL", "GET", "/v1/authorize?api_key=x", apiKey(e.operator), "", 403,
			map[latchkey.Code]int{latchkey.CodeCredentialsInURL: 1}},
		{"forward auth: secret in a header's URI", "GET", "/v1/authorize", header("X-Original-URI", "/orders/"+fake), "", 403,
			map[latchkey.Code]int{latchkey.CodeCredentialsInURL: 1}},
		{"forward auth: headers from an untrusted peer", "GET", "/v1/authorize", both(op, header("X-Original-Method", "GET"), header("X-Original-URI", "/a")), "", 400,
			map[latchkey.Code]int{latchkey.CodeUntrustedGateway: 1}},
		{"forward auth: method override", "GET", "/v1/authorize?_method=DELETE", op, "", 400,
			map[latchkey.Code]int{latchkey.CodeAmbiguousPath: 1}},
		{"/v1/verify: credential in the call's URL", "POST", "/v1/verify", op,
			`{"key":"` + fake + `","method":"GET","path":"/orders?token=x"}`, 200,
			map[latchkey.Code]int{latchkey.CodeValid: 1, latchkey.CodeCredentialsInURL: 1}},
		{"/v1/verify: ambiguous path", "POST", "/v1/verify", op,
			`{"key":"` + fake + `","method":"GET","path":"/a%2fb"}`, 200,
			map[latchkey.Code]int{latchkey.CodeValid: 1, latchkey.CodeAmbiguousPath: 1}},
		{"management API: credential in its URL", "GET", "/v1/access-keys?api_key=x", op, "", 400,
			map[latchkey.Code]int{latchkey.CodeCredentialsInURL: 1}},
		{"management API: secret in its path", "GET", "/v1/access-keys/" + fake, noAuth, "", 400,
			map[latchkey.Code]int{latchkey.CodeCredentialsInURL: 1}},
		{"management API: a call counts its caller's key", "GET", "/v1/access-keys", op, "", 200,
			map[latchkey.Code]int{latchkey.CodeValid: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs.take()
			r := e.do(t, tt.method, tt.path, tt.as, tt.body)
			if tt.status != 0 && r.status != tt.status {
				t.Errorf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if d := cmp.Diff(tt.want, obs.take()); d != "" {
				t.Errorf("decisions observed (-want +got):\n%s", d)
			}
		})
	}

	// The gateway surfaces' shared entry point, as the reverse proxy and
	// ext_authz call it.
	for _, tt := range []struct {
		uri  string
		want latchkey.Code
	}{
		{"/orders?key=x", latchkey.CodeCredentialsInURL},
		{"/a%2fb", latchkey.CodeAmbiguousPath},
		{"/orders?_method=DELETE", latchkey.CodeAmbiguousPath},
		{"/orders", latchkey.CodeMissing},
	} {
		obs.take()
		req, _ := http.NewRequest("GET", "http://gw"+tt.uri, nil)
		req.RemoteAddr = "192.0.2.1:1234"
		if res, _ := e.api.Decide(req, "GET", tt.uri); res.Code != tt.want {
			t.Errorf("Decide(%s) = %s, want %s", tt.uri, res.Code, tt.want)
		}
		if d := cmp.Diff(map[latchkey.Code]int{tt.want: 1}, obs.take()); d != "" {
			t.Errorf("Decide(%s): decisions observed (-want +got):\n%s", tt.uri, d)
		}
	}
}
