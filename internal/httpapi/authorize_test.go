package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/verify"
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

func TestAuthorizeStatuses(t *testing.T) {
	ctx := t.Context()
	store, err := sqlite.Open(ctx, t.TempDir()+"/lk.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ix := verify.NewIndex()
	svc := manage.New(store, ix, nil)
	if _, err := svc.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	op := latchkey.Actor{Principal: "admin", Account: "default", Role: latchkey.RoleOperator}
	if _, err := svc.CreateApplication(ctx, op, "default", "web", "", nil); err != nil {
		t.Fatal(err)
	}
	k, err := svc.CreateAccessKey(ctx, op, "default", "web", latchkey.NewAccessKey{Restrictions: &latchkey.Restrictions{
		AllowedIPs: []string{"203.0.113.0/24"}, Scopes: []string{"shipments:read"},
		RateLimit: &latchkey.RateLimit{PerMinute: 2},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rule, _ := ParseScopeRule("POST /shipments/* shipments:write")
	api := &Server{Service: svc, Verifier: verify.New(ix, nil), ScopeRules: []ScopeRule{rule},
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
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name   string
		hdr    map[string]string
		status int
		code   string
	}{
		{"valid", good, 200, "VALID"},
		{"no credential", map[string]string{"X-Original-URI": "/x"}, 401, "MISSING"},
		{"wrong ip via trusted proxy", with("X-Forwarded-For", "198.51.100.1"), 403, "IP_NOT_ALLOWED"},
		{"scope by rule", with("X-Original-Method", "POST"), 403, "SCOPE_DENIED"},
		{"traefik headers", map[string]string{"Authorization": "Bearer " + k.Secret, "X-Forwarded-For": "203.0.113.8", "X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/shipments/2"}, 200, "VALID"},
		{"rate limited", good, 429, "RATE_LIMITED"},
		{"rate limited, asked by nginx", with(HeaderGateway, "nginx"), 403, "RATE_LIMITED"},
		{"secret in original uri", with("X-Original-URI", "/shipments?key="+k.Secret), 403, "CREDENTIALS_IN_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := call(tt.hdr)
			if rec.Code != tt.status || rec.Header().Get(HeaderCode) != tt.code {
				t.Fatalf("status %d code %q, want %d %q; body %s", rec.Code, rec.Header().Get(HeaderCode), tt.status, tt.code, rec.Body)
			}
			switch tt.status {
			case 200:
				if rec.Header().Get(HeaderKeyID) != k.ID || rec.Header().Get(HeaderApplication) != "web" ||
					rec.Header().Get(HeaderAccount) != "default" || rec.Header().Get(HeaderScopes) != "shipments:read" {
					t.Errorf("identity headers: %v", rec.Header())
				}
			case 401:
				if !strings.Contains(rec.Header().Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without WWW-Authenticate")
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
			if nginx && rec.Header().Get("Retry-After") == "" {
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
