package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
)

// TestKeyMetadata: a key's external ID and metadata are validated, stored,
// changed, returned by /v1/verify and select keys in a list.
func TestKeyMetadata(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	e.mustApp(t, "other", "ledger")
	plain := e.mustKey(t, latchkey.DefaultAccount, "billing")

	r := e.do(t, "POST", "/v1/applications/billing/access-keys", bearer(e.admin),
		`{"external_id":"cus_42","metadata":{ "plan": "pro", "limits": {"seats": 5} }}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var created struct {
		ID         string          `json:"access_key_id"`
		Secret     string          `json:"secret_access_key"`
		ExternalID string          `json:"external_id"`
		Metadata   json.RawMessage `json:"metadata"`
	}
	r.decode(t, &created)
	if created.ExternalID != "cus_42" || string(created.Metadata) != `{"plan":"pro","limits":{"seats":5}}` {
		t.Fatalf("created key: external_id %q, metadata %s", created.ExternalID, created.Metadata)
	}
	// The same in the store, as the index loads it.
	if k := e.storedKey(t, created.ID); k.ExternalID != "cus_42" || string(k.Metadata) != string(created.Metadata) {
		t.Errorf("stored: external_id %q, metadata %s", k.ExternalID, k.Metadata)
	}
	// Another account's key with the same external ID is not listed.
	if _, err := e.svc.CreateAccessKey(t.Context(), e.sys(), "other", "ledger", latchkey.NewAccessKey{ExternalID: "cus_42"}); err != nil {
		t.Fatal(err)
	}

	verifyAs := func(secret string) httpapi.VerifyResponse {
		t.Helper()
		r := e.do(t, "POST", "/v1/verify", bearer(e.verifierP), jsonBody(t, map[string]string{"key": secret}))
		var got httpapi.VerifyResponse
		r.decode(t, &got)
		return got
	}
	if got := verifyAs(created.Secret); !got.Valid || got.ExternalID != "cus_42" || string(got.Metadata) != `{"plan":"pro","limits":{"seats":5}}` {
		t.Errorf("verify: %+v", got)
	}
	if r := e.do(t, "POST", "/v1/verify", bearer(e.verifierP), jsonBody(t, map[string]string{"key": plain.Secret})); strings.Contains(string(r.body), "external_id") ||
		strings.Contains(string(r.body), "metadata") {
		t.Errorf("a key without them verifies as %s", r.body)
	}

	listed := func(want ...string) func(*testing.T, *resp) {
		return func(t *testing.T, r *resp) {
			t.Helper()
			var l struct {
				Keys []latchkey.AccessKey `json:"access_keys"`
			}
			r.decode(t, &l)
			var got []string
			for _, k := range l.Keys {
				got = append(got, k.ID)
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("listed %v, want %v", got, want)
			}
		}
	}
	patch := func(name, body string, status int, code string) apiCase {
		return apiCase{name: name, method: "PATCH", path: "/v1/access-keys/" + created.ID, as: bearer(e.admin), body: body, status: status, code: code}
	}
	post := func(name, body string, code string) apiCase {
		return apiCase{name: name, method: "POST", path: "/v1/applications/billing/access-keys", as: bearer(e.admin), body: body,
			status: http.StatusBadRequest, code: code}
	}
	deep := `{"a":{"b":{"c":{"d":{"e":1}}}}}` // five levels
	e.run(t, []apiCase{
		post("metadata not an object", `{"metadata":["a"]}`, latchkey.EMALFORMED),
		post("metadata a string", `{"metadata":"plan=pro"}`, latchkey.EMALFORMED),
		post("metadata too deep", `{"metadata":`+deep+`}`, latchkey.EINVALID),
		post("metadata too large", `{"metadata":{"a":"`+strings.Repeat("x", latchkey.MaxMetadataBytes)+`"}}`, latchkey.EINVALID),
		post("metadata repeats a key", `{"metadata":{"a":1,"a":2}}`, latchkey.EINVALID),
		post("external ID with a space", `{"external_id":"cus 42"}`, latchkey.EINVALID),
		post("external ID with a newline", `{"external_id":"cus\n42"}`, latchkey.EINVALID),
		post("external ID too long", `{"external_id":"`+strings.Repeat("a", 129)+`"}`, latchkey.EINVALID),
		post("external ID a number", `{"external_id":42}`, latchkey.EMALFORMED),
		{name: "list by external ID", method: "GET", path: "/v1/access-keys?external_id=cus_42", as: bearer(e.admin), status: http.StatusOK, check: listed(created.ID)},
		{name: "list by unknown external ID", method: "GET", path: "/v1/access-keys?external_id=cus_43", as: bearer(e.admin), status: http.StatusOK, check: listed()},
		{name: "list by a bad external ID", method: "GET", path: "/v1/access-keys?external_id=a%20b", as: bearer(e.admin), status: http.StatusBadRequest, code: latchkey.EINVALID},
		patch("bad metadata on update", `{"metadata":[1]}`, http.StatusBadRequest, latchkey.EMALFORMED),
		patch("new metadata", `{"metadata":{"plan":"team"},"external_id":"cus_43"}`, http.StatusOK, ""),
		{name: "listed by its new external ID", method: "GET", path: "/v1/access-keys?external_id=cus_43", as: bearer(e.admin), status: http.StatusOK, check: listed(created.ID)},
	})
	if got := verifyAs(created.Secret); got.ExternalID != "cus_43" || string(got.Metadata) != `{"plan":"team"}` {
		t.Errorf("verify after the change: %+v", got)
	}
	e.run(t, []apiCase{patch("removed", `{"metadata":{},"external_id":""}`, http.StatusOK, "")})
	if got := verifyAs(created.Secret); got.ExternalID != "" || got.Metadata != nil {
		t.Errorf("verify after removal: %+v", got)
	}
	if k := e.storedKey(t, created.ID); k.ExternalID != "" || k.Metadata != nil {
		t.Errorf("stored after removal: external_id %q, metadata %s", k.ExternalID, k.Metadata)
	}
}
