package httpapi_test

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
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
	sign := e.githubSigner(t)
	e.mustApp(t, "default", "billing")
	k := e.mustKey(t, "default", "billing")
	body := []byte(fmt.Sprintf(`[{"token":%q,"type":"latchkey_secret_access_key","url":"https://github.com/acme/app/blob/abc/config.env","source":"content"}]`, k.Secret))
	if r := e.postGitHub(t, githubKeyID, sign([]byte("other body")), body); r.status != 401 {
		t.Fatalf("wrong signature: %d, want 401", r.status)
	}
	if r := e.postGitHub(t, "gh-unknown", sign(body), body); r.status != 401 {
		t.Fatalf("unknown key id: %d, want 401", r.status)
	}
	if e.keyStatus(t, k.ID).Status != latchkey.StatusActive {
		t.Fatal("an unsigned report changed the key")
	}
	r := e.postGitHub(t, githubKeyID, sign(body), body)
	if r.status != 200 || strings.TrimSpace(string(r.body)) != "[]" {
		t.Fatalf("signed report: %d %s", r.status, r.body)
	}
	got := e.keyStatus(t, k.ID)
	if got.Status != latchkey.StatusInactive || got.Exposed == nil || !strings.Contains(got.Exposed.Where, "config.env") {
		t.Errorf("key after GitHub report: %s %+v", got.Status, got.Exposed)
	}
}

// TestLeakReportReach: a finding with the secret reaches any key, whoever
// reports it; a finding with a digest reaches only keys its reporter could
// deactivate itself, and an operator's key reported by an admin's digest
// is only flagged. A reporter is told only about keys it may read.
func TestLeakReportReach(t *testing.T) {
	for _, tc := range []struct {
		name       string
		reporter   func(e *env) cred
		leaked     func(t *testing.T, e *env) cred
		byDigest   bool
		want       string // the reporter's result
		wantStatus latchkey.Status
		exposed    bool
	}{
		{"an admin's digest of an operator's key flags it", func(e *env) cred { return e.admin },
			func(t *testing.T, e *env) cred { return e.operator }, true, "flagged", latchkey.StatusActive, true},
		{"an admin's digest of another admin's key deactivates it", func(e *env) cred { return e.admin },
			func(t *testing.T, e *env) cred {
				return e.newPrincipal(t, latchkey.DefaultAccount, "adam", latchkey.RoleAdmin)
			}, true, "deactivated", latchkey.StatusInactive, true},
		{"an operator's digest of another operator's key deactivates it", func(e *env) cred { return e.operator },
			func(t *testing.T, e *env) cred { return e.newPrincipal(t, "other", "otto", latchkey.RoleOperator) }, true, "deactivated", latchkey.StatusInactive, true},
		{"an admin's digest of another account's key does nothing", func(e *env) cred { return e.admin },
			func(t *testing.T, e *env) cred { return e.otherAdmin }, true, "unknown", latchkey.StatusActive, false},
		{"an admin's secret of another account's admin key deactivates it unseen", func(e *env) cred { return e.admin },
			func(t *testing.T, e *env) cred { return e.otherAdmin }, false, "unknown", latchkey.StatusInactive, true},
		{"an admin's secret of another account's application key deactivates it unseen", func(e *env) cred { return e.admin },
			func(t *testing.T, e *env) cred {
				e.mustApp(t, "other", "ledger")
				k := e.mustKey(t, "other", "ledger")
				return cred{k.ID, k.Secret}
			}, false, "unknown", latchkey.StatusInactive, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			leaked := tc.leaked(t, e)
			finding := map[string]string{"secret": leaked.secret, "where": "a pastebin"}
			if tc.byDigest {
				finding = map[string]string{"digest": digestHex(leaked.secret), "where": "a pastebin"}
			}
			r := e.do(t, "POST", "/v1/leaks", bearer(tc.reporter(e)), jsonBody(t, map[string]any{"findings": []any{finding}}))
			e.expect(t, apiCase{method: "POST", path: "/v1/leaks", status: http.StatusOK}, r)
			var out struct {
				Results []manage.LeakResult `json:"results"`
			}
			r.decode(t, &out)
			wantID := leaked.id
			if tc.want == "unknown" {
				wantID = ""
			}
			if len(out.Results) != 1 || out.Results[0].Status != tc.want || out.Results[0].AccessKeyID != wantID {
				t.Errorf("results %+v, want %s %s", out.Results, tc.want, wantID)
			}
			k := e.storedKey(t, leaked.id)
			if k.Status != tc.wantStatus || (k.Exposed != nil) != tc.exposed {
				t.Errorf("key %s (%s): status %s, exposed %+v; want %s, exposed %v", leaked.id, k.Owner(), k.Status, k.Exposed, tc.wantStatus, tc.exposed)
			}
		})
	}
}

// TestLeakReportOwnOperatorKey: the bootstrap operator reports its own
// secret. The key is deactivated as any other would be (holding the secret
// is all a report needs; whoever found it, it must stop working), the
// answer names it, and the next call with it is refused. The audit log and
// key.exposed record it, and the server logs an error when no Active
// operator key is left (on both stores: it asks the store). With a second
// operator, that one recovers by making the principal a new key.
func TestLeakReportOwnOperatorKey(t *testing.T) {
	for _, tc := range []struct {
		name   string
		second bool
		opts   []func(*envOptions)
	}{
		{"sqlite, one operator", false, nil},
		{"sqlite, second operator", true, nil},
		{"postgres, one operator", false, []func(*envOptions){onPostgres}},
		{"postgres, second operator", true, []func(*envOptions){onPostgres}},
	} {
		second := tc.second
		t.Run(tc.name, func(t *testing.T) {
			var logBuf syncBuffer
			e := newEnv(t, append(tc.opts, withLogger(slog.New(slog.NewJSONHandler(&logBuf, nil))))...)
			if _, err := e.svc.CreateWebhook(t.Context(), e.sys(), latchkey.DefaultAccount, latchkey.NewWebhook{URL: "https://hooks.example.com/latchkey"}); err != nil {
				t.Fatal(err)
			}
			var otto cred
			if second {
				otto = e.newPrincipal(t, latchkey.DefaultAccount, "otto", latchkey.RoleOperator)
			}
			r := e.do(t, "POST", "/v1/leaks", bearer(e.operator),
				jsonBody(t, map[string]any{"findings": []map[string]string{{"secret": e.operator.secret, "where": "my shell history"}}}))
			e.expect(t, apiCase{method: "POST", path: "/v1/leaks", status: http.StatusOK}, r)
			var out struct {
				Results []manage.LeakResult `json:"results"`
			}
			r.decode(t, &out)
			if len(out.Results) != 1 || out.Results[0] != (manage.LeakResult{Status: "deactivated", AccessKeyID: e.operator.id}) {
				t.Errorf("results %+v, want the operator's own key deactivated", out.Results)
			}
			e.run(t, []apiCase{{name: "the leaked key is refused", method: "GET", path: "/v1/accounts", as: bearer(e.operator),
				status: http.StatusUnauthorized, code: latchkey.EUNAUTHORIZED}})

			var audited []*latchkey.AuditEvent
			for _, ev := range e.auditEvents(t) {
				if ev.Action == latchkey.ActionAccessKeyExposed {
					audited = append(audited, ev)
				}
			}
			if len(audited) != 1 || audited[0].Target != e.operator.id || audited[0].Actor != manage.BootstrapPrincipal || audited[0].ActorKeyID != e.operator.id {
				t.Errorf("exposure audit events %+v, want one for %s by %s with that key", audited, e.operator.id, manage.BootstrapPrincipal)
			}
			events := e.outbox(t, latchkey.EventKeyExposed)
			if len(events) != 1 || !strings.Contains(string(events[0]), `"principal":"`+manage.BootstrapPrincipal+`"`) ||
				!strings.Contains(string(events[0]), `"status":"Inactive"`) {
				t.Errorf("key.exposed events %s, want one for the operator's key, Inactive", events)
			}

			logged := string(logBuf.Bytes())
			if strings.Contains(logged, e.operator.secret[len(keyformat.SecretPrefix)+4:]) {
				t.Error("the log holds the operator's secret")
			}
			if noOperator := strings.Contains(logged, "the last Active operator key"); noOperator == second {
				t.Errorf("error logged for the last operator key: %v, want %v", noOperator, !second)
			}
			if !second {
				return
			}
			r = e.do(t, "POST", "/v1/principals/"+manage.BootstrapPrincipal+"/access-keys", bearer(otto), `{"description":"after the leak"}`)
			e.expect(t, apiCase{method: "POST", path: "/v1/principals/x/access-keys", status: http.StatusCreated}, r)
			var k manage.CreatedKey
			r.decode(t, &k)
			e.run(t, []apiCase{
				{name: "the new key works", method: "GET", path: "/v1/accounts", as: bearer(cred{k.ID, k.Secret}), status: http.StatusOK},
				{name: "the leaked key can go", method: "DELETE", path: "/v1/access-keys/" + e.operator.id, as: bearer(cred{k.ID, k.Secret}), status: http.StatusNoContent},
			})
		})
	}
}
