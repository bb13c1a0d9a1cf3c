package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
)

func wantApp(want latchkey.Application) func(*testing.T, *resp) {
	return func(t *testing.T, r *resp) {
		t.Helper()
		var got latchkey.Application
		r.decode(t, &got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("application (-want +got):\n%s", diff)
		}
	}
}

// sameAs checks that a 404 body is the one an unknown name gets: the same
// bytes once the names are swapped. A missing object and another account's
// must look alike.
func sameAs(e *env, as auth, method, unknownPath, name, unknownName string) func(*testing.T, *resp) {
	return func(t *testing.T, r *resp) {
		t.Helper()
		u := e.do(t, method, unknownPath, as, "")
		if u.status != http.StatusNotFound {
			t.Fatalf("unknown %s: status %d", unknownPath, u.status)
		}
		got := strings.ReplaceAll(string(r.body), name, unknownName)
		if got != string(u.body) {
			t.Errorf("another account's object answers\n%s\nbut an unknown one\n%s", r.body, u.body)
		}
		if r.header.Get("Content-Type") != u.header.Get("Content-Type") || len(r.header) != len(u.header) {
			t.Errorf("headers differ: %v vs %v", r.header, u.header)
		}
	}
}

func TestCreateApplication(t *testing.T) {
	e := newEnv(t)
	post := func(name string, as cred, path, body string, status int, code string) apiCase {
		return apiCase{name: name, method: "POST", path: path, as: bearer(as), body: body, status: status, code: code}
	}
	ok := post("admin registers", e.admin, "/v1/applications", `{"name":"billing","description":"the billing service"}`, http.StatusCreated, "")
	ok.check = wantApp(latchkey.Application{Account: "default", Name: "billing", Description: "the billing service", CreatedAt: start})
	okOther := post("operator registers in a named account", e.operator, "/v1/applications?account=other", `{"name":"billing"}`, http.StatusCreated, "")
	okOther.check = wantApp(latchkey.Application{Account: "other", Name: "billing", CreatedAt: start})
	e.run(t, []apiCase{
		ok,
		okOther,
		post("name taken", e.admin, "/v1/applications", `{"name":"billing"}`, http.StatusConflict, latchkey.EEXISTS),
		post("name taken in another case", e.admin, "/v1/applications", `{"name":"Billing"}`, http.StatusConflict, latchkey.EEXISTS),
		post("no name", e.admin, "/v1/applications", `{"description":"x"}`, http.StatusBadRequest, latchkey.EINVALID),
		post("name with a slash", e.admin, "/v1/applications", `{"name":"a/b"}`, http.StatusBadRequest, latchkey.EINVALID),
		post("name starting with a dot", e.admin, "/v1/applications", `{"name":".hidden"}`, http.StatusBadRequest, latchkey.EINVALID),
		post("description too long", e.admin, "/v1/applications", `{"name":"x","description":"`+strings.Repeat("d", latchkey.MaxDescriptionLen+1)+`"}`,
			http.StatusBadRequest, latchkey.EINVALID),
		post("description with NUL", e.admin, "/v1/applications", `{"name":"x","description":"a\u0000b"}`, http.StatusBadRequest, latchkey.EINVALID),
		post("admin names another account", e.admin, "/v1/applications?account=other", `{"name":"x"}`, http.StatusNotFound, latchkey.ENOTFOUND),
		post("operator names an unknown account", e.operator, "/v1/applications?account=nosuch", `{"name":"x"}`, http.StatusNotFound, latchkey.ENOTFOUND),
		post("viewer", e.viewer, "/v1/applications", `{"name":"x"}`, http.StatusForbidden, latchkey.EFORBIDDEN),
		{name: "no credential", method: "POST", path: "/v1/applications", body: `{"name":"x"}`, status: http.StatusUnauthorized, code: latchkey.EUNAUTHORIZED},
	})
}

func TestGetApplication(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	e.mustKey(t, latchkey.DefaultAccount, "billing")
	e.mustApp(t, "other", "ledger")
	get := func(name string, as cred, path string, status int, code string) apiCase {
		return apiCase{name: name, method: "GET", path: path, as: bearer(as), status: status, code: code}
	}
	withCount := get("admin", e.admin, "/v1/applications/billing", http.StatusOK, "")
	withCount.check = wantApp(latchkey.Application{Account: "default", Name: "billing", CreatedAt: start, KeyCount: 1})
	otherApp := get("another account's application", e.admin, "/v1/applications/ledger", http.StatusNotFound, latchkey.ENOTFOUND)
	otherApp.check = sameAs(e, bearer(e.admin), "GET", "/v1/applications/ghost", "ledger", "ghost")
	otherAcc := get("admin names another account", e.admin, "/v1/applications/ledger?account=other", http.StatusNotFound, latchkey.ENOTFOUND)
	otherAcc.check = sameAs(e, bearer(e.admin), "GET", "/v1/applications/ledger?account=nosuch", "other", "nosuch")
	e.run(t, []apiCase{
		withCount,
		get("viewer", e.viewer, "/v1/applications/billing", http.StatusOK, ""),
		get("operator in a named account", e.operator, "/v1/applications/ledger?account=other", http.StatusOK, ""),
		get("unknown", e.admin, "/v1/applications/ghost", http.StatusNotFound, latchkey.ENOTFOUND),
		otherApp,
		otherAcc,
		{name: "no credential", method: "GET", path: "/v1/applications/billing", status: http.StatusUnauthorized, code: latchkey.EUNAUTHORIZED},
	})
}

func TestUpdateApplication(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	e.mustApp(t, "other", "ledger")
	patch := func(name string, as cred, path, body string, status int, code string) apiCase {
		return apiCase{name: name, method: "PATCH", path: path, as: bearer(as), body: body, status: status, code: code}
	}
	ok := patch("admin changes the description", e.admin, "/v1/applications/billing", `{"description":"new"}`, http.StatusOK, "")
	ok.check = wantApp(latchkey.Application{Account: "default", Name: "billing", Description: "new", CreatedAt: start})
	same := patch("an empty patch changes nothing", e.admin, "/v1/applications/billing", `{}`, http.StatusOK, "")
	same.check = wantApp(latchkey.Application{Account: "default", Name: "billing", Description: "new", CreatedAt: start})
	e.run(t, []apiCase{
		ok,
		same,
		patch("description too long", e.admin, "/v1/applications/billing", `{"description":"`+strings.Repeat("d", latchkey.MaxDescriptionLen+1)+`"}`,
			http.StatusBadRequest, latchkey.EINVALID),
		patch("unknown", e.admin, "/v1/applications/ghost", `{"description":"x"}`, http.StatusNotFound, latchkey.ENOTFOUND),
		patch("another account's application", e.admin, "/v1/applications/ledger", `{"description":"x"}`, http.StatusNotFound, latchkey.ENOTFOUND),
		patch("admin names another account", e.admin, "/v1/applications/ledger?account=other", `{"description":"x"}`, http.StatusNotFound, latchkey.ENOTFOUND),
		patch("viewer", e.viewer, "/v1/applications/billing", `{"description":"x"}`, http.StatusForbidden, latchkey.EFORBIDDEN),
	})
}

func TestDeleteApplication(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	e.mustApp(t, latchkey.DefaultAccount, "orders")
	e.mustKey(t, latchkey.DefaultAccount, "orders")
	e.mustApp(t, "other", "ledger")
	del := func(name string, as cred, path string, status int, code string) apiCase {
		return apiCase{name: name, method: "DELETE", path: path, as: bearer(as), status: status, code: code}
	}
	e.run(t, []apiCase{
		del("viewer", e.viewer, "/v1/applications/billing", http.StatusForbidden, latchkey.EFORBIDDEN),
		del("still owns keys", e.admin, "/v1/applications/orders", http.StatusConflict, latchkey.ECONFLICT),
		del("another account's application", e.admin, "/v1/applications/ledger", http.StatusNotFound, latchkey.ENOTFOUND),
		del("admin names another account", e.admin, "/v1/applications/ledger?account=other", http.StatusNotFound, latchkey.ENOTFOUND),
		del("admin deletes", e.admin, "/v1/applications/billing", http.StatusNoContent, ""),
		del("deleted twice", e.admin, "/v1/applications/billing", http.StatusNotFound, latchkey.ENOTFOUND),
		{name: "gone", method: "GET", path: "/v1/applications/billing", as: bearer(e.admin), status: http.StatusNotFound, code: latchkey.ENOTFOUND},
		del("operator deletes in a named account", e.operator, "/v1/applications/ledger?account=other", http.StatusNoContent, ""),
	})
}

func TestListApplications(t *testing.T) {
	e := newEnv(t)
	var names []string
	for i := range 7 {
		n := fmt.Sprintf("app-%d", i)
		e.mustApp(t, latchkey.DefaultAccount, n)
		names = append(names, n)
	}
	e.mustApp(t, "other", "ledger")
	list := func(name string, as cred, path string, want []string) apiCase {
		return apiCase{name: name, method: "GET", path: path, as: bearer(as), status: http.StatusOK,
			check: func(t *testing.T, r *resp) {
				var out struct {
					Applications []latchkey.Application `json:"applications"`
					Next         string                 `json:"next_page_token"`
				}
				r.decode(t, &out)
				var got []string
				for _, a := range out.Applications {
					got = append(got, a.Name)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("applications (-want +got):\n%s", diff)
				}
			}}
	}
	bad := func(name string, as cred, path string, status int, code string) apiCase {
		return apiCase{name: name, method: "GET", path: path, as: bearer(as), status: status, code: code}
	}
	otherAcc := bad("admin names another account", e.admin, "/v1/applications?account=other", http.StatusNotFound, latchkey.ENOTFOUND)
	otherAcc.check = sameAs(e, bearer(e.admin), "GET", "/v1/applications?account=nosuch", "other", "nosuch")
	e.run(t, []apiCase{
		list("admin", e.admin, "/v1/applications", names),
		list("viewer", e.viewer, "/v1/applications", names),
		list("operator defaults to the default account", e.operator, "/v1/applications", names),
		list("operator names an account", e.operator, "/v1/applications?account=other", []string{"ledger"}),
		list("other admin", e.otherAdmin, "/v1/applications", []string{"ledger"}),
		list("operator names an unknown account", e.operator, "/v1/applications?account=nosuch", nil),
		otherAcc,
		bad("limit 0", e.admin, "/v1/applications?limit=0", http.StatusBadRequest, latchkey.EINVALID),
		bad("limit -1", e.admin, "/v1/applications?limit=-1", http.StatusBadRequest, latchkey.EINVALID),
		bad("limit 1001", e.admin, "/v1/applications?limit=1001", http.StatusBadRequest, latchkey.EINVALID),
		bad("page token not base64", e.admin, "/v1/applications?page_token=%25%25", http.StatusBadRequest, latchkey.EINVALID),
		bad("verifier", e.verifierP, "/v1/applications", http.StatusForbidden, latchkey.EFORBIDDEN),
	})

	t.Run("pages", func(t *testing.T) {
		var got []string
		path := "/v1/applications?limit=3"
		pages := 0
		for {
			r := e.do(t, "GET", path, bearer(e.admin), "")
			e.expect(t, apiCase{method: "GET", path: path, status: http.StatusOK}, r)
			var out struct {
				Applications []latchkey.Application `json:"applications"`
				Next         string                 `json:"next_page_token"`
			}
			r.decode(t, &out)
			pages++
			for _, a := range out.Applications {
				got = append(got, a.Name)
			}
			if out.Next == "" {
				break
			}
			path = "/v1/applications?limit=3&page_token=" + url.QueryEscape(out.Next)
		}
		if diff := cmp.Diff(names, got); diff != "" {
			t.Errorf("applications across pages (-want +got):\n%s", diff)
		}
		if pages != 3 {
			t.Errorf("%d pages of 3 for 7 applications, want 3", pages)
		}
	})
}
