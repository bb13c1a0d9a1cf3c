package httpapi_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/keyformat"
)

func digestHex(secret string) string {
	d := keyformat.Sum(secret)
	return hex.EncodeToString(d[:])
}

func (e *env) keyStatus(t *testing.T, id string) *latchkey.AccessKey {
	t.Helper()
	k, err := e.svc.GetAccessKey(t.Context(), latchkey.System(), id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestLeakReportAuthenticated(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, "default", "billing")
	k := e.mustKey(t, "default", "billing")
	e.mustApp(t, "other", "ledger")
	foreign := e.mustKey(t, "other", "ledger")
	unknown, _ := keyformat.NewSecret()

	body := fmt.Sprintf(`{"findings":[{"digest":%q,"where":"https://github.com/acme/app/commit/abc"},{"secret":%q},{"digest":%q},{"secret":"lksk_nope"}]}`,
		digestHex(k.Secret), unknown, digestHex(foreign.Secret))
	r := e.do(t, "POST", "/v1/leaks", bearer(e.admin), body)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var out struct {
		Results []struct {
			Status      string `json:"status"`
			AccessKeyID string `json:"access_key_id"`
		} `json:"results"`
	}
	r.decode(t, &out)
	want := []string{"deactivated", "unknown", "unknown", "unknown"}
	for i, w := range want {
		if out.Results[i].Status != w {
			t.Errorf("finding %d: %+v, want %s", i, out.Results[i], w)
		}
	}
	if out.Results[0].AccessKeyID != k.ID || out.Results[2].AccessKeyID != "" {
		t.Errorf("results name keys they should not: %+v", out.Results)
	}
	got := e.keyStatus(t, k.ID)
	if got.Status != latchkey.StatusInactive || got.Exposed == nil || !strings.Contains(got.Exposed.Where, "acme/app/commit/abc") {
		t.Errorf("reported key: status %s, exposed %+v", got.Status, got.Exposed)
	}
	if e.keyStatus(t, foreign.ID).Status != latchkey.StatusActive {
		t.Error("another account's key was touched by an admin's report")
	}
	var exposed int
	for _, ev := range e.auditEvents(t) {
		if ev.Action == latchkey.ActionAccessKeyExposed && ev.Target == k.ID {
			exposed++
			if ev.Actor != "alice" {
				t.Errorf("audit actor %q, want alice", ev.Actor)
			}
		}
	}
	if exposed != 1 {
		t.Errorf("%d exposure audit events, want 1", exposed)
	}
	// a second report of the same key says so and changes nothing more
	r = e.do(t, "POST", "/v1/leaks", bearer(e.admin), fmt.Sprintf(`{"findings":[{"digest":%q}]}`, digestHex(k.Secret)))
	r.decode(t, &out)
	if out.Results[0].Status != "already_inactive" {
		t.Errorf("second report: %+v", out.Results)
	}
	for _, tc := range []struct {
		name   string
		as     auth
		body   string
		status int
	}{
		{"viewer", bearer(e.viewer), `{"findings":[{"secret":"x"}]}`, 403},
		{"bad digest", bearer(e.admin), `{"findings":[{"digest":"zz"}]}`, 400},
		{"both", bearer(e.admin), fmt.Sprintf(`{"findings":[{"digest":%q,"secret":%q}]}`, digestHex(unknown), unknown), 400},
		{"empty", bearer(e.admin), `{"findings":[]}`, 400},
		{"bad credential", header("X-Api-Key", "lksk_nope"), `{"findings":[{"secret":"x"}]}`, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := e.do(t, "POST", "/v1/leaks", tc.as, tc.body); r.status != tc.status {
				t.Errorf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
		})
	}
}

func TestLeakReportAnonymousLearnsNothing(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, "default", "billing")
	k := e.mustKey(t, "default", "billing")
	unknown, _ := keyformat.NewSecret()
	live := e.do(t, "POST", "/v1/leaks", noAuth, fmt.Sprintf(`{"findings":[{"secret":%q,"where":"pastebin"}]}`, k.Secret))
	miss := e.do(t, "POST", "/v1/leaks", noAuth, fmt.Sprintf(`{"findings":[{"secret":%q,"where":"pastebin"}]}`, unknown))
	if live.status != 202 || miss.status != 202 || string(live.body) != string(miss.body) {
		t.Fatalf("live %d %s / unknown %d %s: the answers must be the same", live.status, live.body, miss.status, miss.body)
	}
	if got := e.keyStatus(t, k.ID); got.Status != latchkey.StatusInactive || got.Exposed == nil {
		t.Errorf("anonymously reported key: %s, exposed %+v", got.Status, got.Exposed)
	}
	if r := e.do(t, "POST", "/v1/leaks", noAuth, fmt.Sprintf(`{"findings":[{"digest":%q}]}`, digestHex(unknown))); r.status != 400 {
		t.Errorf("anonymous digest: status %d, want 400", r.status)
	}
	// rate limited per address: 10 a minute by default, 3 used above
	var last int
	for range 10 {
		last = e.do(t, "POST", "/v1/leaks", noAuth, fmt.Sprintf(`{"findings":[{"secret":%q}]}`, unknown)).status
	}
	if last != http.StatusTooManyRequests {
		t.Errorf("after 13 anonymous reports: status %d, want 429", last)
	}
}

func TestLeakCheck(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, "default", "billing")
	active := e.mustKey(t, "default", "billing")
	inactive := e.mustKey(t, "default", "billing")
	e.mustDeactivate(t, inactive.ID)
	e.mustApp(t, "other", "ledger")
	foreign := e.mustKey(t, "other", "ledger")
	body := fmt.Sprintf(`{"digests":[%q,%q,%q,%q]}`, digestHex(active.Secret), strings.ToUpper(digestHex(inactive.Secret)),
		digestHex(foreign.Secret), strings.Repeat("0", 64))
	r := e.do(t, "POST", "/v1/leaks/check", bearer(e.viewer), body)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var out struct {
		Results []struct {
			Status      string `json:"status"`
			AccessKeyID string `json:"access_key_id"`
		} `json:"results"`
	}
	r.decode(t, &out)
	want := []string{"Active", "Inactive", "unknown", "unknown"}
	for i, w := range want {
		if out.Results[i].Status != w {
			t.Errorf("digest %d: %+v, want %s", i, out.Results[i], w)
		}
	}
	if r := e.do(t, "POST", "/v1/leaks/check", noAuth, body); r.status != 401 {
		t.Errorf("anonymous check: %d, want 401", r.status)
	}
}

func TestLeakReportGitHub(t *testing.T) {
	e := newEnv(t)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	doc, _ := json.Marshal(map[string]any{"public_keys": []map[string]any{{
		"key_identifier": "gh-test-1", "key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "is_current": true}}})
	keys, err := httpapi.ParseGitHubKeys(doc)
	if err != nil {
		t.Fatal(err)
	}
	e.api.Leaks.GitHubKeys = keys
	e.mustApp(t, "default", "billing")
	k := e.mustKey(t, "default", "billing")
	body := []byte(fmt.Sprintf(`[{"token":%q,"type":"latchkey_secret_access_key","url":"https://github.com/acme/app/blob/abc/config.env","source":"content"}]`, k.Secret))
	sign := func(b []byte) string {
		h := sha256.Sum256(b)
		sig, err := ecdsa.SignASN1(rand.Reader, priv, h[:])
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(sig)
	}
	post := func(id, sig string, b []byte) *resp {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", e.ts.URL+"/v1/leaks/github", strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Github-Public-Key-Identifier", id)
		req.Header.Set("Github-Public-Key-Signature", sig)
		return e.send(t, req)
	}
	if r := post("gh-test-1", sign([]byte("other body")), body); r.status != 401 {
		t.Fatalf("wrong signature: %d, want 401", r.status)
	}
	if r := post("gh-unknown", sign(body), body); r.status != 401 {
		t.Fatalf("unknown key id: %d, want 401", r.status)
	}
	if e.keyStatus(t, k.ID).Status != latchkey.StatusActive {
		t.Fatal("an unsigned report changed the key")
	}
	r := post("gh-test-1", sign(body), body)
	if r.status != 200 || strings.TrimSpace(string(r.body)) != "[]" {
		t.Fatalf("signed report: %d %s", r.status, r.body)
	}
	got := e.keyStatus(t, k.ID)
	if got.Status != latchkey.StatusInactive || got.Exposed == nil || !strings.Contains(got.Exposed.Where, "config.env") {
		t.Errorf("key after GitHub report: %s %+v", got.Status, got.Exposed)
	}
}
