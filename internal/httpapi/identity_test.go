package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
)

// TestIdentityOverHTTP: an identity made, listed by external ID, given an
// application, returned by /v1/verify with the application's metadata,
// and sent upstream by forward auth; its delete refused while the
// application belongs to it, and its bad input answered 400 naming the
// field.
func TestIdentityOverHTTP(t *testing.T) {
	e := newEnv(t)
	e.verifier.Quotas = e.svc
	r := e.do(t, "POST", "/v1/identities", bearer(e.admin), `{"name":"acme","external_id":"cus_7","metadata":{"plan":"pro"},"quota":{"remaining":2}}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var id latchkey.Identity
	r.decode(t, &id)
	if r := e.do(t, "GET", "/v1/identities?external_id=cus_7", bearer(e.viewer), ""); r.status != http.StatusOK || !strings.Contains(string(r.body), id.ID) {
		t.Errorf("list by external ID: %d %s", r.status, r.body)
	}
	for _, c := range []struct{ body, message string }{
		{`{"name":"x","external_id":"a b"}`, "external_id may hold only"},
		{`{"name":"x","quota":{"remaining":-1}}`, "quota.remaining"},
		{`{"name":"acme"}`, `already exists`},
		{`{"name":"x","metadata":[1]}`, "metadata must be a JSON object"},
	} {
		r := e.do(t, "POST", "/v1/identities", bearer(e.admin), c.body)
		if r.status/100 != 4 || !strings.Contains(string(r.body), c.message) {
			t.Errorf("%s: %d %s, want a 4xx saying %q", c.body, r.status, r.body, c.message)
		}
	}
	r = e.do(t, "POST", "/v1/applications", bearer(e.admin), `{"name":"shop","identity_id":"`+id.ID+`","metadata":{"channel":"web"}}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create application: %d %s", r.status, r.body)
	}
	if r := e.do(t, "POST", "/v1/applications", bearer(e.admin), `{"name":"lost","identity_id":"idn_aaaaaaaaaaaaaaaa"}`); r.status != http.StatusBadRequest {
		t.Errorf("an application in a missing identity: %d %s", r.status, r.body)
	}
	k := e.mustKey(t, latchkey.DefaultAccount, "shop")

	r = e.do(t, "POST", "/v1/verify", bearer(e.verifierP), jsonBody(t, map[string]string{"key": k.Secret}))
	var got httpapi.VerifyResponse
	r.decode(t, &got)
	if !got.Valid || got.Identity == nil || got.Identity.ID != id.ID || got.Identity.ExternalID != "cus_7" ||
		string(got.Identity.Metadata) != `{"plan":"pro"}` || string(got.ApplicationMetadata) != `{"channel":"web"}` ||
		got.Quota == nil || got.Quota.Remaining != 1 {
		t.Errorf("verify: %s", r.body)
	}

	resp := e.do(t, "GET", "/v1/authorize", header("Authorization", "Bearer "+k.Secret), "")
	if resp.status != http.StatusOK || resp.header.Get(httpapi.HeaderIdentityID) != id.ID || resp.header.Get(httpapi.HeaderExternalID) != "cus_7" {
		t.Errorf("forward auth: %d, identity %q, external ID %q", resp.status, resp.header.Get(httpapi.HeaderIdentityID), resp.header.Get(httpapi.HeaderExternalID))
	}
	// The identity's quota of 2 is spent: the next call is refused.
	r = e.do(t, "POST", "/v1/verify", bearer(e.verifierP), jsonBody(t, map[string]string{"key": k.Secret}))
	r.decode(t, &got)
	if got.Code != latchkey.CodeQuotaExceeded {
		t.Errorf("third call: %s", r.body)
	}

	if r := e.do(t, "DELETE", "/v1/identities/"+id.ID, bearer(e.admin), ""); r.status != http.StatusConflict {
		t.Errorf("delete with an application: %d %s", r.status, r.body)
	}
	if r := e.do(t, "GET", "/v1/identities/"+id.ID+"/usage", bearer(e.viewer), ""); r.status != http.StatusOK {
		t.Errorf("usage: %d %s", r.status, r.body)
	} else {
		var u struct {
			Series []struct {
				Valid    int64            `json:"valid"`
				Rejected map[string]int64 `json:"rejected"`
			} `json:"series"`
		}
		r.decode(t, &u)
		var valid, refused int64
		for _, p := range u.Series {
			valid += p.Valid
			refused += p.Rejected[string(latchkey.CodeQuotaExceeded)]
		}
		if valid != 2 || refused != 1 {
			t.Errorf("usage roll-up: %d valid, %d refused, want 2 and 1", valid, refused)
		}
	}
	r = e.do(t, "GET", "/v1/audit-events?action=identity.create", bearer(e.admin), "")
	if r.status != http.StatusOK || !strings.Contains(string(r.body), id.ID) {
		t.Errorf("audit: %d %s", r.status, r.body)
	}
}
