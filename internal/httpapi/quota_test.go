package httpapi_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
)

func TestQuotaOnVerifyAndForwardAuth(t *testing.T) {
	e := newEnv(t)
	e.verifier.Quotas = e.svc
	rule, err := httpapi.ParseScopeRule("GET /v1/authorize api:read cost=3")
	if err != nil {
		t.Fatal(err)
	}
	e.api.ScopeRules = []httpapi.ScopeRule{rule}
	e.mustApp(t, latchkey.DefaultAccount, "metered")
	k, err := e.svc.CreateAccessKey(t.Context(), e.sys(), latchkey.DefaultAccount, "metered", latchkey.NewAccessKey{
		Quota: &latchkey.Quota{Remaining: 10, Refill: &latchkey.Refill{Amount: 10, Interval: "1h"}}})
	if err != nil {
		t.Fatal(err)
	}
	reset := start.Add(time.Hour)
	verify := func(cost string) (int, httpapi.VerifyResponse) {
		t.Helper()
		body := `{"key":"` + k.Secret + `"`
		if cost != "" {
			body += `,"cost":` + cost
		}
		r := e.do(t, "POST", "/v1/verify", bearer(e.verifierP), body+"}")
		var out httpapi.VerifyResponse
		if r.status == http.StatusOK {
			r.decode(t, &out)
		}
		return r.status, out
	}
	for _, tc := range []struct {
		name      string
		cost      string
		status    int
		code      latchkey.Code
		remaining int64
	}{
		{"cost 4", "4", 200, latchkey.CodeValid, 6},
		{"cost 7 with 6 left", "7", 200, latchkey.CodeQuotaExceeded, 6},
		{"negative cost", "-1", 400, "", 0},
		{"cost over the bound", "1125899906842625", 400, "", 0},
		{"default cost 1", "", 200, latchkey.CodeValid, 5},
		{"cost 0 takes nothing", "0", 200, latchkey.CodeValid, 5},
	} {
		status, out := verify(tc.cost)
		if status != tc.status || out.Code != tc.code {
			t.Fatalf("%s: %d %s, want %d %s", tc.name, status, out.Code, tc.status, tc.code)
		}
		if status != 200 {
			continue
		}
		if out.Quota == nil || out.Quota.Remaining != tc.remaining || out.Quota.ResetAt == nil || !out.Quota.ResetAt.Equal(reset) {
			t.Fatalf("%s: quota %+v, want %d left until %s", tc.name, out.Quota, tc.remaining, reset)
		}
		if tc.code == latchkey.CodeQuotaExceeded && out.RetryAfterSeconds != 3600 {
			t.Errorf("%s: retry_after_seconds %d, want 3600", tc.name, out.RetryAfterSeconds)
		}
	}

	// Forward auth: the scope rule's cost is 3.
	authorize := func() *resp {
		return e.do(t, "GET", "/v1/authorize", bearer(cred{k.AccessKey.ID, k.Secret}), "")
	}
	for i, want := range []struct {
		status    int
		remaining string
	}{{200, "2"}, {429, "2"}} {
		r := authorize()
		if r.status != want.status || r.header.Get(httpapi.HeaderQuotaRemaining) != want.remaining ||
			r.header.Get(httpapi.HeaderQuotaReset) != strconv.FormatInt(reset.Unix(), 10) {
			t.Fatalf("authorize %d: %d, remaining %q, reset %q", i, r.status, r.header.Get(httpapi.HeaderQuotaRemaining), r.header.Get(httpapi.HeaderQuotaReset))
		}
		if want.status == 429 && (r.header.Get(httpapi.HeaderCode) != string(latchkey.CodeQuotaExceeded) || r.header.Get("Retry-After") != "3600") {
			t.Fatalf("spent: code %q, Retry-After %q", r.header.Get(httpapi.HeaderCode), r.header.Get("Retry-After"))
		}
	}

	// Management: the quota and its history; a top-up; a refused amount.
	r := e.do(t, "GET", "/v1/access-keys/"+k.AccessKey.ID+"/quota", bearer(e.viewer), "")
	if r.status != 200 {
		t.Fatalf("GET quota: %d %s", r.status, r.body)
	}
	var v struct {
		Quota   latchkey.Quota          `json:"quota"`
		History []*latchkey.QuotaChange `json:"history"`
	}
	r.decode(t, &v)
	// Exact on one replica: what the verifier holds leased counts as
	// left, and is shown as leased.
	if v.Quota.Remaining != 2 || v.Quota.Leased > 2 || v.Quota.NextRefillAt == nil || !v.Quota.NextRefillAt.Equal(reset) || len(v.History) == 0 {
		t.Fatalf("GET quota: %s", r.body)
	}
	if r := e.do(t, "POST", "/v1/access-keys/"+k.AccessKey.ID+"/quota/top-up", bearer(e.admin), `{"amount":0}`); r.status != 400 {
		t.Fatalf("top-up 0: %d", r.status)
	}
	if r := e.do(t, "POST", "/v1/access-keys/"+k.AccessKey.ID+"/quota/top-up", bearer(e.admin), `{"amount":1,"extra":1}`); r.status != 400 {
		t.Fatalf("top-up with an unknown field: %d", r.status)
	}
	r = e.do(t, "POST", "/v1/access-keys/"+k.AccessKey.ID+"/quota/top-up", bearer(e.admin), `{"amount":5}`)
	if r.status != 200 {
		t.Fatalf("top-up: %d %s", r.status, r.body)
	}
	var top struct {
		Quota latchkey.Quota `json:"quota"`
	}
	if r.decode(t, &top); top.Quota.Remaining != 7 {
		t.Fatalf("a top-up of 5 with 2 left: %s, want 7 left", r.body)
	}
	if r := authorize(); r.status != 200 {
		t.Fatalf("after a top-up: %d", r.status)
	}
	// A PATCH with a bad quota names the field.
	r = e.do(t, "PATCH", "/v1/access-keys/"+k.AccessKey.ID, bearer(e.admin), `{"quota":{"remaining":1,"refill":{"amount":1,"interval":"fortnightly"}}}`)
	if r.status != 400 || r.errorBody(t).Error.Code != latchkey.EINVALID {
		t.Fatalf("bad interval: %d %s", r.status, r.body)
	}
}

func TestScopeRuleCost(t *testing.T) {
	for _, tc := range []struct {
		in   string
		cost int64
		ok   bool
	}{
		{"GET /search/* search:read", 0, true},
		{"GET /search/* search:read cost=5", 5, true},
		{"POST /free * cost=0", -1, true},
		{"GET /search/* search:read cost=-1", 0, false},
		{"GET /search/* search:read cost=x", 0, false},
		{"GET /search/* search:read 5", 0, false},
		{"GET /search/* search:read cost=5 more", 0, false},
	} {
		r, err := httpapi.ParseScopeRule(tc.in)
		if (err == nil) != tc.ok || (tc.ok && r.Cost != tc.cost) {
			t.Errorf("%q: %+v, %v", tc.in, r, err)
		}
	}
}
