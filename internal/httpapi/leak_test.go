package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSecretsNeverLeak drives every endpoint, successes and failures, with
// keys made at run time and a debug-level JSON log, then looks for every
// secret in the log, the database files, the audit log and every response
// except the one that created the secret. It also checks that the audit log
// holds exactly one event per state change.
func TestSecretsNeverLeak(t *testing.T) {
	var logBuf syncBuffer
	e := newEnv(t, withLogger(slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	baseline := len(e.auditEvents(t))

	secrets := []cred{e.operator, e.admin, e.viewer, e.verifierP, e.otherAdmin}
	type seen struct {
		what   string
		body   []byte
		header http.Header
		create bool // the response that returns a new secret
	}
	var responses []seen
	var wantActions []string
	call := func(method, path string, as auth, body string, status int) *resp {
		t.Helper()
		r := e.do(t, method, path, as, body)
		if r.status != status {
			t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, status, r.body)
		}
		responses = append(responses, seen{what: method + " " + path, body: r.body, header: r.header})
		return r
	}
	create := func(path string, as auth, body string, action ...string) cred {
		t.Helper()
		r := e.do(t, "POST", path, as, body)
		if r.status != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", path, r.status, r.body)
		}
		responses = append(responses, seen{what: "POST " + path, body: r.body, header: r.header, create: true})
		var k struct {
			ID        string `json:"access_key_id"`
			Secret    string `json:"secret_access_key"`
			AccessKey *struct {
				ID     string `json:"access_key_id"`
				Secret string `json:"secret_access_key"`
			} `json:"access_key"`
		}
		r.decode(t, &k)
		if k.AccessKey != nil {
			k.ID, k.Secret = k.AccessKey.ID, k.AccessKey.Secret
		}
		if k.Secret == "" {
			t.Fatalf("POST %s returned no secret", path)
		}
		c := cred{k.ID, k.Secret}
		secrets = append(secrets, c)
		wantActions = append(wantActions, action...)
		return c
	}
	changed := func(actions ...string) { wantActions = append(wantActions, actions...) }

	admin := bearer(e.admin)
	// Set up through the API.
	call("POST", "/v1/applications", admin, `{"name":"billing","description":"payments"}`, http.StatusCreated)
	changed("application.create")
	call("POST", "/v1/applications", basic(e.admin), `{"name":"orders"}`, http.StatusCreated)
	changed("application.create")
	k1 := create("/v1/applications/billing/access-keys", admin, `{"description":"blue"}`, "access_key.create")
	k2 := create("/v1/applications/billing/access-keys", apiKey(e.admin), `{"description":"green"}`, "access_key.create")
	k3 := create("/v1/applications/orders/access-keys?account=default", bearer(e.operator), `{}`, "access_key.create")
	pat := create("/v1/principals", admin, `{"name":"pat","role":"admin"}`, "principal.create", "access_key.create")
	pat2 := create("/v1/principals/pat/access-keys", basicNoID(pat), `{"description":"rotation"}`, "access_key.create")

	// Every read, with every credential form.
	for _, as := range []auth{bearer(pat), basic(pat), basicNoID(pat2), apiKey(pat2), basic(e.viewer)} {
		for _, path := range []string{
			"/v1/accounts", "/v1/applications", "/v1/applications/billing", "/v1/applications/billing/access-keys",
			"/v1/access-keys", "/v1/access-keys?kind=principal", "/v1/access-keys/" + k1.id, "/v1/access-keys/" + k1.id + "/last-used",
			"/v1/principals", "/v1/principals/pat", "/v1/principals/pat/access-keys", "/v1/audit-events",
			"/healthz", "/readyz", "/v1/openapi.json",
		} {
			call("GET", path, as, "", http.StatusOK)
		}
	}

	// Verification: good, wrong ID, wrong kind, wrong account, malformed.
	verifier := bearer(e.verifierP)
	for _, k := range []cred{k1, k2, k3} {
		call("POST", "/v1/verify", verifier, jsonBody(t, map[string]string{"key": k.secret, "ip": "198.51.100.7", "user_agent": "svc/1"}), http.StatusOK)
		call("POST", "/v1/verify", verifier, jsonBody(t, map[string]string{"key": k.secret, "access_key_id": pat.id}), http.StatusOK)
		call("POST", "/v1/verify", basic(e.verifierP), jsonBody(t, map[string]string{"key": k.secret, "access_key_id": k.id}), http.StatusOK)
		call("POST", "/v1/verify", bearer(e.otherAdmin), jsonBody(t, map[string]string{"key": k.secret}), http.StatusOK)
		call("POST", "/v1/verify", verifier, jsonBody(t, map[string]string{"key": flipLast(k.secret)}), http.StatusOK)
		call("POST", "/v1/verify", verifier, jsonBody(t, map[string]string{"key": k.secret[:30]}), http.StatusOK)
	}
	call("POST", "/v1/verify", verifier, jsonBody(t, map[string]string{"key": pat.secret}), http.StatusOK)
	call("POST", "/v1/verify", verifier, jsonBody(t, map[string]string{"key": k1.secret, "ip": "not-an-ip"}), http.StatusBadRequest)

	// Failed sign-ins and bad requests that carry secrets.
	call("GET", "/v1/accounts", basic(cred{k2.id, k1.secret}), "", http.StatusUnauthorized)
	call("GET", "/v1/accounts", basic(cred{pat2.id, pat.secret}), "", http.StatusUnauthorized)
	call("GET", "/v1/accounts", bearer(k1), "", http.StatusUnauthorized)
	call("GET", "/v1/accounts", apiKey(cred{secret: flipLast(pat.secret)}), "", http.StatusUnauthorized)
	call("GET", "/v1/accounts", header("Authorization", "Token "+pat.secret), "", http.StatusUnauthorized)
	call("GET", "/v1/accounts", bearer(e.verifierP), "", http.StatusForbidden)
	call("POST", "/v1/applications", bearer(e.viewer), `{"name":"x"}`, http.StatusForbidden)
	call("POST", "/v1/verify", verifier, `{"key":"`+k1.secret+`"`, http.StatusBadRequest)
	call("POST", "/v1/verify", verifier, `{"key":"`+k1.secret+`","extra":1}`, http.StatusBadRequest)
	call("POST", "/v1/verify", verifier, `{"key":"`+k1.secret+`"} {"key":"`+k2.secret+`"}`, http.StatusBadRequest)
	call("POST", "/v1/verify", verifier, `{"key":["`+k1.secret+`"]}`, http.StatusBadRequest)
	call("POST", "/v1/verify", both(verifier, header("Content-Type", "application/xml")), `{"key":"`+k1.secret+`"}`, http.StatusUnsupportedMediaType)
	call("PATCH", "/v1/access-keys/"+k1.id, admin, `{"status":"Paused"}`, http.StatusBadRequest)
	call("PUT", "/v1/accounts", admin, "", http.StatusMethodNotAllowed)
	call("GET", "/v1/nope", admin, "", http.StatusNotFound)

	// Credentials in URLs: each real key is flagged once per request.
	call("GET", "/v1/applications?q="+k3.secret, admin, "", http.StatusBadRequest)
	changed("access_key.exposed")
	call("GET", "/v1/access-keys/"+pat2.secret, noAuth, "", http.StatusBadRequest)
	changed("access_key.exposed")
	call("GET", "/v1/accounts?api_key="+k2.secret+"&token="+k2.secret, noAuth, "", http.StatusBadRequest)
	changed("access_key.exposed")
	call("POST", "/v1/verify?key="+k1.secret, verifier, jsonBody(t, map[string]string{"key": k1.secret}), http.StatusBadRequest)
	changed("access_key.exposed")
	call("GET", "/nowhere/"+flipLast(k1.secret)+"?x="+base64.StdEncoding.EncodeToString([]byte(k1.secret)), noAuth, "", http.StatusNotFound)

	// The key lifecycle.
	call("PATCH", "/v1/access-keys/"+k1.id, admin, `{"status":"Inactive"}`, http.StatusOK)
	changed("access_key.update")
	call("PATCH", "/v1/access-keys/"+k1.id, admin, `{"status":"Inactive"}`, http.StatusOK) // no change
	call("POST", "/v1/verify", verifier, jsonBody(t, map[string]string{"key": k1.secret}), http.StatusOK)
	call("PATCH", "/v1/applications/billing", admin, `{"description":"payments"}`, http.StatusOK) // no change
	call("PATCH", "/v1/applications/billing", admin, `{"description":"billing"}`, http.StatusOK)
	changed("application.update")
	call("DELETE", "/v1/access-keys/"+k2.id, admin, "", http.StatusConflict)
	call("DELETE", "/v1/access-keys/"+k1.id, admin, "", http.StatusNoContent)
	changed("access_key.delete")
	call("DELETE", "/v1/access-keys/"+k2.id+"?force=true", admin, "", http.StatusNoContent)
	changed("access_key.delete")
	call("DELETE", "/v1/applications/billing", admin, "", http.StatusNoContent)
	changed("application.delete")
	call("DELETE", "/v1/principals/pat", admin, "", http.StatusNoContent)
	changed("principal.delete")
	call("GET", "/v1/accounts", bearer(pat), "", http.StatusUnauthorized)
	call("POST", "/v1/accounts", bearer(e.operator), `{"name":"acme"}`, http.StatusCreated)
	changed("account.create")
	call("GET", "/v1/audit-events?limit=1000", bearer(e.operator), "", http.StatusOK)
	call("GET", "/v1/access-keys/"+k3.id+"/last-used", bearer(e.operator), "", http.StatusOK)

	if err := e.rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if k := e.storedKey(t, k3.id); k.UseCount == 0 || k.Exposed == nil {
		t.Fatalf("the run did not reach the store: %+v", k)
	}

	// Exactly one event per state change, in order.
	events := e.auditEvents(t)[baseline:]
	var gotActions []string
	for _, ev := range events {
		gotActions = append(gotActions, ev.Action)
	}
	if diff := cmp.Diff(wantActions, gotActions); diff != "" {
		t.Errorf("audit actions (-want +got):\n%s", diff)
	}

	// Now look for the secrets everywhere.
	type place struct {
		name string
		data []byte
	}
	var places []place
	places = append(places, place{"log", logBuf.Bytes()})
	if len(logBuf.Bytes()) == 0 || !strings.Contains(string(logBuf.Bytes()), `"level":"DEBUG"`) {
		t.Fatal("the debug log is empty; the search would prove nothing")
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(e.dbPath + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		places = append(places, place{"database file" + suffix, b})
	}
	all, err := json.Marshal(e.auditEvents(t))
	if err != nil {
		t.Fatal(err)
	}
	places = append(places, place{"audit events", all})
	for _, r := range responses {
		hdr, _ := json.Marshal(r.header)
		places = append(places, place{"headers of " + r.what, hdr})
		if !r.create {
			places = append(places, place{"response to " + r.what, r.body})
		}
	}
	// The database once closed, checkpointed.
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	places = append(places, place{"database file after close", b})
	if len(b) == 0 {
		t.Fatal("empty database file")
	}

	for _, c := range secrets {
		forms := []string{
			c.secret,
			c.secret[len("lksk_"):],
			base64.StdEncoding.EncodeToString([]byte(c.id + ":" + c.secret)),
			base64.StdEncoding.EncodeToString([]byte(":" + c.secret)),
			base64.StdEncoding.EncodeToString([]byte(c.secret)),
		}
		for _, p := range places {
			for i, f := range forms {
				if strings.Contains(string(p.data), f) {
					t.Errorf("the %s holds form %d of the secret of key %s", p.name, i, c.id)
				}
			}
		}
	}
	if len(secrets) != 10 {
		t.Errorf("%d secrets searched for, want 10", len(secrets))
	}
	if n := len(responses); n < 100 {
		t.Errorf("only %d responses checked", n)
	}
}
