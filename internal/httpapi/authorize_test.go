package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
)

func TestScopeRules(t *testing.T) {
	var rules []ScopeRule
	for _, s := range []string{"GET /shipments/* shipments:read", "* /shipments/* shipments:write", "delete /admin admin"} {
		r, err := ParseScopeRule(s)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, r)
	}
	tests := []struct{ method, path, want string }{
		{"GET", "/shipments/1", "shipments:read"},
		{"POST", "/shipments/1", "shipments:write"},
		{"DELETE", "/admin", "admin"},
		{"DELETE", "/admin/x", ""},
		{"GET", "/other", ""},
	}
	for _, tt := range tests {
		if got := ScopeFor(rules, tt.method, tt.path); got != tt.want {
			t.Errorf("ScopeFor(%s %s) = %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
	for _, bad := range []string{"GET /x", "GET x scope", "GET /a*b scope", "GET /x bad*scope*"} {
		if _, err := ParseScopeRule(bad); latchkey.ErrorCode(err) != latchkey.EINVALID {
			t.Errorf("ParseScopeRule(%q) = %v; want InvalidArgument", bad, err)
		}
	}
}

// webApp returns a service over a new SQLite store with application "web"
// in the default account, its index, and an operator to act as.
func webApp(t testing.TB) (*manage.Service, *verify.Index, latchkey.Actor) {
	t.Helper()
	store, err := sqlite.Open(t.Context(), t.TempDir()+"/lk.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ix := verify.NewIndex()
	svc := manage.New(store, ix, nil)
	if _, err := svc.Bootstrap(t.Context()); err != nil {
		t.Fatal(err)
	}
	op := latchkey.Actor{Principal: "admin", Account: "default", Role: latchkey.RoleOperator}
	if _, err := svc.CreateApplication(t.Context(), op, "default", "web", "", nil); err != nil {
		t.Fatal(err)
	}
	return svc, ix, op
}

func TestAuthorizeStatuses(t *testing.T) {
	ctx := t.Context()
	svc, ix, op := webApp(t)
	k, err := svc.CreateAccessKey(ctx, op, "default", "web", latchkey.NewAccessKey{Restrictions: &latchkey.Restrictions{
		AllowedIPs: []string{"203.0.113.0/24"}, Scopes: []string{"shipments:read"},
		RateLimit: &latchkey.RateLimit{PerMinute: 2},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// the same without the rate limit, for the cases after "rate limited"
	k2, err := svc.CreateAccessKey(ctx, op, "default", "web", latchkey.NewAccessKey{Restrictions: &latchkey.Restrictions{
		AllowedIPs: []string{"203.0.113.0/24"}, Scopes: []string{"shipments:read"}}})
	if err != nil {
		t.Fatal(err)
	}
	var rules []ScopeRule
	for _, s := range []string{"GET /shipments/* shipments:read", "POST /shipments/* shipments:write", "* /admin/* admin:all"} {
		r, err := ParseScopeRule(s)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, r)
	}
	api := &Server{Service: svc, Verifier: verify.New(ix, nil), ScopeRules: rules,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	h := api.Handler()

	call := func(hdr map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/v1/authorize", nil)
		req.RemoteAddr = "127.0.0.1:5000"
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	good := map[string]string{"X-Api-Key": k.Secret, "X-Forwarded-For": "203.0.113.8", "X-Original-Method": "GET", "X-Original-URI": "/shipments/1"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	unknown, err := keyformat.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	with2 := func(kv ...string) map[string]string { return with(append([]string{"X-Api-Key", k2.Secret}, kv...)...) }
	tests := []struct {
		name   string
		hdr    map[string]string
		status int
		code   string
	}{
		{"valid", good, 200, "VALID"},
		{"no credential", map[string]string{"X-Original-Method": "GET", "X-Original-URI": "/x"}, 401, "MISSING"},
		{"unknown key", map[string]string{"X-Api-Key": unknown, "X-Original-Method": "GET", "X-Original-URI": "/x"}, 401, "NOT_FOUND"},
		{"wrong ip via trusted proxy", with("X-Forwarded-For", "198.51.100.1"), 403, "IP_NOT_ALLOWED"},
		{"scope by rule", with("X-Original-Method", "POST"), 403, "SCOPE_DENIED"},
		{"traefik headers", map[string]string{"Authorization": "Bearer " + k.Secret, "X-Forwarded-For": "203.0.113.8", "X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/shipments/2"}, 200, "VALID"},
		{"rate limited", good, 429, "RATE_LIMITED"},
		{"rate limited, asked by nginx", with(HeaderGateway, "nginx"), 403, "RATE_LIMITED"},
		{"secret in original uri", with("X-Original-URI", "/shipments?key="+k.Secret), 403, "CREDENTIALS_IN_URL"},
		{"method no rule for the path names", with2("X-Original-Method", "DELETE"), 403, "SCOPE_DENIED"},
		{"HEAD judged as GET", with2("X-Original-Method", "HEAD"), 200, "VALID"},
		{"encoded letter judged decoded", with2("X-Original-URI", "/%61dmin/users"), 403, "SCOPE_DENIED"},
		{"upper case judged as lower", with2("X-Original-URI", "/ADMIN/users"), 403, "SCOPE_DENIED"},
		{"dot segments that change the scope", with2("X-Original-URI", "/admin/../shipments/1"), 400, "AMBIGUOUS_PATH"},
		{"dot segments that do not", with2("X-Original-URI", "/shipments/./1/../2"), 200, "VALID"},
		{"encoded slash", with2("X-Original-URI", "/shipments/1%2F..%2F..%2Fadmin"), 400, "AMBIGUOUS_PATH"},
		{"ambiguous path, asked by nginx", with2(HeaderGateway, "nginx", "X-Original-URI", "/a;b"), 403, "AMBIGUOUS_PATH"},
		{"method that is not a token", with2("X-Original-Method", "GET /admin"), 400, "AMBIGUOUS_PATH"},
		{"client-sent X-Forwarded-Uri beside nginx's X-Original-URI", with2("X-Forwarded-Uri", "/shipments/1", "X-Original-URI", "/admin/users"), 400, "UNTRUSTED_GATEWAY"},
		{"client-sent X-Original-URI beside Caddy's X-Forwarded-Uri", map[string]string{"X-Api-Key": k2.Secret, "X-Forwarded-For": "203.0.113.8",
			"X-Original-Method": "GET", "X-Original-URI": "/shipments/1", "X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/admin/users"}, 400, "UNTRUSTED_GATEWAY"},
		{"both pairs, agreeing", with2("X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/shipments/1"), 200, "VALID"},
		{"method without a URI", map[string]string{"X-Api-Key": k2.Secret, "X-Forwarded-For": "203.0.113.8", "X-Original-Method": "GET"}, 400, "UNTRUSTED_GATEWAY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := call(tt.hdr)
			if rec.Code != tt.status || rec.Header().Get(HeaderCode) != tt.code {
				t.Fatalf("status %d code %q, want %d %q; body %s", rec.Code, rec.Header().Get(HeaderCode), tt.status, tt.code, rec.Body)
			}
			switch tt.status {
			case 200:
				if id := rec.Header().Get(HeaderKeyID); (id != k.ID && id != k2.ID) || rec.Header().Get(HeaderApplication) != "web" ||
					rec.Header().Get(HeaderAccount) != "default" || rec.Header().Get(HeaderScopes) != "shipments:read" {
					t.Errorf("identity headers: %v", rec.Header())
				}
			case 401:
				// RFC 6750 section 3.1: no error code without a credential
				want := `Bearer realm="latchkey", error="invalid_token"`
				if tt.code == "MISSING" {
					want = `Bearer realm="latchkey"`
				}
				if got := rec.Header().Get("WWW-Authenticate"); got != want {
					t.Errorf("WWW-Authenticate %q, want %q", got, want)
				}
			case 429:
				if rec.Header().Get("Retry-After") == "" || rec.Header().Get("RateLimit-Limit") != "2" {
					t.Errorf("429 headers: %v", rec.Header())
				}
			}
			// nginx hears 403 for 429, with what its configuration needs
			// to answer 429 itself
			nginx := tt.hdr[HeaderGateway] == "nginx"
			if got, want := rec.Header().Get(HeaderMessage), Message(latchkey.Code(tt.code)); nginx && got != want {
				t.Errorf("%s = %q, want %q", HeaderMessage, got, want)
			}
			if nginx && tt.code == "RATE_LIMITED" && rec.Header().Get("Retry-After") == "" {
				t.Errorf("nginx dialect: no Retry-After: %v", rec.Header())
			}
			if !nginx && rec.Header().Get(HeaderMessage) != "" {
				t.Errorf("%s sent without %s: nginx", HeaderMessage, HeaderGateway)
			}
			if tt.status != 200 {
				var body ErrorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Code != tt.code {
					t.Errorf("body %s", rec.Body)
				}
			}
			if rec.Header().Get(HeaderKeyID) != "" && tt.status != 200 {
				t.Errorf("identity header on a refused call")
			}
		})
	}
	got, err := svc.GetAccessKey(ctx, op, k.ID)
	if err != nil || got.Exposed == nil {
		t.Fatalf("key not flagged exposed after a secret in the original URI: %v %+v", err, got)
	}
	// Caddy's forward_auth keeps the call's query on its request to
	// /v1/authorize: the answer is still the decision, not the API's 400
	req := httptest.NewRequest("GET", "/v1/authorize?token=x", nil)
	req.Header.Set("X-Forwarded-Uri", "/shipments?token=x")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 403 || rec.Header().Get(HeaderCode) != "CREDENTIALS_IN_URL" {
		t.Errorf("query on /v1/authorize itself: %d %q, want 403 CREDENTIALS_IN_URL", rec.Code, rec.Header().Get(HeaderCode))
	}
	// the exposure names the gateway's call, not /v1/authorize
	if want := "URL of a GET request to /shipments"; got.Exposed.Where != want {
		t.Errorf("exposed where = %q, want %q", got.Exposed.Where, want)
	}
}

// TestDecisionMessagesFitHeaders: the nginx configuration puts
// X-Latchkey-Message and X-Latchkey-Code into a JSON string as they are, so
// neither may hold a character JSON would escape.
func TestDecisionMessagesFitHeaders(t *testing.T) {
	for _, c := range DecisionCodes() {
		for _, s := range []string{c, Message(latchkey.Code(c))} {
			b, _ := json.Marshal(s)
			if string(b) != `"`+s+`"` {
				t.Errorf("%s: %q needs escaping in JSON", c, s)
			}
		}
	}
}

func TestDeleteLatchkeyHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("X-Latchkey-Access-Key-Id", "LKIAFORGED")
	h["x-latchkey-account"] = []string{"forged"} // not canonical, as a hand-built header map may be
	h.Set("X-Latchkey", "kept: no prefix dash")
	h.Set("Content-Type", "text/plain")
	DeleteLatchkeyHeaders(h)
	want := http.Header{"X-Latchkey": {"kept: no prefix dash"}, "Content-Type": {"text/plain"}}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("after DeleteLatchkeyHeaders (-want +got):\n%s", diff)
	}
}

func TestOriginalRequest(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}
	tests := []struct {
		name   string
		peer   string
		hdr    [][2]string
		method string
		uri    string
		ok     bool
	}{
		{name: "no gateway headers: the request itself", peer: "192.0.2.1:1", method: "GET", uri: "/v1/authorize", ok: true},
		{name: "nginx pair from the gateway", peer: "10.0.0.1:1", hdr: [][2]string{{"X-Original-Method", "POST"}, {"X-Original-URI", "/a"}}, method: "POST", uri: "/a", ok: true},
		{name: "Caddy pair from the gateway", peer: "10.0.0.1:1", hdr: [][2]string{{"X-Forwarded-Method", "PUT"}, {"X-Forwarded-Uri", "/b"}}, method: "PUT", uri: "/b", ok: true},
		{name: "both pairs agreeing", peer: "10.0.0.1:1", hdr: [][2]string{{"X-Original-Method", "GET"}, {"X-Original-URI", "/a"}, {"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "/a"}}, method: "GET", uri: "/a", ok: true},
		{name: "IPv4-mapped gateway address", peer: "[::ffff:10.0.0.1]:1", hdr: [][2]string{{"X-Original-Method", "GET"}, {"X-Original-URI", "/a"}}, method: "GET", uri: "/a", ok: true},
		{name: "from a peer outside trusted", peer: "192.0.2.1:1", hdr: [][2]string{{"X-Original-Method", "GET"}, {"X-Original-URI", "/a"}}},
		{name: "only a method header, from a client", peer: "192.0.2.1:1", hdr: [][2]string{{"X-Forwarded-Method", "GET"}}},
		{name: "URIs disagree", peer: "10.0.0.1:1", hdr: [][2]string{{"X-Original-Method", "GET"}, {"X-Original-URI", "/admin"}, {"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "/a"}}},
		{name: "methods disagree", peer: "10.0.0.1:1", hdr: [][2]string{{"X-Original-Method", "DELETE"}, {"X-Original-URI", "/a"}, {"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "/a"}}},
		{name: "repeated header", peer: "10.0.0.1:1", hdr: [][2]string{{"X-Original-Method", "GET"}, {"X-Original-URI", "/a"}, {"X-Original-URI", "/admin"}}},
		{name: "method without URI", peer: "10.0.0.1:1", hdr: [][2]string{{"X-Original-Method", "GET"}}},
		{name: "URI without method", peer: "10.0.0.1:1", hdr: [][2]string{{"X-Forwarded-Uri", "/a"}}},
		{name: "empty header counts as sent", peer: "192.0.2.1:1", hdr: [][2]string{{"X-Original-URI", ""}}},
		{name: "peer not an address", peer: "@", hdr: [][2]string{{"X-Original-Method", "GET"}, {"X-Original-URI", "/a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/authorize", nil)
			r.RemoteAddr = tt.peer
			for _, h := range tt.hdr {
				r.Header.Add(h[0], h[1])
			}
			method, uri, ok := OriginalRequest(r, trusted)
			if ok != tt.ok || method != tt.method || uri != tt.uri {
				t.Errorf("OriginalRequest = %q, %q, %v; want %q, %q, %v", method, uri, ok, tt.method, tt.uri, tt.ok)
			}
		})
	}
}

// TestAuthorizeFromAnUntrustedPeer: a client that calls /v1/authorize
// itself, naming the call it wants judged, gets UNTRUSTED_GATEWAY, and a
// key in a URL it names is still flagged exposed.
func TestAuthorizeFromAnUntrustedPeer(t *testing.T) {
	ctx := t.Context()
	svc, ix, op := webApp(t)
	k, err := svc.CreateAccessKey(ctx, op, "default", "web", latchkey.NewAccessKey{})
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	api := &Server{Service: svc, Verifier: verify.New(ix, nil), Log: slog.New(slog.NewTextHandler(&logs, nil)),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}}
	h := api.Handler()
	for i, hdr := range []map[string]string{
		{"X-Api-Key": k.Secret, "X-Original-Method": "GET", "X-Original-URI": "/shipments/1"},
		{"X-Api-Key": k.Secret, "X-Original-Method": "GET", "X-Original-URI": "/shipments/1?token=" + k.Secret},
	} {
		req := httptest.NewRequest("GET", "/v1/authorize", nil)
		req.RemoteAddr = "192.0.2.9:4000"
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		want, status := "UNTRUSTED_GATEWAY", 400
		if i == 1 {
			want, status = "CREDENTIALS_IN_URL", 403
		}
		if rec.Code != status || rec.Header().Get(HeaderCode) != want {
			t.Errorf("call %d: %d %s, want %d %s", i, rec.Code, rec.Header().Get(HeaderCode), status, want)
		}
	}
	if got, err := svc.GetAccessKey(ctx, op, k.ID); err != nil || got.Exposed == nil {
		t.Errorf("a key in a URL named by an untrusted peer: exposed %+v, %v", got, err)
	}
	if n := strings.Count(logs.String(), "outside --trusted-proxies"); n != 1 {
		t.Errorf("the operator was told %d times that the gateway is not trusted; want once a minute:\n%s", n, logs.String())
	}
}

// TestHeaderNamesCanonical: the hot path reads these headers straight
// from the header map (h[name], not h.Get(name)), which finds what Get
// finds only when name is already canonical.
func TestHeaderNamesCanonical(t *testing.T) {
	names := []string{"User-Agent", "Referer", "X-Forwarded-For", headerAndroidPackage, headerAndroidCert, headerIOSBundleID,
		HeaderClientCert, HeaderForwardedClientCert, headerOriginalMethod, headerOriginalURI, headerForwardedMethod, headerForwardedURI,
		HeaderCode}
	names = append(names, identityHeaders[:]...)
	for _, f := range credentialHeaders {
		if !f.twin {
			names = append(names, f.name)
		}
	}
	for _, name := range names {
		if c := textproto.CanonicalMIMEHeaderKey(name); c != name {
			t.Errorf("%q is read from the header map by name, but its canonical form is %q", name, c)
		}
	}
}

// TestWriteDecisionRefusals: WriteDecision's refusals, made once per code
// (refusals), answer exactly what writing each one out answers
// (writeRefusal: the status, WWW-Authenticate on 401, the JSON error
// through writeError), for every decision code, with the rate-limit
// headers of a throttled key, through nginx's writer, and for a code
// without a message (which is written out). Each header's value is a
// slice of its own: adding to one changes no other.
func TestWriteDecisionRefusals(t *testing.T) {
	type answer struct {
		Status int
		Header http.Header
		Body   string
	}
	record := func(nginx bool, write func(w http.ResponseWriter)) answer {
		rec := httptest.NewRecorder()
		var w http.ResponseWriter = rec
		if nginx {
			w = nginxWriter{rec}
		}
		write(w)
		return answer{rec.Code, rec.Header(), rec.Body.String()}
	}
	results := []verify.Result{{Code: "NOT_A_DECISION_CODE"}}
	for c := range codeMessages {
		if c != latchkey.CodeValid {
			results = append(results, verify.Result{Code: c})
		}
	}
	limited := verify.Result{Code: latchkey.CodeRateLimited}
	limited.Rate.Limit, limited.Rate.Remaining, limited.Rate.Window, limited.Rate.RetryAfter = 10, 0, time.Minute, 1500*time.Millisecond
	results = append(results, limited)
	for _, res := range results {
		for _, nginx := range []bool{false, true} {
			got := record(nginx, func(w http.ResponseWriter) { WriteDecision(w, res) })
			want := record(nginx, func(w http.ResponseWriter) {
				WriteDecisionHeaders(w.Header(), res)
				writeRefusal(w, StatusForCode(res.Code), res.Code)
			})
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s (nginx %v): WriteDecision differs from writing it out (-want +got):\n%s", res.Code, nginx, diff)
			}
			if got.Status < 400 || !strings.Contains(got.Body, `"code":"`+string(res.Code)+`"`) {
				t.Errorf("%s (nginx %v): answered %d %q", res.Code, nginx, got.Status, got.Body)
			}
			before := got.Header.Clone()
			for name := range got.Header {
				got.Header[name] = append(got.Header[name], "added")
			}
			for name, v := range got.Header {
				if diff := cmp.Diff(append(before[name], "added"), v); diff != "" {
					t.Errorf("%s: adding to every header changed %s (-want +got):\n%s", res.Code, name, diff)
				}
			}
		}
	}
	// Two allocations: X-Latchkey-Code's value and the other three.
	w := headerWriter{http.Header{}}
	res := verify.Result{Code: latchkey.CodeNotFound}
	if n := testing.AllocsPerRun(1000, func() { clear(w.h); WriteDecision(w, res) }); n > 2 {
		t.Errorf("a refusal allocates %v times, want at most 2", n)
	}
	if _, ok := refusals["NOT_A_DECISION_CODE"]; ok || len(refusals) != len(codeMessages) {
		t.Errorf("refusals holds %d codes, want the %d decision codes", len(refusals), len(codeMessages))
	}
}

// headerWriter keeps the headers and discards the rest.
type headerWriter struct{ h http.Header }

func (w headerWriter) Header() http.Header         { return w.h }
func (w headerWriter) WriteHeader(int)             {}
func (w headerWriter) Write(b []byte) (int, error) { return len(b), nil }
