package httpapi_test

import (
	"bytes"
	"encoding/csv"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
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
					if rec[1] != "billing" || rec[6] != "31" || rec[slices.Index(manage.CSVHeader, "findings")] != "rotation_due;unused;unrestricted" {
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
	// The receiver listens on 127.0.0.1: open it, as an operator would
	// with --webhook-allow-cidr 127.0.0.1/32.
	e.svc.Destinations.Policy.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	d.Destinations = e.svc.Destinations
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

// TestWebhookDestinationPolicy: URLs whose address, or whose host's
// addresses, the destination policy refuses are answered 400
// DestinationNotAllowed, with the rule and never a resolved address; a
// ping to a destination refused at delivery says only "destination not
// allowed".
func TestWebhookDestinationPolicy(t *testing.T) {
	e := newEnv(t)
	e.svc.Destinations.Resolver = names{
		"hooks.example.com": {netip.MustParseAddr("93.184.215.14")},
		"intranet.corp":     {netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("172.20.0.5")},
		"imds.corp":         {netip.MustParseAddr("fd00:ec2::254")},
	}
	refused := func(rule string) func(*testing.T, *resp) {
		return func(t *testing.T, r *resp) {
			msg := r.errorBody(t).Error.Message
			if !strings.Contains(msg, rule) || strings.Contains(msg, "172.20.0.5") || strings.Contains(msg, "93.184") {
				t.Errorf("message %q: want the rule %q and no resolved address", msg, rule)
			}
		}
	}
	post := func(name, url, rule string) apiCase {
		return apiCase{name: name, method: "POST", path: "/v1/webhooks", as: bearer(e.admin), body: `{"url":"` + url + `"}`,
			status: http.StatusBadRequest, code: latchkey.EDESTINATION, check: refused(rule)}
	}
	var id string
	e.run(t, []apiCase{
		post("loopback", "http://127.0.0.1:8080/hook", "loopback address (127.0.0.0/8)"),
		post("loopback v6", "http://[::1]/hook", "loopback address (::1/128)"),
		post("IPv4-mapped loopback", "http://[::ffff:127.0.0.1]/hook", "loopback address (127.0.0.0/8)"),
		post("NAT64 loopback", "http://[64:ff9b::7f00:1]/hook", "NAT64 address (64:ff9b::/96) of a loopback address"),
		post("6to4 loopback", "http://[2002:7f00:1::]/hook", "6to4 address (2002::/16) of a loopback address"),
		post("localhost", "http://localhost:8080/hook", "loopback address"),
		post("unspecified", "http://0.0.0.0:8080/hook", "unspecified address"),
		post("private", "http://192.168.1.10/hook", "private address (192.168.0.0/16, RFC 1918)"),
		post("CGNAT", "http://100.100.1.1/hook", "carrier-grade NAT"),
		post("link-local", "http://169.254.10.10/hook", "link-local address (169.254.0.0/16)"),
		post("metadata", "http://169.254.169.254/latest/meta-data/iam/", "cloud metadata address"),
		post("metadata name", "http://metadata.google.internal/computeMetadata/v1/", "cloud metadata address"),
		post("metadata v6", "http://[fd00:ec2::254]/latest/", "cloud metadata address"),
		post("ULA", "http://[fd12::1]/hook", "unique local address (fc00::/7, RFC 4193)"),
		post("multicast", "http://239.1.1.1/hook", "multicast address"),
		post("name with a private address", "https://intranet.corp/hook", "private address (172.16.0.0/12, RFC 1918)"),
		post("name with a metadata address", "https://imds.corp/hook", "cloud metadata address"),
		{name: "numeric shorthand", method: "POST", path: "/v1/webhooks", as: bearer(e.admin), body: `{"url":"http://0x7f000001/hook"}`,
			status: http.StatusBadRequest, code: latchkey.EINVALID},
		{name: "viewer learns nothing", method: "POST", path: "/v1/webhooks", as: bearer(e.viewer), body: `{"url":"http://127.0.0.1/"}`,
			status: http.StatusForbidden, code: latchkey.EFORBIDDEN},
		{name: "public name", method: "POST", path: "/v1/webhooks", as: bearer(e.admin), body: `{"url":"https://hooks.example.com/hook"}`,
			status: http.StatusCreated, check: func(t *testing.T, r *resp) {
				var w manage.CreatedWebhook
				r.decode(t, &w)
				id = w.ID
			}},
	})
	e.run(t, []apiCase{
		{name: "update to a private name", method: "PATCH", path: "/v1/webhooks/" + id, as: bearer(e.admin), body: `{"url":"https://intranet.corp/hook"}`,
			status: http.StatusBadRequest, code: latchkey.EDESTINATION, check: refused("private address")},
		{name: "update by another account", method: "PATCH", path: "/v1/webhooks/" + id, as: bearer(e.otherAdmin), body: `{"url":"https://intranet.corp/hook"}`,
			status: http.StatusNotFound, code: latchkey.ENOTFOUND},
	})

	// The name now resolves to 10.0.0.7: the ping's delivery says only
	// that the destination is not allowed.
	var logBuf syncBuffer
	d := manage.NewDispatcher(e.store, slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	d.Now = e.clock.Now
	d.Destinations = &manage.Destinations{Resolver: names{"hooks.example.com": {netip.MustParseAddr("10.0.0.7")}}}
	e.api.Webhooks = d
	e.run(t, []apiCase{
		{name: "ping after rebinding", method: "POST", path: "/v1/webhooks/" + id + "/ping", as: bearer(e.admin), status: http.StatusOK,
			check: func(t *testing.T, r *resp) {
				var got latchkey.WebhookDelivery
				r.decode(t, &got)
				if got.LastError != "destination not allowed" || got.ResponseCode != 0 || strings.Contains(string(r.body), "10.0.0.7") {
					t.Errorf("ping %s", r.body)
				}
			}},
		{name: "deliveries", method: "GET", path: "/v1/webhooks/" + id + "/deliveries", as: bearer(e.viewer), status: http.StatusOK,
			check: func(t *testing.T, r *resp) {
				if !strings.Contains(string(r.body), `"last_error":"destination not allowed"`) || strings.Contains(string(r.body), "10.0.0.7") {
					t.Errorf("deliveries %s", r.body)
				}
			}},
	})
	if !strings.Contains(string(logBuf.Bytes()), "10.0.0.7") {
		t.Errorf("the debug log does not name the refused address:\n%s", logBuf.Bytes())
	}
}
