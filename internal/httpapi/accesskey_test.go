package httpapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
)

func TestCreateAccessKey(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	e.mustApp(t, latchkey.DefaultAccount, "orders")
	e.mustApp(t, "other", "ledger")
	later := start.Add(30 * 24 * time.Hour)
	post := func(name string, as cred, path, body string, status int, code string) apiCase {
		return apiCase{name: name, method: "POST", path: path, as: bearer(as), body: body, status: status, code: code}
	}
	created := func(wantExpiry *time.Time) func(*testing.T, *resp) {
		return func(t *testing.T, r *resp) {
			t.Helper()
			var k struct {
				latchkey.AccessKey
				Secret string `json:"secret_access_key"`
			}
			r.decode(t, &k)
			if !keyformat.ValidSecret(k.Secret) || !keyformat.ValidID(k.ID) {
				t.Fatalf("new key %s: not a valid ID and secret", k.ID)
			}
			want := latchkey.AccessKey{ID: k.ID, KeyType: latchkey.KeyTypeBearer, Account: "default", Application: "billing", Description: "ci",
				Status: latchkey.StatusActive, CreatedAt: start, UpdatedAt: start, ExpiresAt: wantExpiry}
			if diff := cmp.Diff(want, k.AccessKey); diff != "" {
				t.Errorf("key (-want +got):\n%s", diff)
			}
			// The secret works at once, and only its digest is stored.
			if res := e.verifier.Verify(&verify.Request{Secret: k.Secret}); !res.Valid() || res.Entry.ID != k.ID {
				t.Errorf("new key verifies as %s", res.Code)
			}
			if got := e.storedKey(t, k.ID).SecretDigest; got != keyformat.Sum(k.Secret) {
				t.Error("stored digest is not the secret's")
			}
		}
	}
	first := post("admin creates", e.admin, "/v1/applications/billing/access-keys", `{"description":"ci"}`, http.StatusCreated, "")
	first.check = created(nil)
	second := post("with an expiry", e.admin, "/v1/applications/billing/access-keys",
		`{"description":"ci","expires_at":"`+later.Format(time.RFC3339)+`"}`, http.StatusCreated, "")
	second.check = created(&later)
	e.run(t, []apiCase{
		post("expiry now", e.admin, "/v1/applications/billing/access-keys", `{"expires_at":"`+start.Format(time.RFC3339)+`"}`,
			http.StatusBadRequest, latchkey.EINVALID),
		post("expiry in the past", e.admin, "/v1/applications/billing/access-keys", `{"expires_at":"2020-01-01T00:00:00Z"}`,
			http.StatusBadRequest, latchkey.EINVALID),
		post("expiry not a time", e.admin, "/v1/applications/billing/access-keys", `{"expires_at":"tomorrow"}`,
			http.StatusBadRequest, latchkey.EMALFORMED),
		post("description too long", e.admin, "/v1/applications/billing/access-keys",
			`{"description":"`+strings.Repeat("d", latchkey.MaxDescriptionLen+1)+`"}`, http.StatusBadRequest, latchkey.EINVALID),
		first,
		second,
		post("a third key is over the limit", e.admin, "/v1/applications/billing/access-keys", `{}`, http.StatusConflict, latchkey.ELIMIT),
		post("operator is held to the limit too", e.operator, "/v1/applications/billing/access-keys", `{}`, http.StatusConflict, latchkey.ELIMIT),
		post("unknown application", e.admin, "/v1/applications/ghost/access-keys", `{}`, http.StatusNotFound, latchkey.ENOTFOUND),
		post("another account's application", e.admin, "/v1/applications/ledger/access-keys", `{}`, http.StatusNotFound, latchkey.ENOTFOUND),
		post("admin names another account", e.admin, "/v1/applications/ledger/access-keys?account=other", `{}`, http.StatusNotFound, latchkey.ENOTFOUND),
		post("operator in a named account", e.operator, "/v1/applications/ledger/access-keys?account=other", `{}`, http.StatusCreated, ""),
		post("viewer", e.viewer, "/v1/applications/orders/access-keys", `{}`, http.StatusForbidden, latchkey.EFORBIDDEN),
		{name: "no credential", method: "POST", path: "/v1/applications/orders/access-keys", body: `{}`,
			status: http.StatusUnauthorized, code: latchkey.EUNAUTHORIZED},
	})
}

func TestGetAccessKey(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	k := e.mustKey(t, latchkey.DefaultAccount, "billing")
	e.mustApp(t, "other", "ledger")
	otherKey := e.mustKey(t, "other", "ledger")
	unknown := newID(t)
	get := func(name string, as cred, path string, status int, code string) apiCase {
		return apiCase{name: name, method: "GET", path: path, as: bearer(as), status: status, code: code}
	}
	ok := get("admin", e.admin, "/v1/access-keys/"+k.ID, http.StatusOK, "")
	ok.check = func(t *testing.T, r *resp) {
		var got latchkey.AccessKey
		r.decode(t, &got)
		want := *k.AccessKey
		want.SecretDigest = [32]byte{}
		// A read carries the policy's findings: the fixture has no
		// restriction.
		want.Findings = []latchkey.Finding{latchkey.FindingUnrestricted}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("key (-want +got):\n%s", diff)
		}
	}
	other := get("another account's key", e.admin, "/v1/access-keys/"+otherKey.ID, http.StatusNotFound, latchkey.ENOTFOUND)
	other.check = sameAs(e, bearer(e.admin), "GET", "/v1/access-keys/"+unknown, otherKey.ID, unknown)
	e.run(t, []apiCase{
		ok,
		get("viewer", e.viewer, "/v1/access-keys/"+k.ID, http.StatusOK, ""),
		get("operator sees another account's key", e.operator, "/v1/access-keys/"+otherKey.ID, http.StatusOK, ""),
		get("a principal key", e.admin, "/v1/access-keys/"+e.viewer.id, http.StatusOK, ""),
		get("unknown", e.admin, "/v1/access-keys/"+unknown, http.StatusNotFound, latchkey.ENOTFOUND),
		get("not an access key ID", e.admin, "/v1/access-keys/nope", http.StatusNotFound, latchkey.ENOTFOUND),
		get("lower case ID", e.admin, "/v1/access-keys/"+strings.ToLower(k.ID), http.StatusNotFound, latchkey.ENOTFOUND),
		other,
		{name: "no credential", method: "GET", path: "/v1/access-keys/" + k.ID, status: http.StatusUnauthorized, code: latchkey.EUNAUTHORIZED},
	})
}

func TestUpdateAccessKey(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	k := e.mustKey(t, latchkey.DefaultAccount, "billing")
	e.mustApp(t, "other", "ledger")
	otherKey := e.mustKey(t, "other", "ledger")
	later := start.Add(time.Hour)
	patch := func(name string, as cred, id, body string, status int, code string) apiCase {
		return apiCase{name: name, method: "PATCH", path: "/v1/access-keys/" + id, as: bearer(as), body: body, status: status, code: code}
	}
	status := func(want latchkey.Status, decision latchkey.Code) func(*testing.T, *resp) {
		return func(t *testing.T, r *resp) {
			t.Helper()
			var got latchkey.AccessKey
			r.decode(t, &got)
			if got.Status != want {
				t.Errorf("status %s, want %s", got.Status, want)
			}
			if res := e.verifier.Verify(&verify.Request{Secret: k.Secret}); res.Code != decision {
				t.Errorf("after the change the key verifies as %s, want %s", res.Code, decision)
			}
		}
	}
	deactivate := patch("deactivate", e.admin, k.ID, `{"status":"Inactive"}`, http.StatusOK, "")
	deactivate.check = status(latchkey.StatusInactive, latchkey.CodeInactive)
	wrongCase := patch("status in another case", e.admin, k.ID, `{"status":"active"}`, http.StatusBadRequest, latchkey.EINVALID)
	wrongCase.check = func(t *testing.T, r *resp) {
		if got := e.storedKey(t, k.ID).Status; got != latchkey.StatusInactive {
			t.Errorf("after a refused status the key is %s", got)
		}
	}
	reactivate := patch("reactivate", e.admin, k.ID, `{"status":"Active"}`, http.StatusOK, "")
	reactivate.check = status(latchkey.StatusActive, latchkey.CodeValid)
	expiry := patch("description and expiry", e.admin, k.ID, `{"description":"rotated","expires_at":"`+later.Format(time.RFC3339)+`"}`, http.StatusOK, "")
	expiry.check = func(t *testing.T, r *resp) {
		var got latchkey.AccessKey
		r.decode(t, &got)
		if got.Description != "rotated" || got.ExpiresAt == nil || !got.ExpiresAt.Equal(later) {
			t.Errorf("description %q, expiry %v", got.Description, got.ExpiresAt)
		}
	}
	e.run(t, []apiCase{
		deactivate,
		wrongCase,
		reactivate,
		expiry,
		patch("status not known", e.admin, k.ID, `{"status":"Paused"}`, http.StatusBadRequest, latchkey.EINVALID),
		patch("status empty", e.admin, k.ID, `{"status":""}`, http.StatusBadRequest, latchkey.EINVALID),
		patch("expiry in the past", e.admin, k.ID, `{"expires_at":"2020-01-01T00:00:00Z"}`, http.StatusBadRequest, latchkey.EINVALID),
		patch("description too long", e.admin, k.ID, `{"description":"`+strings.Repeat("d", latchkey.MaxDescriptionLen+1)+`"}`,
			http.StatusBadRequest, latchkey.EINVALID),
		patch("unknown", e.admin, newID(t), `{"status":"Inactive"}`, http.StatusNotFound, latchkey.ENOTFOUND),
		patch("another account's key", e.admin, otherKey.ID, `{"status":"Inactive"}`, http.StatusNotFound, latchkey.ENOTFOUND),
		patch("viewer", e.viewer, k.ID, `{"status":"Inactive"}`, http.StatusForbidden, latchkey.EFORBIDDEN),
		patch("admin may not change an operator's key", e.admin, e.operator.id, `{"status":"Inactive"}`, http.StatusForbidden, latchkey.EFORBIDDEN),
		patch("admin may change a viewer's key", e.admin, e.viewer.id, `{"description":"x"}`, http.StatusOK, ""),
		patch("operator changes another account's key", e.operator, otherKey.ID, `{"status":"Inactive"}`, http.StatusOK, ""),
	})
}

func TestDeleteAccessKey(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	active := e.mustKey(t, latchkey.DefaultAccount, "billing")
	inactive := e.mustKey(t, latchkey.DefaultAccount, "billing")
	e.mustDeactivate(t, inactive.ID)
	e.mustApp(t, "other", "ledger")
	otherKey := e.mustKey(t, "other", "ledger")
	e.mustDeactivate(t, otherKey.ID)
	del := func(name string, as cred, path string, status int, code string) apiCase {
		return apiCase{name: name, method: "DELETE", path: path, as: bearer(as), status: status, code: code}
	}
	gone := func(secret string) func(*testing.T, *resp) {
		return func(t *testing.T, r *resp) {
			t.Helper()
			if len(r.body) != 0 {
				t.Errorf("204 with a body: %s", r.body)
			}
			if res := e.verifier.Verify(&verify.Request{Secret: secret}); res.Code != latchkey.CodeNotFound {
				t.Errorf("deleted key verifies as %s", res.Code)
			}
		}
	}
	delInactive := del("inactive key", e.admin, "/v1/access-keys/"+inactive.ID, http.StatusNoContent, "")
	delInactive.check = gone(inactive.Secret)
	delForced := del("active key with force", e.admin, "/v1/access-keys/"+active.ID+"?force=true", http.StatusNoContent, "")
	delForced.check = gone(active.Secret)
	e.run(t, []apiCase{
		del("active key", e.admin, "/v1/access-keys/"+active.ID, http.StatusConflict, latchkey.EKEYACTIVE),
		del("active key, force=false", e.admin, "/v1/access-keys/"+active.ID+"?force=false", http.StatusConflict, latchkey.EKEYACTIVE),
		del("force not a boolean", e.admin, "/v1/access-keys/"+active.ID+"?force=maybe", http.StatusBadRequest, latchkey.EINVALID),
		del("viewer", e.viewer, "/v1/access-keys/"+inactive.ID, http.StatusForbidden, latchkey.EFORBIDDEN),
		del("another account's key", e.admin, "/v1/access-keys/"+otherKey.ID, http.StatusNotFound, latchkey.ENOTFOUND),
		del("unknown", e.admin, "/v1/access-keys/"+newID(t), http.StatusNotFound, latchkey.ENOTFOUND),
		del("admin may not delete an operator's key", e.admin, "/v1/access-keys/"+e.operator.id+"?force=true", http.StatusForbidden, latchkey.EFORBIDDEN),
		delInactive,
		delForced,
		del("deleted twice", e.admin, "/v1/access-keys/"+inactive.ID, http.StatusNotFound, latchkey.ENOTFOUND),
		{name: "application has no keys left", method: "GET", path: "/v1/applications/billing", as: bearer(e.admin), status: http.StatusOK,
			check: wantApp(latchkey.Application{Account: "default", Name: "billing", CreatedAt: start})},
	})
}

func TestGetAccessKeyLastUsed(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	k := e.mustKey(t, latchkey.DefaultAccount, "billing")
	e.mustApp(t, "other", "ledger")
	otherKey := e.mustKey(t, "other", "ledger")
	type lastUsed struct {
		ID           string              `json:"access_key_id"`
		Application  string              `json:"application"`
		Status       latchkey.Status     `json:"status"`
		LastUsed     *latchkey.Use       `json:"last_used"`
		LastRejected *latchkey.Rejection `json:"last_rejected"`
		UseCount     int64               `json:"use_count"`
		RejectCount  int64               `json:"reject_count"`
	}
	want := func(w lastUsed) func(*testing.T, *resp) {
		return func(t *testing.T, r *resp) {
			t.Helper()
			var got lastUsed
			r.decode(t, &got)
			if diff := cmp.Diff(w, got); diff != "" {
				t.Errorf("last used (-want +got):\n%s", diff)
			}
		}
	}
	path := "/v1/access-keys/" + k.ID + "/last-used"
	get := func(name string, as cred, path string, status int, code string) apiCase {
		return apiCase{name: name, method: "GET", path: path, as: bearer(as), status: status, code: code}
	}
	never := get("never used", e.viewer, path, http.StatusOK, "")
	never.check = want(lastUsed{ID: k.ID, Application: "billing", Status: latchkey.StatusActive})
	e.run(t, []apiCase{never})

	// Two uses through /v1/verify, then a rejection once Inactive.
	verifyAs := func(ua string) {
		t.Helper()
		r := e.do(t, "POST", "/v1/verify", both(bearer(e.verifierP), header("User-Agent", "test")),
			jsonBody(t, map[string]string{"key": k.Secret, "ip": "192.0.2.7", "user_agent": ua}))
		if r.status != http.StatusOK {
			t.Fatalf("verify: %d %s", r.status, r.body)
		}
	}
	verifyAs("first")
	e.clock.Advance(time.Minute)
	verifyAs("second")
	usedAt := e.clock.Now()
	e.mustDeactivate(t, k.ID)
	e.clock.Advance(time.Minute)
	verifyAs("stale")
	rejAt := e.clock.Now()
	w := lastUsed{ID: k.ID, Application: "billing", Status: latchkey.StatusInactive,
		LastUsed:     &latchkey.Use{At: usedAt, IP: "192.0.2.7", UserAgent: "second"},
		LastRejected: &latchkey.Rejection{At: rejAt, IP: "192.0.2.7", UserAgent: "stale", Reason: latchkey.CodeInactive},
		UseCount:     2, RejectCount: 1}

	pending := get("usage not yet flushed is shown", e.admin, path, http.StatusOK, "")
	pending.check = want(w)
	e.run(t, []apiCase{pending})
	if err := e.rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	flushed := get("after the flush", e.admin, path, http.StatusOK, "")
	flushed.check = want(w)
	other := get("another account's key", e.admin, "/v1/access-keys/"+otherKey.ID+"/last-used", http.StatusNotFound, latchkey.ENOTFOUND)
	unknown := newID(t)
	other.check = sameAs(e, bearer(e.admin), "GET", "/v1/access-keys/"+unknown+"/last-used", otherKey.ID, unknown)
	e.run(t, []apiCase{
		flushed,
		get("unknown", e.admin, "/v1/access-keys/"+unknown+"/last-used", http.StatusNotFound, latchkey.ENOTFOUND),
		other,
		get("verifier", e.verifierP, path, http.StatusForbidden, latchkey.EFORBIDDEN),
	})
}

func TestListAccessKeys(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	e.mustApp(t, latchkey.DefaultAccount, "orders")
	e.mustApp(t, "other", "ledger")
	var billing, orders, ledger []string
	for range 2 {
		billing = append(billing, e.mustKey(t, latchkey.DefaultAccount, "billing").ID)
		orders = append(orders, e.mustKey(t, latchkey.DefaultAccount, "orders").ID)
		ledger = append(ledger, e.mustKey(t, "other", "ledger").ID)
	}
	defaultPrincipals := []string{e.operator.id, e.admin.id, e.viewer.id, e.verifierP.id}
	ids := func(keys []latchkey.AccessKey) []string {
		var out []string
		for _, k := range keys {
			out = append(out, k.ID)
		}
		slices.Sort(out)
		return out
	}
	set := func(groups ...[]string) []string {
		var out []string
		for _, g := range groups {
			out = append(out, g...)
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name string
		path string
		as   cred
		want []string
	}{
		{"operator: every account", "/v1/access-keys", e.operator, set(billing, orders, ledger, defaultPrincipals, []string{e.otherAdmin.id})},
		{"operator: named account", "/v1/access-keys?account=other", e.operator, set(ledger, []string{e.otherAdmin.id})},
		{"operator: application defaults to the default account", "/v1/access-keys?application=billing", e.operator, set(billing)},
		{"operator: application in a named account", "/v1/access-keys?application=ledger&account=other", e.operator, set(ledger)},
		{"admin: own account", "/v1/access-keys", e.admin, set(billing, orders, defaultPrincipals)},
		{"admin: application keys", "/v1/access-keys?kind=application", e.admin, set(billing, orders)},
		{"admin: principal keys", "/v1/access-keys?kind=principal", e.admin, set(defaultPrincipals)},
		{"viewer: one application", "/v1/access-keys?application=orders", e.viewer, set(orders)},
		{"other admin", "/v1/access-keys", e.otherAdmin, set(ledger, []string{e.otherAdmin.id})},
		{"application route", "/v1/applications/billing/access-keys", e.admin, set(billing)},
		{"application route, one per page", "/v1/applications/billing/access-keys?limit=1", e.admin, set(billing)},
		{"every account, two per page", "/v1/access-keys?limit=2", e.operator, set(billing, orders, ledger, defaultPrincipals, []string{e.otherAdmin.id})},
		{"principal route", "/v1/principals/alice/access-keys", e.viewer, []string{e.admin.id}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ids(e.listKeys(t, tc.path, tc.as))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("pages hold at most limit keys, oldest first", func(t *testing.T) {
		// Keys made a second apart, so creation order is known.
		e.mustApp(t, latchkey.DefaultAccount, "paged")
		var want []string
		for range 2 {
			e.clock.Advance(time.Second)
			want = append(want, e.mustKey(t, latchkey.DefaultAccount, "paged").ID)
		}
		r := e.do(t, "GET", "/v1/applications/paged/access-keys?limit=1", bearer(e.admin), "")
		var page struct {
			Keys []latchkey.AccessKey `json:"access_keys"`
			Next string               `json:"next_page_token"`
		}
		r.decode(t, &page)
		if len(page.Keys) != 1 || page.Keys[0].ID != want[0] || page.Next == "" {
			t.Fatalf("first page %s", r.body)
		}
		var got []string
		for _, k := range e.listKeys(t, "/v1/applications/paged/access-keys?limit=1", e.admin) {
			got = append(got, k.ID)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("keys across pages (-want +got):\n%s", diff)
		}
	})

	bad := func(name string, as cred, path string, status int, code string) apiCase {
		return apiCase{name: name, method: "GET", path: path, as: bearer(as), status: status, code: code}
	}
	e.run(t, []apiCase{
		bad("kind not known", e.admin, "/v1/access-keys?kind=robot", http.StatusBadRequest, latchkey.EINVALID),
		bad("limit 0", e.admin, "/v1/access-keys?limit=0", http.StatusBadRequest, latchkey.EINVALID),
		bad("page token not valid", e.admin, "/v1/access-keys?page_token=xyz", http.StatusBadRequest, latchkey.EINVALID),
		bad("unknown application", e.admin, "/v1/access-keys?application=ghost", http.StatusNotFound, latchkey.ENOTFOUND),
		bad("another account's application", e.admin, "/v1/access-keys?application=ledger", http.StatusNotFound, latchkey.ENOTFOUND),
		bad("admin names another account", e.admin, "/v1/access-keys?account=other", http.StatusNotFound, latchkey.ENOTFOUND),
		bad("unknown application route", e.admin, "/v1/applications/ghost/access-keys", http.StatusNotFound, latchkey.ENOTFOUND),
		bad("another account's application route", e.admin, "/v1/applications/ledger/access-keys", http.StatusNotFound, latchkey.ENOTFOUND),
		bad("application route, bad limit", e.admin, "/v1/applications/billing/access-keys?limit=x", http.StatusBadRequest, latchkey.EINVALID),
		bad("verifier", e.verifierP, "/v1/access-keys", http.StatusForbidden, latchkey.EFORBIDDEN),
	})
}
