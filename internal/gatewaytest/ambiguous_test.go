package gatewaytest_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/gatewaytest"
	"github.com/latchkey/latchkey/internal/proxy"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
)

// hook records the canary uses the verifier reports.
type hook struct {
	mu   sync.Mutex
	uses []latchkey.CanaryUse
}

func (h *hook) CanaryUsed(e *verify.Entry, req *verify.Request, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.uses = append(h.uses, latchkey.CanaryUse{AccessKeyID: e.ID, Surface: req.Surface, Path: req.Path, At: at})
}

func (h *hook) take() []latchkey.CanaryUse {
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.uses
	h.uses = nil
	return u
}

// TestCredentialAmbiguous sends calls that carry more than one credential
// (a valid key beside a canary, in every arrangement a client can send)
// to forward auth, the reverse proxy, Envoy ext_authz and the management
// API. Each is refused 401 CREDENTIAL_AMBIGUOUS (Unauthorized on the
// management API), nothing reaches the upstream, and the canary in second
// place raises its alert. One credential alone is judged as before.
func TestCredentialAmbiguous(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{TrustedProxies: []string{"127.0.0.0/8"}})
	ctx := t.Context()
	h := &hook{}
	env.Verifier.Canary = h
	valid := env.Key(t, "billing", nil)
	ck, err := env.Service.CreateAccessKey(ctx, env.Operator, latchkey.DefaultAccount, "billing", latchkey.NewAccessKey{Canary: true})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := env.Service.CreatePrincipal(ctx, env.Operator, latchkey.DefaultAccount, "ops", latchkey.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	unknown, err := keyformat.NewSecret()
	if err != nil {
		t.Fatal(err)
	}

	api := httptest.NewServer(env.API.Handler())
	t.Cleanup(api.Close)
	var reached sync.Map
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Store(r.URL.Path, r.Header.Clone())
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

	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	}
	type hdr = [][2]string
	arrangements := []struct {
		name   string
		header func(first, second string) hdr
	}{
		{"two Authorization lines", func(a, b string) hdr { return hdr{{"Authorization", "Bearer " + a}, {"Authorization", "Bearer " + b}} }},
		{"Authorization and X-Api-Key", func(a, b string) hdr { return hdr{{"Authorization", "Bearer " + a}, {"X-Api-Key", b}} }},
		{"Basic and X-Api-Key", func(a, b string) hdr { return hdr{{"Authorization", basic(valid.ID, a)}, {"X-Api-Key", b}} }},
		{"two X-Api-Key lines", func(a, b string) hdr { return hdr{{"X-Api-Key", a}, {"X-Api-Key", b}} }},
		{"a comma-joined list", func(a, b string) hdr { return hdr{{"X-Api-Key", a + ", " + b}} }},
		{"an underscore twin", func(a, b string) hdr { return hdr{{"X-Api-Key", a}, {"X_Api_Key", b}} }},
	}
	send := func(t *testing.T, target string, h hdr) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, "GET", target, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range h {
			req.Header[kv[0]] = append(req.Header[kv[0]], kv[1]) // as sent: no canonical name
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	type answer struct {
		status int
		code   string
	}
	surfaces := []struct {
		name string
		call func(t *testing.T, path string, h hdr) answer
	}{
		{latchkey.SurfaceAuthorize, func(t *testing.T, path string, h hdr) answer {
			resp, body := send(t, api.URL+"/v1/authorize", append(h, [2]string{"X-Forwarded-Method", "GET"}, [2]string{"X-Forwarded-Uri", path}))
			if resp.StatusCode == http.StatusUnauthorized {
				if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="latchkey", error="invalid_request"` {
					t.Errorf("WWW-Authenticate %q", got)
				}
			}
			return answer{resp.StatusCode, errorCode(t, body, resp.Header.Get("X-Latchkey-Code"))}
		}},
		{latchkey.SurfaceProxy, func(t *testing.T, path string, h hdr) answer {
			resp, body := send(t, px.URL+path, h)
			return answer{resp.StatusCode, errorCode(t, body, resp.Header.Get("X-Latchkey-Code"))}
		}},
		{latchkey.SurfaceExtAuthz, func(t *testing.T, path string, h hdr) answer {
			req := checkRequest(path, "")
			hs := req.Attributes.Request.Http.Headers
			delete(hs, "authorization")
			// Envoy joins repeated headers with a comma.
			for _, kv := range h {
				k := strings.ToLower(kv[0])
				if hs[k] != "" {
					hs[k] += ","
				}
				hs[k] += kv[1]
			}
			res, err := authz.Check(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if d := res.GetDeniedResponse(); d != nil {
				return answer{int(d.GetStatus().GetCode()), errorCode(t, d.GetBody(), res.GetStatus().GetMessage())}
			}
			if okr := res.GetOkResponse(); okr != nil {
				for _, want := range []string{"authorization", "x-api-key", "x_api_key"} {
					if hasHeader(h, want) && !containsFold(okr.GetHeadersToRemove(), want) {
						t.Errorf("ext_authz lets %s through to the upstream", want)
					}
				}
			}
			return answer{http.StatusOK, ""}
		}},
	}
	for _, s := range surfaces {
		t.Run(s.name, func(t *testing.T) {
			// One credential alone is judged as before.
			for _, h := range []hdr{{{"Authorization", "Bearer " + valid.Secret}}, {{"X-Api-Key", valid.Secret}}} {
				if got := s.call(t, "/one", h); got.status != http.StatusOK {
					t.Errorf("one valid credential %s: %+v", h[0][0], got)
				}
			}
			if got := s.call(t, "/one", hdr{{"X_Api_Key", valid.Secret}}); got != (answer{http.StatusUnauthorized, string(latchkey.CodeCredentialAmbiguous)}) {
				t.Errorf("a valid key under X_Api_Key alone: %+v, want 401 CREDENTIAL_AMBIGUOUS", got)
			}
			h.take()
			for _, a := range arrangements {
				for _, order := range []struct {
					name          string
					first, second string
				}{
					{"valid then canary", valid.Secret, ck.Secret},
					{"canary then valid", ck.Secret, valid.Secret},
					{"valid then unknown", valid.Secret, unknown},
				} {
					path := "/" + strings.ReplaceAll(a.name+"/"+order.name, " ", "-")
					got := s.call(t, path, a.header(order.first, order.second))
					if got != (answer{http.StatusUnauthorized, string(latchkey.CodeCredentialAmbiguous)}) {
						t.Errorf("%s, %s: %+v, want 401 CREDENTIAL_AMBIGUOUS", a.name, order.name, got)
					}
					if _, ok := reached.Load(path); ok {
						t.Errorf("%s, %s: the call reached the upstream", a.name, order.name)
					}
					uses := h.take()
					wantAlert := order.first == ck.Secret || order.second == ck.Secret
					if wantAlert && (len(uses) != 1 || uses[0].AccessKeyID != ck.ID || uses[0].Surface != s.name || uses[0].Path != path) {
						t.Errorf("%s, %s: canary uses %+v, want one on %s %s", a.name, order.name, uses, s.name, path)
					}
					if !wantAlert && len(uses) != 0 {
						t.Errorf("%s, %s: canary uses %+v, want none", a.name, order.name, uses)
					}
				}
			}
		})
	}

	t.Run(latchkey.SurfaceManagement, func(t *testing.T) {
		for _, a := range arrangements {
			resp, body := send(t, api.URL+"/v1/applications", a.header(admin.AccessKey.Secret, ck.Secret))
			if resp.StatusCode != http.StatusUnauthorized || errorCode(t, body, "") != "Unauthorized" || !strings.Contains(body, "more than one credential") {
				t.Errorf("%s: %d %s", a.name, resp.StatusCode, body)
			}
			if uses := h.take(); len(uses) != 1 || uses[0].AccessKeyID != ck.ID || uses[0].Surface != latchkey.SurfaceManagement {
				t.Errorf("%s: canary uses %+v", a.name, uses)
			}
		}
	})

	// A credential in the URL is refused before the headers are judged;
	// a canary in the headers still alerts.
	t.Run("credential in the URL beside a canary in the headers", func(t *testing.T) {
		resp, body := send(t, px.URL+"/inurl?api_key=x", hdr{{"X-Api-Key", ck.Secret}})
		if resp.StatusCode != http.StatusForbidden || errorCode(t, body, "") != string(latchkey.CodeCredentialsInURL) {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
		if uses := h.take(); len(uses) != 1 || uses[0].AccessKeyID != ck.ID {
			t.Errorf("canary uses %+v", uses)
		}
	})
}

// errorCode is the code of a JSON error body, checked against the code
// the surface also gave elsewhere (X-Latchkey-Code, the gRPC message) when
// that is not empty.
func errorCode(t *testing.T, body, also string) string {
	t.Helper()
	if body == "" {
		return ""
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		return ""
	}
	if also != "" && also != e.Error.Code {
		t.Errorf("code %s in the body, %s beside it", e.Error.Code, also)
	}
	if e.Error.Message == "" {
		t.Errorf("refusal %s without a message", e.Error.Code)
	}
	return e.Error.Code
}

func hasHeader(h [][2]string, name string) bool {
	for _, kv := range h {
		if strings.EqualFold(kv[0], name) {
			return true
		}
	}
	return false
}

func containsFold(xs []string, s string) bool {
	for _, x := range xs {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

var _ authv3.AuthorizationClient // dialExtAuthz's client
