package httpapi_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
)

// githubKeyID names the GitHub secret scanning key githubSigner makes.
const githubKeyID = "gh-test-1"

// githubSigner configures the server with a GitHub secret scanning key made
// at run time (as githubKeyID) and returns a function that signs a body
// with it, as GitHub does.
func (e *env) githubSigner(t *testing.T) (sign func(body []byte) string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(map[string]any{"public_keys": []map[string]any{{
		"key_identifier": githubKeyID, "key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "is_current": true}}})
	if e.api.Leaks.GitHubKeys, err = httpapi.ParseGitHubKeys(doc); err != nil {
		t.Fatal(err)
	}
	return func(body []byte) string {
		t.Helper()
		h := sha256.Sum256(body)
		sig, err := ecdsa.SignASN1(rand.Reader, priv, h[:])
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(sig)
	}
}

// postGitHub sends a GitHub secret scanning request with the given key
// identifier and signature.
func (e *env) postGitHub(t *testing.T, keyID, sig string, body []byte) *resp {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", e.ts.URL+"/v1/leaks/github", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Github-Public-Key-Identifier", keyID)
	req.Header.Set("Github-Public-Key-Signature", sig)
	return e.send(t, req)
}

// outbox returns the bodies of the webhook events of type typ waiting in
// the outbox, oldest first. It claims their deliveries, as a dispatcher
// would.
func (e *env) outbox(t *testing.T, typ string) []json.RawMessage {
	t.Helper()
	var out []json.RawMessage
	err := e.store.Update(t.Context(), func(tx latchkey.Tx) error {
		ds, err := tx.ClaimDeliveries(t.Context(), e.clock.Now().Add(time.Minute), time.Hour, 1000)
		for _, d := range ds {
			if d.Delivery.EventType == typ {
				out = append(out, d.Body)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// leakedWhere is the where text of a report: it quotes the leaked secret
// (as found, and with its prefix in capitals) and other credentials, all
// of which must be masked before the text is stored, audited or sent.
type leakedWhere struct {
	text   string
	hidden []string // what must not appear in the stored text
}

func newLeakedWhere(t *testing.T, secret string) leakedWhere {
	t.Helper()
	bearerToken := newSecret(t)[len(keyformat.SecretPrefix):45] // 40 base62 characters, not a latchkey secret
	password := "hunter2-" + newSecret(t)[10:18]
	return leakedWhere{
		text: fmt.Sprintf("https://paste.example/raw/q1?token=%s line 3: %s (again as LKSK_%s), Authorization: Bearer %s, password=%s",
			secret, secret, secret[len(keyformat.SecretPrefix):], bearerToken, password),
		hidden: []string{secret, secret[len(keyformat.SecretPrefix)+4:], bearerToken, password},
	}
}

// checkMasked fails if text holds anything of w.hidden. The failure shows
// the text with each such credential replaced by its number, so that even
// a key made for the test is not printed.
func (w leakedWhere) checkMasked(t *testing.T, what, text string) {
	t.Helper()
	shown, found := text, false
	for i, h := range w.hidden {
		if strings.Contains(text, h) {
			found = true
			shown = strings.ReplaceAll(shown, h, fmt.Sprintf("<credential %d>", i))
		}
	}
	if found {
		t.Errorf("%s holds credentials that should be masked: %s", what, shown)
	}
}

// TestLeakedKeyOnEveryChannel reports an application key, an admin
// principal's key and the bootstrap operator's key through every channel
// that flags keys (an anonymous report, an admin's report, GitHub secret
// scanning, a secret in a URL) under both leak actions. Each time the key
// is flagged exposed with a masked where, gets the leak action (a URL only
// flags), has one audit event and one key.exposed webhook event, neither
// holding a secret; a deactivated principal can no longer call the
// management API, a flagged one still can.
func TestLeakedKeyOnEveryChannel(t *testing.T) {
	type channel struct {
		name string
		// report sends the leak and checks the answer.
		report func(t *testing.T, e *env, leaked cred, where string)
		// onlyFlags: the URL tripwire flags whatever --leak-action says.
		onlyFlags bool
		// quotesWhere: the report's where text is the caller's.
		quotesWhere bool
	}
	channels := []channel{
		{name: "anonymous", quotesWhere: true, report: func(t *testing.T, e *env, leaked cred, where string) {
			body := func(secret string) string {
				return jsonBody(t, map[string]any{"findings": []map[string]string{{"secret": secret, "where": where}}})
			}
			miss := e.do(t, "POST", "/v1/leaks", noAuth, body(newSecret(t)))
			hit := e.do(t, "POST", "/v1/leaks", noAuth, body(leaked.secret))
			if hit.status != http.StatusAccepted || hit.status != miss.status || string(hit.body) != string(miss.body) {
				t.Fatalf("anonymous answers: live key %d %s, unknown %d %s; they must be the same", hit.status, hit.body, miss.status, miss.body)
			}
		}},
		{name: "admin", quotesWhere: true, report: func(t *testing.T, e *env, leaked cred, where string) {
			reporter := e.newPrincipal(t, latchkey.DefaultAccount, "rita", latchkey.RoleAdmin)
			r := e.do(t, "POST", "/v1/leaks", bearer(reporter),
				jsonBody(t, map[string]any{"findings": []map[string]string{{"secret": leaked.secret, "where": where}}}))
			e.expect(t, apiCase{method: "POST", path: "/v1/leaks", status: http.StatusOK}, r)
			var out struct {
				Results []manage.LeakResult `json:"results"`
			}
			r.decode(t, &out)
			want := "deactivated"
			if e.api.Leaks.Action == manage.LeakFlag {
				want = "flagged"
			}
			if len(out.Results) != 1 || out.Results[0].Status != want || out.Results[0].AccessKeyID != leaked.id {
				t.Errorf("admin's report: results %+v, want %s %s", out.Results, want, leaked.id)
			}
		}},
		{name: "GitHub", quotesWhere: true, report: func(t *testing.T, e *env, leaked cred, where string) {
			sign := e.githubSigner(t)
			body, _ := json.Marshal([]httpapi.GitHubMatch{{Token: leaked.secret, Type: "latchkey_secret_access_key", URL: where, Source: "content"}})
			r := e.postGitHub(t, githubKeyID, sign(body), body)
			e.expect(t, apiCase{method: "POST", path: "/v1/leaks/github", status: http.StatusOK}, r)
			if strings.TrimSpace(string(r.body)) != "[]" {
				t.Errorf("GitHub's answer %s, want []", r.body)
			}
		}},
		{name: "URL", onlyFlags: true, report: func(t *testing.T, e *env, leaked cred, where string) {
			r := e.do(t, "GET", "/v1/applications?q="+leaked.secret, noAuth, "")
			e.expect(t, apiCase{method: "GET", path: "/v1/applications", status: http.StatusBadRequest, code: latchkey.ECREDSINURL}, r)
		}},
	}
	owners := []struct {
		name   string
		leaked func(t *testing.T, e *env) cred
	}{
		{"application key", func(t *testing.T, e *env) cred {
			e.mustApp(t, latchkey.DefaultAccount, "billing")
			k := e.mustKey(t, latchkey.DefaultAccount, "billing")
			return cred{k.ID, k.Secret}
		}},
		{"admin principal", func(t *testing.T, e *env) cred { return e.admin }},
		{"operator principal", func(t *testing.T, e *env) cred { return e.operator }},
	}
	for _, action := range []manage.LeakAction{manage.LeakDeactivate, manage.LeakFlag} {
		for _, ch := range channels {
			for _, owner := range owners {
				t.Run(fmt.Sprintf("%s/%s/%s", ch.name, owner.name, action), func(t *testing.T) {
					e := newEnv(t)
					e.api.Leaks.Action = action
					if _, err := e.svc.CreateWebhook(t.Context(), e.sys(), latchkey.DefaultAccount,
						latchkey.NewWebhook{URL: "https://hooks.example.com/latchkey", Events: []string{latchkey.EventKeyExposed}}); err != nil {
						t.Fatal(err)
					}
					leaked := owner.leaked(t, e)
					where := newLeakedWhere(t, leaked.secret)
					ch.report(t, e, leaked, where.text)

					k := e.storedKey(t, leaked.id)
					if k.Exposed == nil {
						t.Fatalf("key %s (%s) is not flagged exposed", leaked.id, k.Owner())
					}
					where.checkMasked(t, "the stored where", k.Exposed.Where)
					if ch.quotesWhere && !strings.Contains(k.Exposed.Where, keyformat.Mask(leaked.secret)) {
						t.Errorf("the stored where does not show the secret masked as %s", keyformat.Mask(leaked.secret))
					}

					deactivated := action == manage.LeakDeactivate && !ch.onlyFlags
					wantStatus, wantCall := latchkey.StatusActive, http.StatusOK
					if deactivated {
						wantStatus, wantCall = latchkey.StatusInactive, http.StatusUnauthorized
					}
					if k.Status != wantStatus {
						t.Errorf("status %s, want %s", k.Status, wantStatus)
					}
					if k.Principal != "" {
						if r := e.do(t, "GET", "/v1/applications", bearer(leaked), ""); r.status != wantCall {
							t.Errorf("the leaked principal's management call: %d, want %d: %s", r.status, wantCall, r.body)
						}
					} else if res := e.verifier.Verify(&verify.Request{Secret: leaked.secret}); res.Valid() == deactivated {
						t.Errorf("the leaked application key verifies as %s", res.Code)
					}

					var exposed int
					for _, ev := range e.auditEvents(t) {
						if ev.Action != latchkey.ActionAccessKeyExposed || ev.Target != leaked.id {
							continue
						}
						exposed++
						b, _ := json.Marshal(ev)
						where.checkMasked(t, "the audit event", string(b))
					}
					if exposed != 1 {
						t.Errorf("%d %s audit events for the key, want 1", exposed, latchkey.ActionAccessKeyExposed)
					}

					events := e.outbox(t, latchkey.EventKeyExposed)
					if len(events) != 1 {
						t.Fatalf("%d %s webhook events, want 1", len(events), latchkey.EventKeyExposed)
					}
					where.checkMasked(t, "the webhook event", string(events[0]))
					var ev struct {
						Data struct {
							AccessKey struct {
								ID      string             `json:"access_key_id"`
								Status  latchkey.Status    `json:"status"`
								Exposed *latchkey.Exposure `json:"exposed"`
							} `json:"access_key"`
						} `json:"data"`
					}
					if err := json.Unmarshal(events[0], &ev); err != nil {
						t.Fatal(err)
					}
					got := ev.Data.AccessKey
					if got.ID != leaked.id || got.Status != wantStatus || got.Exposed == nil || got.Exposed.Where != k.Exposed.Where {
						t.Errorf("webhook event %s: want key %s, %s, exposed at the stored where", events[0], leaked.id, wantStatus)
					}
				})
			}
		}
	}
}
