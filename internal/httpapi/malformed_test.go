package httpapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/keyformat"
)

// malformedCase is one hostile request and the answer it must get: always
// a 4xx with an error code, never a 5xx, never a success.
type malformedCase struct {
	name   string
	method string
	path   string
	hdr    map[string]string // set verbatim, after the operator's credential
	noAuth bool
	body   string
	// chunked sends the body without a Content-Length.
	chunked bool
	status  int
	code    string
}

// list returns a JSON array of n strings made by f.
func list(n int, f func(i int) string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(f(i)))
	}
	b.WriteByte(']')
	return b.String()
}

// malformedCases are the hostile requests of TestMalformedRequests. keyID
// is an existing application key of the default account, in application
// "billing".
func malformedCases(keyID string) []malformedCase {
	const (
		bad      = http.StatusBadRequest
		notFound = http.StatusNotFound
		inv      = latchkey.EINVALID
		mal      = latchkey.EMALFORMED
	)
	key := "/v1/access-keys/" + keyID
	c := func(name, method, path, body string, status int, code string) malformedCase {
		return malformedCase{name: name, method: method, path: path, body: body, status: status, code: code}
	}
	ips10k := list(10000, func(i int) string { return fmt.Sprintf("10.%d.%d.0/24", i/256, i%256) })
	return []malformedCase{
		// Headers: large (below the transport's limit), odd bytes.
		{name: "30 KiB bearer token", method: "GET", path: "/v1/accounts", noAuth: true,
			hdr: map[string]string{"Authorization": "Bearer lksk_" + strings.Repeat("A", 30<<10)}, status: http.StatusUnauthorized, code: latchkey.EUNAUTHORIZED},
		{name: "30 KiB basic credential", method: "GET", path: "/v1/accounts", noAuth: true,
			hdr: map[string]string{"Authorization": "Basic " + strings.Repeat("QUJD", 30<<8)}, status: http.StatusUnauthorized, code: latchkey.EUNAUTHORIZED},
		{name: "30 KiB X-Api-Key", method: "GET", path: "/v1/accounts", noAuth: true,
			hdr: map[string]string{"X-Api-Key": strings.Repeat("k", 30<<10)}, status: http.StatusUnauthorized, code: latchkey.EUNAUTHORIZED},
		{name: "bearer token with bytes that are not UTF-8", method: "GET", path: "/v1/accounts", noAuth: true,
			hdr: map[string]string{"Authorization": "Bearer lksk_\xff\xfe\x80"}, status: http.StatusUnauthorized, code: latchkey.EUNAUTHORIZED},
		{name: "basic credential that decodes to bytes that are not UTF-8", method: "GET", path: "/v1/accounts", noAuth: true,
			hdr: map[string]string{"Authorization": "Basic /w==:"}, status: http.StatusUnauthorized, code: latchkey.EUNAUTHORIZED},
		{name: "unknown method", method: "BREW", path: "/v1/accounts", status: http.StatusMethodNotAllowed, code: latchkey.EMETHOD},

		// Bodies: encoding.
		c("name with bytes that are not UTF-8", "POST", "/v1/applications", "{\"name\":\"a\xffb\"}", bad, inv),
		c("description with bytes that are not UTF-8", "POST", "/v1/applications", "{\"name\":\"utf\",\"description\":\"a\xc3\x28b\"}", bad, inv),
		c("not UTF-8 after the object", "POST", "/v1/applications", "{\"name\":\"x\"}\xff", bad, mal),
		c("raw NUL byte inside a string", "POST", "/v1/applications", "{\"name\":\"a\x00b\"}", bad, mal),
		c("raw NUL byte between tokens", "POST", "/v1/applications", "{\"name\":\x00\"ab\"}", bad, mal),
		c("escaped NUL in a name", "POST", "/v1/applications", `{"name":"a\u0000b"}`, bad, inv),
		c("escaped NUL in a description", "PATCH", "/v1/applications/billing", `{"description":"a\u0000b"}`, bad, inv),
		c("escaped NUL in an account name", "POST", "/v1/accounts", `{"name":"\u0000"}`, bad, inv),
		c("escaped NUL in a principal name", "POST", "/v1/principals", `{"name":"p\u0000","role":"viewer"}`, bad, inv),
		c("escaped NUL in a role", "POST", "/v1/principals", `{"name":"pat","role":"admin\u0000"}`, bad, inv),
		c("escaped NUL in a status", "PATCH", key, `{"status":"Active\u0000"}`, bad, inv),
		c("lone surrogate in a name", "POST", "/v1/applications", `{"name":"\ud800"}`, bad, inv),
		c("UTF-8 byte order mark before the object", "POST", "/v1/applications", "\xef\xbb\xbf{\"name\":\"bom\"}", bad, mal),
		c("JSON nested 100000 deep", "POST", "/v1/applications", `{"name":`+strings.Repeat("[", 100000)+strings.Repeat("]", 100000)+`}`, bad, mal),

		// SQL metacharacters where names go.
		c("SQL in an application name", "POST", "/v1/applications", `{"name":"x'); DROP TABLE applications;--"}`, bad, inv),
		c("SQL in an account name", "POST", "/v1/accounts", `{"name":"a' OR '1'='1"}`, bad, inv),
		c("SQL in a principal name", "POST", "/v1/principals", `{"name":"p\"; DELETE FROM principals; --","role":"viewer"}`, bad, inv),
		c("SQL in an application path", "GET", "/v1/applications/x'%20OR%20'1'='1", "", notFound, latchkey.ENOTFOUND),
		c("SQL in a key ID path", "GET", "/v1/access-keys/LKIA'%20OR%201=1--", "", notFound, latchkey.ENOTFOUND),
		c("SQL in a principal path", "DELETE", "/v1/principals/admin'--", "", notFound, latchkey.ENOTFOUND),
		c("SQL in the account parameter", "GET", "/v1/applications/billing?account=default'--", "", notFound, latchkey.ENOTFOUND),
		c("SQL in the application filter", "GET", "/v1/access-keys?application=billing'%20OR%20'1'='1", "", notFound, latchkey.ENOTFOUND),
		c("SQL in a page token", "GET", "/v1/applications?page_token='%20OR%201=1--", "", bad, inv),

		// NUL and bytes that are not UTF-8 in paths and parameters.
		c("NUL in an application path", "GET", "/v1/applications/a%00b", "", bad, inv),
		c("not UTF-8 in an application path", "GET", "/v1/applications/%ff", "", bad, inv),
		c("not UTF-8 in a principal path", "GET", "/v1/principals/%c3%28", "", bad, inv),
		c("not UTF-8 in the account parameter", "GET", "/v1/applications?account=%ff", "", bad, inv),
		c("NUL in the application filter", "GET", "/v1/access-keys?application=a%00", "", bad, inv),
		c("NUL in the audit actor filter", "GET", "/v1/audit-events?actor=%00", "", bad, inv),
		c("not UTF-8 in the audit application filter", "GET", "/v1/audit-events?application=%fe", "", bad, inv),
		c("page token that decodes to NUL and not UTF-8", "GET", "/v1/applications?page_token=AP8", "", bad, inv),
		c("key page token with a NUL in its ID", "GET", "/v1/access-keys?page_token=MS4A", "", bad, inv),

		// 10 000-element lists.
		c("10 000 allowed IPs", "POST", "/v1/applications", `{"name":"ips","restrictions":{"allowed_ips":`+ips10k+`}}`, bad, inv),
		c("10 000 scopes on a key", "PATCH", key, `{"restrictions":{"scopes":`+list(10000, func(i int) string { return "s:" + strconv.Itoa(i) })+`}}`, bad, inv),
		c("10 000 referrers, report-only", "PATCH", key, `{"report_only_restrictions":{"allowed_referrers":`+list(10000, func(i int) string { return "https://h" + strconv.Itoa(i) + ".example/" })+`}}`, bad, inv),
		c("10 000 iOS bundle IDs", "POST", "/v1/applications/billing/access-keys", `{"restrictions":{"ios_bundle_ids":`+list(10000, func(i int) string { return "com.example.a" + strconv.Itoa(i) })+`}}`, bad, inv),
		c("10 000 leak findings", "POST", "/v1/leaks", `{"findings":[`+strings.Repeat(`{"secret":"lksk_x"},`, 9999)+`{"secret":"lksk_x"}]}`, bad, inv),
		c("10 000 digests to check", "POST", "/v1/leaks/check", `{"digests":`+list(10000, func(int) string { return strings.Repeat("0", 64) })+`}`, bad, inv),
		c("a 1000-element list where a key goes", "POST", "/v1/verify", `{"key":`+list(1000, func(int) string { return "lksk_" })+`}`, bad, mal),

		// Numbers: negative, zero, fractional, overflowing.
		c("limit -1", "GET", "/v1/applications?limit=-1", "", bad, inv),
		c("limit 0", "GET", "/v1/access-keys?limit=0", "", bad, inv),
		c("limit over the maximum", "GET", "/v1/audit-events?limit=1001", "", bad, inv),
		c("limit that overflows int64", "GET", "/v1/applications?limit=99999999999999999999999", "", bad, inv),
		c("limit in exponent form", "GET", "/v1/applications?limit=1e3", "", bad, inv),
		c("negative rate per second", "POST", "/v1/applications", `{"name":"r1","restrictions":{"rate_limit":{"per_second":-1}}}`, bad, inv),
		c("negative burst", "POST", "/v1/applications", `{"name":"r2","restrictions":{"rate_limit":{"per_second":1,"burst":-5}}}`, bad, inv),
		c("rate per second past float64", "POST", "/v1/applications", `{"name":"r3","restrictions":{"rate_limit":{"per_second":1e400}}}`, bad, mal),
		c("per minute past int64", "POST", "/v1/applications", `{"name":"r4","restrictions":{"rate_limit":{"per_minute":9223372036854775808}}}`, bad, mal),
		c("fractional burst", "POST", "/v1/applications", `{"name":"r5","restrictions":{"rate_limit":{"per_second":1,"burst":1.5}}}`, bad, mal),
		c("per minute past the maximum", "POST", "/v1/applications", `{"name":"r6","restrictions":{"rate_limit":{"per_minute":60000001}}}`, bad, inv),
		c("negative usage step", "GET", key+"/usage?step=-1m", "", bad, inv),
		c("zero usage step", "GET", key+"/usage?step=0s", "", bad, inv),
		c("usage step past int64 nanoseconds", "GET", key+"/usage?step=9999999999h", "", bad, inv),
		c("usage over 8000 years", "GET", key+"/usage?from=0001-01-01T00:00:00Z&to=9999-12-31T00:00:00Z&step=24h", "", bad, inv),
		c("usage range backwards", "GET", key+"/usage?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", "", bad, inv),
		c("audit since in year 99999", "GET", "/v1/audit-events?since=99999-01-01T00:00:00Z", "", bad, inv),
		c("expiry in year 1", "PATCH", key, `{"expires_at":"0001-01-01T00:00:00Z"}`, bad, inv),
		c("expiry in year 10000", "PATCH", key, `{"expires_at":"10000-01-01T00:00:00Z"}`, bad, mal),
		c("expiry as a number", "PATCH", key, `{"expires_at":-62135596800}`, bad, mal),
		c("force=2", "DELETE", key+"?force=2", "", bad, inv),

		// Sizes.
		{name: "chunked body over 1 MiB", method: "POST", path: "/v1/applications", chunked: true,
			body: `{"name":"big","description":"` + strings.Repeat("d", httpapi.MaxBodyBytes) + `"}`, status: http.StatusRequestEntityTooLarge, code: latchkey.ETOOLARGE},
		{name: "chunked verify body over 16 KiB", method: "POST", path: "/v1/verify", chunked: true,
			body: `{"key":"` + strings.Repeat("k", httpapi.MaxVerifyBodyBytes) + `"}`, status: http.StatusRequestEntityTooLarge, code: latchkey.ETOOLARGE},
		c("description one byte too long", "PATCH", "/v1/applications/billing", `{"description":"`+strings.Repeat("d", latchkey.MaxDescriptionLen+1)+`"}`, bad, inv),
		c("name 65 characters long", "POST", "/v1/applications", `{"name":"`+strings.Repeat("n", 65)+`"}`, bad, inv),
		c("scope 129 characters long", "PATCH", key, `{"restrictions":{"scopes":["`+strings.Repeat("s", latchkey.MaxScopeLen+1)+`"]}}`, bad, inv),
		c("8 KiB path", "GET", "/v1/applications/"+strings.Repeat("p", 8<<10), "", notFound, latchkey.ENOTFOUND),
	}
}

// TestMalformedRequests sends each hostile request to the API on SQLite
// and on PostgreSQL: each must be answered with the same 4xx and code on
// both, and none may change anything.
func TestMalformedRequests(t *testing.T) {
	for _, store := range []struct {
		name string
		opts []func(*envOptions)
	}{{"sqlite", nil}, {"postgres", []func(*envOptions){onPostgres}}} {
		t.Run(store.name, func(t *testing.T) {
			e := newEnv(t, store.opts...)
			e.mustApp(t, latchkey.DefaultAccount, "billing")
			k := e.mustKey(t, latchkey.DefaultAccount, "billing")
			before := len(e.auditEvents(t))
			cases := malformedCases(k.ID)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					var body io.Reader
					if tc.body != "" {
						body = strings.NewReader(tc.body)
						if tc.chunked {
							body = io.MultiReader(body) // hides the length: sent chunked
						}
					}
					req, err := http.NewRequestWithContext(t.Context(), tc.method, e.ts.URL+tc.path, body)
					if err != nil {
						t.Fatal(err)
					}
					if tc.body != "" {
						req.Header.Set("Content-Type", "application/json")
					}
					if !tc.noAuth {
						bearer(e.operator)(req)
					}
					for k, v := range tc.hdr {
						req.Header[k] = []string{v}
					}
					r := e.send(t, req)
					e.expect(t, apiCase{method: tc.method, path: req.URL.Path, status: tc.status, code: tc.code}, r)
				})
			}
			if after := len(e.auditEvents(t)); after != before {
				t.Errorf("refused requests wrote %d audit events", after-before)
			}
			if t.Name() == "TestMalformedRequests/sqlite" {
				t.Logf("%d malformed requests, each answered with a 4xx and a code", len(cases))
			}
		})
	}
}

// TestMalformedAtTheTransport sends requests that net/http refuses before
// any handler runs, to a server with the limits `latchkey serve` uses. They
// are answered in plain text by net/http (431 or 400), and the connection
// is closed; the server keeps serving others.
func TestMalformedAtTheTransport(t *testing.T) {
	e := newEnv(t)
	ts := httptest.NewUnstartedServer(e.api.Handler())
	ts.Config = httpapi.NewHTTPServer(ts.Config.Handler, httpapi.DefaultTimeouts, nil)
	ts.Start()
	t.Cleanup(ts.Close)
	addr := ts.Listener.Addr().String()
	many := strings.Repeat("X-Filler: 0123456789abcdef\r\n", 2000)
	tests := []struct {
		name   string
		raw    string
		status int
	}{
		{"64 KiB header", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 64<<10) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"2000 headers", "GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + "\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"40 KiB request line", "GET /v1/" + strings.Repeat("a", 40<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"NUL in a header value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Api-Key: a\x00b\r\n\r\n", http.StatusBadRequest},
		{"NUL in a header name", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-\x00: a\r\n\r\n", http.StatusBadRequest},
		{"header without a colon", "GET /healthz HTTP/1.1\r\nHost: x\r\nnonsense\r\n\r\n", http.StatusBadRequest},
		{"negative Content-Length", "POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", http.StatusBadRequest},
		{"Content-Length past int64", "POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", http.StatusBadRequest},
		{"two different Content-Lengths", "POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", http.StatusBadRequest},
		{"unknown transfer encoding", "POST /v1/verify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", http.StatusNotImplemented},
		{"no Host header", "GET /healthz HTTP/1.1\r\n\r\n", http.StatusBadRequest},
		{"malformed request line", "GET\r\n\r\n", http.StatusBadRequest},
		{"HTTP/9.9", "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", http.StatusHTTPVersionNotSupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(conn, tc.raw); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Errorf("status %d, want %d", res.StatusCode, tc.status)
			}
		})
	}
	// the server still serves
	res, err := ts.Client().Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("healthz after the malformed requests: %d", res.StatusCode)
	}
	t.Logf("%d malformed requests refused by the transport", len(tests))
}

// TestHostileTextIsStoredSafely: free text that the API records rather than
// validates (user agents, where a leak was seen) may hold NUL bytes and
// bytes that are not UTF-8. It is stored cleaned, on both stores, and never
// stops a write or the usage flush; SQL metacharacters are stored verbatim.
func TestHostileTextIsStoredSafely(t *testing.T) {
	for _, store := range []struct {
		name string
		opts []func(*envOptions)
	}{{"sqlite", nil}, {"postgres", []func(*envOptions){onPostgres}}} {
		t.Run(store.name, func(t *testing.T) {
			e := newEnv(t, store.opts...)
			// net/http refuses NUL and control bytes in headers, not bytes that
			// are not UTF-8
			const hostileUA = "agent/1 \xff\xfe (\xc3\x28)"
			ua := header("User-Agent", hostileUA)
			op := bearer(e.operator)
			sqlText := `x'); DROP TABLE access_keys; --`
			must := func(r *resp, status int) *resp {
				t.Helper()
				if r.status != status {
					t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
				}
				return r
			}
			must(e.do(t, "POST", "/v1/applications", both(op, ua), `{"name":"billing","description":"`+sqlText+`"}`), http.StatusCreated)
			var k struct {
				ID     string `json:"access_key_id"`
				Secret string `json:"secret_access_key"`
			}
			must(e.do(t, "POST", "/v1/applications/billing/access-keys", both(op, ua), `{}`), http.StatusCreated).decode(t, &k)
			// usage with a hostile user agent, by body and by header
			must(e.do(t, "POST", "/v1/verify", op, `{"key":"`+k.Secret+`","user_agent":"a\u0000b"}`), http.StatusOK)
			must(e.do(t, "GET", "/v1/authorize", both(bearer(cred{secret: k.Secret}), ua), ""), http.StatusOK)
			must(e.do(t, "GET", "/v1/accounts", both(op, ua), ""), http.StatusOK) // the operator key's own usage
			if err := e.rec.Flush(t.Context()); err != nil {
				t.Fatalf("usage flush: %v", err)
			}
			must(e.do(t, "POST", "/v1/leaks", op, `{"findings":[{"secret":"`+k.Secret+`","where":"paste\u0000bin \u0001"}]}`), http.StatusOK)

			stored := e.storedKey(t, k.ID)
			if stored.UseCount != 2 || stored.LastUsed == nil || stored.Exposed == nil {
				t.Fatalf("stored key: uses %d, last used %v, exposed %v", stored.UseCount, stored.LastUsed, stored.Exposed)
			}
			texts := map[string]string{"last used user agent": stored.LastUsed.UserAgent, "exposed where": stored.Exposed.Where}
			for _, ev := range e.auditEvents(t) {
				texts["audit user agent of "+ev.Action] = ev.UserAgent
			}
			for what, s := range texts {
				if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
					t.Errorf("%s %q is not clean text", what, s)
				}
			}
			if !strings.HasPrefix(stored.Exposed.Where, "leak report: paste") {
				t.Errorf("exposed where = %q", stored.Exposed.Where)
			}
			var app latchkey.Application
			must(e.do(t, "GET", "/v1/applications/billing", op, ""), http.StatusOK).decode(t, &app)
			if app.Description != sqlText {
				t.Errorf("description %q, want it verbatim", app.Description)
			}
			// SQL metacharacters in filters match nothing and break
			// nothing; in an enum they are refused before the store.
			must(e.do(t, "GET", "/v1/audit-events?action=x%27%3B%20DELETE%20FROM%20audit_events%3B--", op, ""), http.StatusBadRequest)
			for _, path := range []string{"/v1/audit-events?actor=%27%20OR%20%271%27=%271"} {
				var out struct {
					Events []json.RawMessage `json:"audit_events"`
				}
				must(e.do(t, "GET", path, op, ""), http.StatusOK).decode(t, &out)
				if len(out.Events) != 0 {
					t.Errorf("%s matched %d events", path, len(out.Events))
				}
			}
			if n := len(e.auditEvents(t)); n < 6 {
				t.Errorf("only %d audit events after the run", n)
			}
		})
	}
}

// TestErrorMessagesMaskSecrets: an error message that quotes the caller's
// input shows no more of a secret in it than its first four characters,
// however the secret is written.
func TestErrorMessagesMaskSecrets(t *testing.T) {
	e := newEnv(t)
	s := newSecret(t)
	body := s[len(keyformat.SecretPrefix):]
	for _, tc := range []struct{ name, appName string }{
		{"as written", s + " x"},
		{"after another prefix", "lksk_" + s + " x"},
		{"prefix in capitals", "LKSK_" + body + " x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, "POST", "/v1/applications", bearer(e.operator), jsonBody(t, map[string]string{"name": tc.appName}))
			msg := r.errorBody(t).Error.Message
			if r.status != http.StatusBadRequest || !strings.Contains(msg, "may hold only") {
				t.Fatalf("status %d, message %q: want the name refused, quoted", r.status, strings.ReplaceAll(msg, body, "<secret>"))
			}
			if strings.Contains(msg, body[4:]) {
				t.Errorf("the message shows the secret: %q", strings.ReplaceAll(msg, body[4:], "<secret>"))
			}
		})
	}
}
