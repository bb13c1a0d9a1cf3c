package main

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
)

// TestServeOIDC starts `latchkey serve` with single sign-on against the
// example OpenID Provider of zitadel/oidc: the sign-in page offers only the
// provider (key sign-in turned off, a posted key refused), the SSO button
// sends the browser to the provider's authorization endpoint with PKCE
// S256, state and nonce, the secret from the environment shows nowhere, and
// an issuer that cannot be discovered stops serve with the flag named.
func TestServeOIDC(t *testing.T) {
	op := httptest.NewUnstartedServer(nil)
	issuer := "http://" + op.Listener.Addr().String() + "/"
	op.Config.Handler = exampleop.SetupServer(issuer, storage.NewStorage(storage.NewUserStore(issuer)), nil, false)
	op.Start()
	t.Cleanup(op.Close)

	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	secret := hex.EncodeToString(b)
	t.Setenv("LATCHKEY_OIDC_CLIENT_SECRET", secret)
	roles := filepath.Join(t.TempDir(), "roles.yaml")
	if err := os.WriteFile(roles, []byte("rules:\n  - values: [lk-ops]\n    role: operator\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	redirect := "https://keys.example.com/console/oidc/callback"
	args := []string{"--oidc-issuer", issuer, "--oidc-client-id", "latchkey", "--oidc-redirect-url", redirect,
		"--oidc-role-map", roles, "--console-access-key-signin=false"}
	s := startServer(t, t.TempDir(), args...)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, err := http.Get(s.endpoint + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `id="sso"`) || strings.Contains(string(page), "secret_access_key") {
		t.Fatalf("sign-in page: want the SSO button and no key form:\n%s", page)
	}
	resp, err = noRedirect.PostForm(s.endpoint+"/console/signin", url.Values{"access_key_id": {"LKIAAAAAAAAAAAAAAAAA"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("key sign-in when turned off: %d, want 403", resp.StatusCode)
	}

	resp, err = noRedirect.Get(s.endpoint + "/console/oidc/login?next=/console/keys")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc.String(), issuer) {
		t.Fatalf("SSO start: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	q := loc.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" ||
		q.Get("client_id") != "latchkey" || q.Get("redirect_uri") != redirect || q.Get("response_type") != "code" {
		t.Errorf("authorization request %v: want PKCE S256, state, nonce, the client and its redirect URL", q)
	}
	if len(resp.Cookies()) == 0 || !resp.Cookies()[0].HttpOnly {
		t.Errorf("no HttpOnly flow cookie: %v", resp.Header.Values("Set-Cookie"))
	}
	s.stop()
	if strings.Contains(s.stdout.String()+s.stderr.String(), secret) {
		t.Error("the client secret reached serve's output")
	}

	// An issuer that does not answer: serve stops, naming the flag.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	args[1] = dead.URL
	cmd := exec.Command(binPath, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_DATA_HOME=", "LATCHKEY_SHARED_CREDENTIALS_FILE=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--oidc-issuer") || strings.Contains(string(out), secret) {
		t.Errorf("serve with an issuer that does not answer: %v\n%s", err, out)
	}
}
