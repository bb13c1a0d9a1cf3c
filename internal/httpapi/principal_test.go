package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/keyformat"
)

func TestCreatePrincipal(t *testing.T) {
	e := newEnv(t)
	post := func(name string, as cred, path, body string, status int, code string) apiCase {
		return apiCase{name: name, method: "POST", path: path, as: bearer(as), body: body, status: status, code: code}
	}
	var made cred
	ok := post("admin creates a viewer", e.admin, "/v1/principals", `{"name":"pat","role":"viewer"}`, http.StatusCreated, "")
	ok.check = func(t *testing.T, r *resp) {
		var got struct {
			latchkey.Principal
			AccessKey struct {
				latchkey.AccessKey
				Secret string `json:"secret_access_key"`
			} `json:"access_key"`
		}
		r.decode(t, &got)
		if diff := cmp.Diff(latchkey.Principal{Account: "default", Name: "pat", Role: latchkey.RoleViewer, CreatedAt: start}, got.Principal); diff != "" {
			t.Errorf("principal (-want +got):\n%s", diff)
		}
		k := got.AccessKey
		if !keyformat.ValidSecret(k.Secret) || k.Principal != "pat" || k.Role != latchkey.RoleViewer || k.Status != latchkey.StatusActive {
			t.Errorf("first key %+v", k.AccessKey)
		}
		made = cred{k.ID, k.Secret}
	}
	e.run(t, []apiCase{ok})
	e.run(t, []apiCase{
		{name: "the new principal signs in", method: "GET", path: "/v1/applications", as: basic(made), status: http.StatusOK},
		{name: "and may not write", method: "POST", path: "/v1/applications", as: basic(made), body: `{"name":"x"}`,
			status: http.StatusForbidden, code: latchkey.EFORBIDDEN},
		post("operator creates an operator", e.operator, "/v1/principals", `{"name":"root2","role":"operator"}`, http.StatusCreated, ""),
		post("operator creates in a named account", e.operator, "/v1/principals?account=other", `{"name":"pat","role":"admin"}`, http.StatusCreated, ""),
		post("name taken", e.admin, "/v1/principals", `{"name":"pat","role":"viewer"}`, http.StatusConflict, latchkey.EEXISTS),
		post("role not known", e.admin, "/v1/principals", `{"name":"x","role":"root"}`, http.StatusBadRequest, latchkey.EINVALID),
		post("no role", e.admin, "/v1/principals", `{"name":"x"}`, http.StatusBadRequest, latchkey.EINVALID),
		post("bad name", e.admin, "/v1/principals", `{"name":"x y","role":"viewer"}`, http.StatusBadRequest, latchkey.EINVALID),
		post("admin may not create an operator", e.admin, "/v1/principals", `{"name":"x","role":"operator"}`, http.StatusForbidden, latchkey.EFORBIDDEN),
		post("admin names another account", e.admin, "/v1/principals?account=other", `{"name":"x","role":"viewer"}`, http.StatusNotFound, latchkey.ENOTFOUND),
		post("viewer", e.viewer, "/v1/principals", `{"name":"x","role":"viewer"}`, http.StatusForbidden, latchkey.EFORBIDDEN),
		{name: "no credential", method: "POST", path: "/v1/principals", body: `{"name":"x","role":"viewer"}`,
			status: http.StatusUnauthorized, code: latchkey.EUNAUTHORIZED},
	})
}

func TestGetAndListPrincipals(t *testing.T) {
	e := newEnv(t)
	get := func(name string, as cred, path string, status int, code string) apiCase {
		return apiCase{name: name, method: "GET", path: path, as: bearer(as), status: status, code: code}
	}
	names := func(want ...string) func(*testing.T, *resp) {
		return func(t *testing.T, r *resp) {
			t.Helper()
			var out struct{ Principals []latchkey.Principal }
			r.decode(t, &out)
			var got []string
			for _, p := range out.Principals {
				got = append(got, p.Account+"/"+p.Name)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("principals (-want +got):\n%s", diff)
			}
		}
	}
	one := get("viewer reads one", e.viewer, "/v1/principals/alice", http.StatusOK, "")
	one.check = func(t *testing.T, r *resp) {
		var p latchkey.Principal
		r.decode(t, &p)
		if diff := cmp.Diff(latchkey.Principal{Account: "default", Name: "alice", Role: latchkey.RoleAdmin, CreatedAt: start}, p); diff != "" {
			t.Errorf("principal (-want +got):\n%s", diff)
		}
	}
	listed := func(c apiCase, want ...string) apiCase { c.check = names(want...); return c }
	other := get("another account's principal", e.admin, "/v1/principals/olga", http.StatusNotFound, latchkey.ENOTFOUND)
	other.check = sameAs(e, bearer(e.admin), "GET", "/v1/principals/ghost", "olga", "ghost")
	e.run(t, []apiCase{
		listed(get("admin lists its account", e.admin, "/v1/principals", http.StatusOK, ""),
			"default/admin", "default/alice", "default/vera", "default/victor"),
		listed(get("operator names an account", e.operator, "/v1/principals?account=other", http.StatusOK, ""), "other/olga"),
		listed(get("other admin", e.otherAdmin, "/v1/principals", http.StatusOK, ""), "other/olga"),
		get("admin names another account", e.admin, "/v1/principals?account=other", http.StatusNotFound, latchkey.ENOTFOUND),
		one,
		get("unknown", e.admin, "/v1/principals/ghost", http.StatusNotFound, latchkey.ENOTFOUND),
		other,
		get("verifier lists", e.verifierP, "/v1/principals", http.StatusForbidden, latchkey.EFORBIDDEN),
		{name: "no credential", method: "GET", path: "/v1/principals", status: http.StatusUnauthorized, code: latchkey.EUNAUTHORIZED},
	})
}

func TestDeletePrincipal(t *testing.T) {
	e := newEnv(t)
	doomed := e.newPrincipal(t, latchkey.DefaultAccount, "doomed", latchkey.RoleViewer)
	del := func(name string, as cred, path string, status int, code string) apiCase {
		return apiCase{name: name, method: "DELETE", path: path, as: bearer(as), status: status, code: code}
	}
	e.run(t, []apiCase{
		del("viewer", e.viewer, "/v1/principals/doomed", http.StatusForbidden, latchkey.EFORBIDDEN),
		del("itself", e.admin, "/v1/principals/alice", http.StatusConflict, latchkey.ECONFLICT),
		del("operator itself", e.operator, "/v1/principals/admin", http.StatusConflict, latchkey.ECONFLICT),
		del("admin may not delete an operator", e.admin, "/v1/principals/admin", http.StatusForbidden, latchkey.EFORBIDDEN),
		del("unknown", e.admin, "/v1/principals/ghost", http.StatusNotFound, latchkey.ENOTFOUND),
		del("another account's principal", e.admin, "/v1/principals/olga", http.StatusNotFound, latchkey.ENOTFOUND),
		del("admin names another account", e.admin, "/v1/principals/olga?account=other", http.StatusNotFound, latchkey.ENOTFOUND),
		{name: "doomed still signs in", method: "GET", path: "/v1/accounts", as: bearer(doomed), status: http.StatusOK},
		del("admin deletes", e.admin, "/v1/principals/doomed", http.StatusNoContent, ""),
		{name: "its key no longer signs in", method: "GET", path: "/v1/accounts", as: bearer(doomed),
			status: http.StatusUnauthorized, code: latchkey.EUNAUTHORIZED},
		{name: "its key is gone", method: "GET", path: "/v1/access-keys/" + doomed.id, as: bearer(e.admin),
			status: http.StatusNotFound, code: latchkey.ENOTFOUND},
		del("deleted twice", e.admin, "/v1/principals/doomed", http.StatusNotFound, latchkey.ENOTFOUND),
		del("operator deletes in a named account", e.operator, "/v1/principals/olga?account=other", http.StatusNoContent, ""),
		{name: "deleted admin no longer signs in", method: "GET", path: "/v1/accounts", as: bearer(e.otherAdmin),
			status: http.StatusUnauthorized, code: latchkey.EUNAUTHORIZED},
	})
}

func TestPrincipalAccessKeys(t *testing.T) {
	e := newEnv(t)
	post := func(name string, as cred, path, body string, status int, code string) apiCase {
		return apiCase{name: name, method: "POST", path: path, as: bearer(as), body: body, status: status, code: code}
	}
	var second cred
	ok := post("admin adds a second key to itself", e.admin, "/v1/principals/alice/access-keys", `{"description":"rotation"}`, http.StatusCreated, "")
	ok.check = func(t *testing.T, r *resp) {
		var k struct {
			latchkey.AccessKey
			Secret string `json:"secret_access_key"`
		}
		r.decode(t, &k)
		if k.Principal != "alice" || k.Role != latchkey.RoleAdmin || k.Description != "rotation" || !keyformat.ValidSecret(k.Secret) {
			t.Errorf("key %+v", k.AccessKey)
		}
		second = cred{k.ID, k.Secret}
	}
	e.run(t, []apiCase{ok})
	list := func(name string, as cred, path string, want ...string) apiCase {
		return apiCase{name: name, method: "GET", path: path, as: bearer(as), status: http.StatusOK,
			check: func(t *testing.T, r *resp) {
				var out struct {
					Keys []latchkey.AccessKey `json:"access_keys"`
				}
				r.decode(t, &out)
				var got []string
				for _, k := range out.Keys {
					got = append(got, k.ID)
				}
				if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
					t.Errorf("keys (-want +got):\n%s", diff)
				}
			}}
	}
	get := func(name string, as cred, path string, status int, code string) apiCase {
		return apiCase{name: name, method: "GET", path: path, as: bearer(as), status: status, code: code}
	}
	e.run(t, []apiCase{
		{name: "the second key signs in", method: "GET", path: "/v1/accounts", as: bearer(second), status: http.StatusOK},
		list("both keys listed", e.viewer, "/v1/principals/alice/access-keys", e.admin.id, second.id),
		post("a third is over the limit", e.admin, "/v1/principals/alice/access-keys", `{}`, http.StatusConflict, latchkey.ELIMIT),
		post("admin may not add a key to an operator", e.admin, "/v1/principals/admin/access-keys", `{}`, http.StatusForbidden, latchkey.EFORBIDDEN),
		post("operator adds a key to an operator", e.operator, "/v1/principals/admin/access-keys", `{}`, http.StatusCreated, ""),
		post("admin adds a key to a viewer", e.admin, "/v1/principals/victor/access-keys", `{}`, http.StatusCreated, ""),
		post("unknown principal", e.admin, "/v1/principals/ghost/access-keys", `{}`, http.StatusNotFound, latchkey.ENOTFOUND),
		post("another account's principal", e.admin, "/v1/principals/olga/access-keys", `{}`, http.StatusNotFound, latchkey.ENOTFOUND),
		post("description too long", e.admin, "/v1/principals/victor/access-keys", `{"description":"`+strings.Repeat("d", latchkey.MaxDescriptionLen+1)+`"}`,
			http.StatusBadRequest, latchkey.EINVALID),
		post("viewer", e.viewer, "/v1/principals/victor/access-keys", `{}`, http.StatusForbidden, latchkey.EFORBIDDEN),
		get("unknown principal's keys", e.admin, "/v1/principals/ghost/access-keys", http.StatusNotFound, latchkey.ENOTFOUND),
		get("another account's principal's keys", e.admin, "/v1/principals/olga/access-keys", http.StatusNotFound, latchkey.ENOTFOUND),
		get("bad limit", e.admin, "/v1/principals/alice/access-keys?limit=0", http.StatusBadRequest, latchkey.EINVALID),
	})
}
