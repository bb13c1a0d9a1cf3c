package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/keyformat"
)

// fuzzEnv is an API on a SQLite store with an application "billing" and one
// of its keys, for the fuzz targets that drive the handler in process. It
// returns the handler, the key's ID and the operator's secret. Each fuzz
// worker process makes its own.
func fuzzEnv(f *testing.F) (h http.Handler, keyID, operator string) {
	e := newEnv(f)
	sys := latchkey.System()
	if _, err := e.svc.CreateApplication(f.Context(), sys, latchkey.DefaultAccount, "billing", "", nil); err != nil {
		f.Fatal(err)
	}
	k, err := e.svc.CreateAccessKey(f.Context(), sys, latchkey.DefaultAccount, "billing", latchkey.NewAccessKey{})
	if err != nil {
		f.Fatal(err)
	}
	return e.api.Handler(), k.ID, e.operator.secret
}

// checkAnswer fails unless an answer is a success, or a 4xx in the one
// error shape with a code whose status is the one answered, and a message
// that shows no Go type. No input may give a 5xx.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if rec.Code < 400 {
		return
	}
	var eb struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == nil || eb.Error.Code == "" || eb.Error.Message == "" {
		t.Fatalf("status %d without the error shape: %s", rec.Code, rec.Body)
	}
	if got := httpapi.StatusFor(eb.Error.Code); got != rec.Code {
		t.Fatalf("code %s answered with %d, StatusFor says %d", eb.Error.Code, rec.Code, got)
	}
	if g := goTypeIn(eb.Error.Message); g != "" {
		t.Fatalf("message %q shows Go type %q", eb.Error.Message, g)
	}
}

// bodyRoutes are the endpoints that read a JSON body; {id} is the key.
// New ones go at the end, so that the seeds keep their routes.
var bodyRoutes = []string{
	"POST /v1/accounts",
	"POST /v1/applications",
	"PATCH /v1/applications/billing",
	"POST /v1/applications/billing/access-keys",
	"PATCH /v1/access-keys/{id}",
	"POST /v1/principals",
	"POST /v1/principals/admin/access-keys",
	"POST /v1/verify",
	"POST /v1/leaks",
	"POST /v1/leaks/check",
	"PUT /v1/policy",
	"POST /v1/webhooks",
}

// FuzzRequestBody sends arbitrary bodies, with arbitrary content types, to
// every endpoint that decodes JSON, as the operator. Whatever the bytes,
// the answer is a success or a 4xx with a code, never a 5xx or a panic.
func FuzzRequestBody(f *testing.F) {
	h, keyID, operator := fuzzEnv(f)
	f.Add(uint8(1), "application/json", []byte(`{"name":"orders","description":"x","restrictions":{"allowed_ips":["10.0.0.0/8"]}}`))
	f.Add(uint8(4), "application/json", []byte(`{"status":"Inactive","expires_at":"2030-01-01T00:00:00Z","restrictions":{"rate_limit":{"per_second":1}}}`))
	f.Add(uint8(7), "application/json; charset=utf-8", []byte(`{"key":"lksk_x","ip":"::1","scope":"a:b"}`))
	f.Add(uint8(7), "", []byte(`{"key":"lksk_x"}`))
	f.Add(uint8(8), "text/plain", []byte(`{"findings":[{"digest":"00","where":"x"}]}`))
	f.Add(uint8(10), "application/json", []byte(`{"max_key_age":"90d","warn_before":7}`))
	f.Add(uint8(11), "application/json", []byte(`{"url":"https://hooks.example.com/","events":["key.created",1]}`))
	f.Add(uint8(4), "application/json", []byte(`{"restrictions":{"android_apps":[{"package_name":1}]},"expires_at":"soon"}`))
	f.Fuzz(func(t *testing.T, route uint8, contentType string, body []byte) {
		method, path, _ := strings.Cut(bodyRoutes[int(route)%len(bodyRoutes)], " ")
		path = strings.Replace(path, "{id}", keyID, 1)
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		if contentType != "" {
			req.Header["Content-Type"] = []string{contentType}
		}
		req.Header.Set("Authorization", "Bearer "+operator)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, rec)
	})
}

// queryRoutes are the endpoints that read query parameters.
var queryRoutes = []string{
	"GET /v1/applications",
	"GET /v1/applications/billing",
	"GET /v1/applications/billing/access-keys",
	"GET /v1/access-keys",
	"GET /v1/access-keys/{id}",
	"GET /v1/access-keys/{id}/usage",
	"GET /v1/access-keys/{id}/last-used",
	"GET /v1/principals",
	"GET /v1/audit-events",
	"GET /v1/accounts",
}

// FuzzQueryParameters sends arbitrary query strings (page tokens, limits,
// times, filters, ?account=) to every endpoint that reads them.
func FuzzQueryParameters(f *testing.F) {
	h, keyID, operator := fuzzEnv(f)
	f.Add(uint8(0), "limit=1&page_token=ZGVmYXVsdC9iaWxsaW5n")
	f.Add(uint8(3), "application=billing&kind=principal&limit=1000&page_token=MTcwMDAwMDAwMDAwMC5MS0lB")
	f.Add(uint8(5), "from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z&step=5m")
	f.Add(uint8(8), "since=2026-01-01T00:00:00Z&until=2027-01-01T00:00:00Z&actor=admin&action=access_key.create&page_token=9")
	f.Add(uint8(2), "account=other&limit=-1")
	f.Add(uint8(9), "%zz&&=&a=%00")
	f.Fuzz(func(t *testing.T, route uint8, rawQuery string) {
		method, path, _ := strings.Cut(queryRoutes[int(route)%len(queryRoutes)], " ")
		path = strings.Replace(path, "{id}", keyID, 1)
		req := httptest.NewRequest(method, path, nil)
		req.URL.RawQuery = rawQuery
		req.Header.Set("Authorization", "Bearer "+operator)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, rec)
	})
}

// FuzzClientIP feeds arbitrary peers and X-Forwarded-For chains. The
// answer is the peer unless the peer is trusted, and then an address that
// is in the chain and not trusted itself, or the last trusted hop.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.5:1234", "203.0.113.9, 10.0.0.7", "10.0.0.0/8")
	f.Add("[::ffff:10.0.0.5]:1", "1.1.1.1, ::ffff:203.0.113.9", "10.0.0.0/8,::1/128")
	f.Add("192.0.2.1:1", "nonsense", "")
	f.Add("garbage", "", "0.0.0.0/0")
	f.Fuzz(func(t *testing.T, remote, xff, trustedList string) {
		var trusted []netip.Prefix
		for _, s := range strings.Split(trustedList, ",") {
			if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil {
				trusted = append(trusted, p.Masked())
			}
		}
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		if xff != "" {
			r.Header["X-Forwarded-For"] = []string{xff}
		}
		got := httpapi.ClientIP(r, trusted)
		if got.Is4In6() {
			t.Fatalf("ClientIP = %s, an IPv4-mapped address", got)
		}
		peer, err := netip.ParseAddrPort(remote)
		if err != nil {
			return
		}
		p := peer.Addr().Unmap()
		inTrusted := func(a netip.Addr) bool {
			for _, pf := range trusted {
				if pf.Contains(a) {
					return true
				}
			}
			return false
		}
		if !inTrusted(p) {
			if got != p {
				t.Fatalf("untrusted peer %s, ClientIP = %s", p, got)
			}
			return
		}
		if got == p {
			return
		}
		found := false
		for _, hop := range strings.Split(xff, ",") {
			if a, err := netip.ParseAddr(strings.TrimSpace(hop)); err == nil && a.Unmap() == got {
				found = true
			}
		}
		if !found {
			t.Fatalf("ClientIP = %s, which is neither the peer nor in X-Forwarded-For %q", got, xff)
		}
	})
}

// FuzzScopeRule parses --scope-rule values and matches calls against them.
func FuzzScopeRule(f *testing.F) {
	f.Add("GET /shipments/* shipments:read", "GET", "/shipments/1")
	f.Add("* /admin admin:*", "DELETE", "/admin")
	f.Add("post /a/*/b x", "POST", "/a/b")
	f.Fuzz(func(t *testing.T, rule, method, path string) {
		r, err := httpapi.ParseScopeRule(rule)
		if err != nil {
			if latchkey.ErrorCode(err) != latchkey.EINVALID {
				t.Fatalf("ParseScopeRule(%q): code %s", rule, latchkey.ErrorCode(err))
			}
			return
		}
		if !strings.HasPrefix(r.Path, "/") || strings.Contains(strings.TrimSuffix(r.Path, "*"), "*") {
			t.Fatalf("ParseScopeRule(%q) accepted path %q", rule, r.Path)
		}
		got := httpapi.ScopeFor([]httpapi.ScopeRule{r}, method, path)
		// the reference: ASCII letters in any case, "/p/*" also covers
		// "/p", and a covered path with an unnamed method needs
		// ScopeUnnamedMethod
		lower := func(s string) string {
			b := []byte(s)
			for i, c := range b {
				if 'A' <= c && c <= 'Z' {
					b[i] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
		prefix, wild := strings.CutSuffix(lower(r.Path), "*")
		lp := lower(path)
		pathOK := lp == lower(r.Path) || wild && (strings.HasPrefix(lp, prefix) || len(prefix) > 1 && strings.HasSuffix(prefix, "/") && lp == strings.TrimSuffix(prefix, "/"))
		methodOK := r.Method == "*" || r.Method == method
		want := ""
		switch {
		case pathOK && methodOK:
			want = r.Scope
		case pathOK:
			want = httpapi.ScopeUnnamedMethod
		}
		if got != want {
			t.Fatalf("rule %q on %s %s: ScopeFor = %q, want %q", rule, method, path, got, want)
		}
	})
}

// secretInURLReference is SecretInURL as it was written first, on
// url.Values: FuzzSecretInURL holds the allocation-free version to it.
func secretInURLReference(r *http.Request) (found bool, secrets []string) {
	credentialParams := map[string]bool{
		"api_key": true, "apikey": true, "api-key": true, "key": true, "access_key": true,
		"secret": true, "secret_access_key": true, "token": true, "access_token": true, "x-api-key": true,
	}
	add := func(s string) {
		for {
			i := strings.Index(s, keyformat.SecretPrefix)
			if i < 0 {
				return
			}
			s = s[i:]
			if len(s) >= keyformat.SecretLen && keyformat.ValidSecret(s[:keyformat.SecretLen]) {
				if !slices.Contains(secrets, s[:keyformat.SecretLen]) {
					secrets = append(secrets, s[:keyformat.SecretLen])
				}
				s = s[keyformat.SecretLen:]
				continue
			}
			s = s[len(keyformat.SecretPrefix):]
		}
	}
	raw := r.URL.RawQuery
	if strings.Contains(r.URL.Path, keyformat.SecretPrefix) {
		add(r.URL.Path)
	}
	if raw != "" {
		for name, vals := range r.URL.Query() {
			if credentialParams[strings.ToLower(name)] {
				for _, v := range vals {
					if v != "" {
						found = true
					}
				}
			}
			for _, v := range vals {
				if strings.Contains(v, keyformat.SecretPrefix) {
					add(v)
				}
			}
			if strings.Contains(name, keyformat.SecretPrefix) {
				add(name)
			}
		}
		if strings.Contains(raw, keyformat.SecretPrefix) && len(secrets) == 0 {
			add(raw)
		}
	}
	return found || len(secrets) > 0, secrets
}

// FuzzSecretInURL: SecretInURL finds exactly what the url.Values-based
// reference finds, for any path and query.
func FuzzSecretInURL(f *testing.F) {
	secret, err := keyformat.NewSecret()
	if err != nil {
		f.Fatal(err)
	}
	f.Add("/shipments/42", "expand=items&limit=5")
	f.Add("/v1/x", "API_KEY=abc")
	f.Add("/v1/x", "\u212aey=abc") // Kelvin sign: lower-cases to "key"
	f.Add("/v1/"+secret, "")
	f.Add("/v1/x", "a="+secret+"&b="+secret)
	f.Add("/v1/x", "a=%6C"+secret[1:]+";b")
	f.Add("/v1/x", "x;"+secret)
	f.Add("/v1/x", "%zz="+secret+"&token=&token=1")
	f.Add("/v1/x", secret+"=1&+key+=%2")
	f.Fuzz(func(t *testing.T, path, rawQuery string) {
		r := &http.Request{URL: &url.URL{Path: path, RawQuery: rawQuery}}
		found, secrets := httpapi.SecretInURL(r)
		wantFound, wantSecrets := secretInURLReference(r)
		slices.Sort(secrets)
		slices.Sort(wantSecrets)
		if found != wantFound || !slices.Equal(secrets, wantSecrets) {
			t.Errorf("SecretInURL(%q, %q) = %v, %d secrets; the reference says %v, %d secrets",
				path, rawQuery, found, len(secrets), wantFound, len(wantSecrets))
		}
	})
}
