package httpapi_test

import (
	"bytes"
	"encoding/csv"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
)

func TestCredentialReport(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	k := e.mustKey(t, latchkey.DefaultAccount, "billing")
	e.mustApp(t, "other", "ledger")
	e.mustKey(t, "other", "ledger")
	e.clock.Advance(31 * latchkey.Day)
	ok := func(t *testing.T, r *resp) {
		var rep manage.CredentialReport
		r.decode(t, &rep)
		var row *manage.CredentialRow
		for _, x := range rep.Keys {
			if x.Account != rep.Account {
				t.Errorf("row of account %s in the report of %s", x.Account, rep.Account)
			}
			if x.AccessKeyID == k.ID {
				row = x
			}
		}
		if row == nil || row.AgeDays != 31 || row.Restricted || row.LastUsedAt != nil {
			t.Fatalf("row of the key: %+v", row)
		}
		if rep.Summary["unrestricted"] != 1 {
			t.Errorf("summary %v", rep.Summary)
		}
	}
	e.run(t, []apiCase{
		{name: "set a 30-day policy", method: "PUT", path: "/v1/policy", as: bearer(e.admin), body: `{"max_key_age":"30d","warn_before":"7d"}`, status: http.StatusOK,
			check: func(t *testing.T, r *resp) {
				var v manage.PolicyView
				r.decode(t, &v)
				if v.Policy.MaxKeyAge.String() != "30d" || v.Policy.UnusedAfter.String() != "30d" || v.Defaults.MaxKeyAge.String() != "90d" {
					t.Errorf("policy view %+v", v)
				}
			}},
		{name: "viewer reads the policy", method: "GET", path: "/v1/policy", as: bearer(e.viewer), status: http.StatusOK},
		{name: "viewer may not set it", method: "PUT", path: "/v1/policy", as: bearer(e.viewer), body: `{}`, status: http.StatusForbidden, code: latchkey.EFORBIDDEN},
		{name: "bad period", method: "PUT", path: "/v1/policy", as: bearer(e.admin), body: `{"max_key_age":"ninety"}`, status: http.StatusBadRequest, code: latchkey.EINVALID},
		{name: "unknown field", method: "PUT", path: "/v1/policy", as: bearer(e.admin), body: `{"max_age":"30d"}`, status: http.StatusBadRequest, code: latchkey.EMALFORMED},
		{name: "another account's policy", method: "GET", path: "/v1/policy?account=other", as: bearer(e.admin), status: http.StatusNotFound, code: latchkey.ENOTFOUND},
		{name: "no credential", method: "GET", path: "/v1/policy", status: http.StatusUnauthorized, code: latchkey.EUNAUTHORIZED},
		{name: "report as JSON", method: "GET", path: "/v1/credential-report", as: bearer(e.viewer), status: http.StatusOK, check: ok},
		{name: "report of another account", method: "GET", path: "/v1/credential-report?account=other", as: bearer(e.admin), status: http.StatusNotFound, code: latchkey.ENOTFOUND},
		{name: "report in a bad format", method: "GET", path: "/v1/credential-report?format=xml", as: bearer(e.admin), status: http.StatusBadRequest, code: latchkey.EINVALID},
		{name: "verifier", method: "GET", path: "/v1/credential-report", as: bearer(e.verifierP), status: http.StatusForbidden, code: latchkey.EFORBIDDEN},
		{name: "list shows findings", method: "GET", path: "/v1/applications/billing/access-keys", as: bearer(e.viewer), status: http.StatusOK,
			check: func(t *testing.T, r *resp) {
				if !strings.Contains(string(r.body), `"findings":["rotation_due","unused","unrestricted"]`) {
					t.Errorf("list body %s", r.body)
				}
			}},
	})
	for _, tc := range []struct {
		name, path, accept string
	}{{"format=csv", "/v1/credential-report?format=csv", ""}, {"Accept: text/csv", "/v1/credential-report", "text/csv"}} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, "GET", tc.path, both(bearer(e.admin), header("Accept", tc.accept)), "")
			if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
				t.Fatalf("%d %s", r.status, r.header.Get("Content-Type"))
			}
			recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(recs[0], ",") != strings.Join(manage.CSVHeader, ",") {
				t.Errorf("header %v", recs[0])
			}
			found := false
			for _, rec := range recs[1:] {
				if rec[3] == k.ID {
					found = true
					if rec[1] != "billing" || rec[6] != "31" || rec[len(rec)-1] != "rotation_due;unused;unrestricted" {
						t.Errorf("row %v", rec)
					}
				}
			}
			if !found {
				t.Error("the key is not in the CSV")
			}
		})
	}
}

// TestWebhooks creates a webhook, pings a real local receiver through the
// server's dispatcher, and checks that the secret is returned once and
// never again, nor logged.
func TestWebhooks(t *testing.T) {
	var logBuf syncBuffer
	e := newEnv(t, withLogger(slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	d := manage.NewDispatcher(e.store, slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	d.Now = e.clock.Now
	e.api.Webhooks = d
	var (
		mu     sync.Mutex
		secret string
		calls  []string
	)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := latchkey.VerifyWebhook(secret, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body, e.clock.Now()); err != nil {
			t.Errorf("signature: %v", err)
		}
		calls = append(calls, string(body))
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rcv.Close)

	var id string
	var seen [][]byte
	e.run(t, []apiCase{
		{name: "URL with credentials", method: "POST", path: "/v1/webhooks", as: bearer(e.admin), body: `{"url":"https://u:p@example.com/"}`, status: http.StatusBadRequest, code: latchkey.EINVALID},
		{name: "not http", method: "POST", path: "/v1/webhooks", as: bearer(e.admin), body: `{"url":"file:///etc/passwd"}`, status: http.StatusBadRequest, code: latchkey.EINVALID},
		{name: "unknown event", method: "POST", path: "/v1/webhooks", as: bearer(e.admin), body: `{"url":"https://example.com/","events":["key.eaten"]}`, status: http.StatusBadRequest, code: latchkey.EINVALID},
		{name: "viewer", method: "POST", path: "/v1/webhooks", as: bearer(e.viewer), body: `{"url":"https://example.com/"}`, status: http.StatusForbidden, code: latchkey.EFORBIDDEN},
		{name: "create", method: "POST", path: "/v1/webhooks", as: bearer(e.admin), body: `{"url":"` + rcv.URL + `/hook","description":"ops"}`, status: http.StatusCreated,
			check: func(t *testing.T, r *resp) {
				var w manage.CreatedWebhook
				r.decode(t, &w)
				mu.Lock()
				secret, id = w.Secret, w.ID
				mu.Unlock()
				if !strings.HasPrefix(secret, "whsec_") || !manage.ValidWebhookID(id) {
					t.Fatalf("created %s", r.body)
				}
			}},
	})
	e.run(t, []apiCase{
		{name: "list", method: "GET", path: "/v1/webhooks", as: bearer(e.viewer), status: http.StatusOK, check: func(t *testing.T, r *resp) { seen = append(seen, r.body) }},
		{name: "get", method: "GET", path: "/v1/webhooks/" + id, as: bearer(e.viewer), status: http.StatusOK, check: func(t *testing.T, r *resp) { seen = append(seen, r.body) }},
		{name: "get from another account", method: "GET", path: "/v1/webhooks/" + id, as: bearer(e.otherAdmin), status: http.StatusNotFound, code: latchkey.ENOTFOUND},
		{name: "get unknown", method: "GET", path: "/v1/webhooks/wh_aaaaaaaaaaaaaaaa", as: bearer(e.admin), status: http.StatusNotFound, code: latchkey.ENOTFOUND},
		{name: "ping", method: "POST", path: "/v1/webhooks/" + id + "/ping", as: bearer(e.admin), status: http.StatusOK, check: func(t *testing.T, r *resp) {
			seen = append(seen, r.body)
			if !strings.Contains(string(r.body), `"status":"delivered"`) || !strings.Contains(string(r.body), `"response_code":200`) {
				t.Errorf("ping %s", r.body)
			}
		}},
		{name: "viewer may not ping", method: "POST", path: "/v1/webhooks/" + id + "/ping", as: bearer(e.viewer), status: http.StatusForbidden, code: latchkey.EFORBIDDEN},
		{name: "deliveries", method: "GET", path: "/v1/webhooks/" + id + "/deliveries?status=delivered", as: bearer(e.viewer), status: http.StatusOK, check: func(t *testing.T, r *resp) {
			seen = append(seen, r.body)
			if !strings.Contains(string(r.body), `"event_type":"webhook.ping"`) {
				t.Errorf("deliveries %s", r.body)
			}
		}},
		{name: "deliveries, bad status", method: "GET", path: "/v1/webhooks/" + id + "/deliveries?status=lost", as: bearer(e.viewer), status: http.StatusBadRequest, code: latchkey.EINVALID},
		{name: "disable", method: "PATCH", path: "/v1/webhooks/" + id, as: bearer(e.admin), body: `{"enabled":false}`, status: http.StatusOK, check: func(t *testing.T, r *resp) { seen = append(seen, r.body) }},
		{name: "patch a bad URL", method: "PATCH", path: "/v1/webhooks/" + id, as: bearer(e.admin), body: `{"url":"ftp://x"}`, status: http.StatusBadRequest, code: latchkey.EINVALID},
		{name: "audit", method: "GET", path: "/v1/audit-events", as: bearer(e.admin), status: http.StatusOK, check: func(t *testing.T, r *resp) { seen = append(seen, r.body) }},
		{name: "delete by viewer", method: "DELETE", path: "/v1/webhooks/" + id, as: bearer(e.viewer), status: http.StatusForbidden, code: latchkey.EFORBIDDEN},
		{name: "delete", method: "DELETE", path: "/v1/webhooks/" + id, as: bearer(e.admin), status: http.StatusNoContent},
		{name: "deliveries of a deleted webhook", method: "GET", path: "/v1/webhooks/" + id + "/deliveries", as: bearer(e.admin), status: http.StatusNotFound, code: latchkey.ENOTFOUND},
	})
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 || !strings.Contains(calls[0], `"type":"webhook.ping"`) {
		t.Errorf("receiver calls %v", calls)
	}
	key := strings.TrimPrefix(secret, "whsec_")
	for _, b := range append(seen, logBuf.Bytes()) {
		if bytes.Contains(b, []byte(key)) {
			t.Errorf("the webhook secret appears after creation: %.200s", b)
		}
	}
}
