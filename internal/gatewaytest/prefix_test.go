package gatewaytest_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/gatewaytest"
	"github.com/latchkey/latchkey/internal/proxy"
)

// lockedBuffer collects the server's log lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPrefixedKeyEverySurface: once the account has a key prefix, its new
// keys are accepted by /v1/verify, forward auth, the proxy and ext_authz,
// and so are the lksk_ keys made before; a prefixed key in a URL is refused
// and flagged exposed, and no log line holds a secret.
func TestPrefixedKeyEverySurface(t *testing.T) {
	var logs lockedBuffer
	env := gatewaytest.New(t, gatewaytest.Options{TrustedProxies: []string{"127.0.0.0/8"},
		Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx := t.Context()
	old := env.Key(t, "billing", nil)
	prefix := "acme_live_"
	if _, err := env.Service.UpdateAccount(ctx, env.Operator, latchkey.DefaultAccount, latchkey.AccountUpdate{KeyPrefix: &prefix}); err != nil {
		t.Fatal(err)
	}
	pk := env.Key(t, "billing", nil)
	if !strings.HasPrefix(pk.Secret, prefix) || !strings.HasPrefix(old.Secret, "lksk_") {
		t.Fatalf("keys start %q and %q, want %s and lksk_", pk.Secret[:10], old.Secret[:5], prefix)
	}
	leaked := env.Key(t, "orders", nil)

	api := httptest.NewServer(env.API.Handler())
	t.Cleanup(api.Close)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(r.Header.Get("X-Latchkey-Access-Key-Id")))
	}))
	t.Cleanup(upstream.Close)
	u, _ := url.Parse(upstream.URL)
	p, err := proxy.New(proxy.Config{Upstream: u, API: env.API})
	if err != nil {
		t.Fatal(err)
	}
	px := httptest.NewServer(p)
	t.Cleanup(px.Close)
	authz := dialExtAuthz(t, env)
	admin, err := env.Service.CreatePrincipal(ctx, env.Operator, latchkey.DefaultAccount, "ops", latchkey.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(admin.AccessKey.Secret, "lksk_") {
		t.Errorf("a principal's key starts %q: admin credentials keep lksk_", admin.AccessKey.Secret[:5])
	}

	call := func(t *testing.T, method, target string, h map[string]string, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	surfaces := []struct {
		name string
		ok   func(t *testing.T, k gatewaytest.Key) bool
	}{
		{"verify", func(t *testing.T, k gatewaytest.Key) bool {
			b, _ := json.Marshal(map[string]string{"key": k.Secret})
			st, body := call(t, "POST", api.URL+"/v1/verify", map[string]string{"Authorization": "Bearer " + admin.AccessKey.Secret, "Content-Type": "application/json"}, string(b))
			return st == 200 && strings.Contains(body, `"valid":true`) && strings.Contains(body, k.ID)
		}},
		{"forward auth", func(t *testing.T, k gatewaytest.Key) bool {
			st, _ := call(t, "GET", api.URL+"/v1/authorize", map[string]string{"Authorization": "Bearer " + k.Secret,
				"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/invoices/7"}, "")
			return st == 200
		}},
		{"proxy", func(t *testing.T, k gatewaytest.Key) bool {
			st, body := call(t, "GET", px.URL+"/invoices/7", map[string]string{"X-Api-Key": k.Secret}, "")
			return st == 200 && body == k.ID
		}},
		{"ext_authz", func(t *testing.T, k gatewaytest.Key) bool {
			res, err := authz.Check(ctx, checkRequest("/invoices/7", k.Secret))
			if err != nil {
				t.Fatal(err)
			}
			return res.GetOkResponse() != nil
		}},
	}
	forged := gatewaytest.Key{ID: pk.ID, Secret: "acme_test_" + pk.Secret[len(prefix):]}
	for _, s := range surfaces {
		t.Run(s.name, func(t *testing.T) {
			if !s.ok(t, pk) {
				t.Error("the prefixed key is refused")
			}
			if !s.ok(t, old) {
				t.Error("the lksk_ key made before the prefix is refused")
			}
			if s.ok(t, forged) {
				t.Error("the prefixed secret under another prefix is accepted")
			}
		})
	}

	t.Run("in a URL through the proxy", func(t *testing.T) {
		st, body := call(t, "GET", px.URL+"/invoices?key="+leaked.Secret, map[string]string{"X-Api-Key": pk.Secret}, "")
		if st != http.StatusForbidden || !strings.Contains(body, "CREDENTIALS_IN_URL") {
			t.Errorf("status %d body %s", st, strings.ReplaceAll(body, leaked.Secret, "{S}"))
		}
		if env.Exposed(t, leaked.ID) == "" {
			t.Error("the prefixed key in the URL was not flagged exposed")
		}
	})
	t.Run("in the path of a management call", func(t *testing.T) {
		st, _ := call(t, "GET", api.URL+"/v1/access-keys/"+pk.Secret, map[string]string{"Authorization": "Bearer " + admin.AccessKey.Secret}, "")
		if st < 400 || st >= 500 {
			t.Errorf("status %d, want a refusal", st)
		}
	})

	out := logs.String()
	if !strings.Contains(out, "acme_live_") {
		t.Error("the logs never mention a prefixed secret, masked: the check below would prove nothing")
	}
	for name, s := range map[string]string{"prefixed": pk.Secret, "leaked": leaked.Secret, "lksk_": old.Secret} {
		if strings.Contains(out, s[len(s)-46+4:]) {
			t.Errorf("the %s secret is in the logs", name)
		}
	}
}
