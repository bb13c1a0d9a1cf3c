package manage_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/verify"
)

const day = latchkey.Day

func dur(d time.Duration) *latchkey.Duration { v := latchkey.Duration(d); return &v }

// received is one webhook call as a receiver saw it.
type received struct {
	ID, Type string
	Body     map[string]any
}

// receiver is a local HTTP receiver that checks every signature with the
// webhook's secret and fails the first `fail` calls with 503.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string
	now    func() time.Time
	mu     sync.Mutex
	fail   int
	calls  int
	got    []received
}

func newReceiver(t *testing.T, now func() time.Time, fail int) *receiver {
	r := &receiver{t: t, now: now, fail: fail}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls++
		if err := latchkey.VerifyWebhook(r.secret, req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"),
			req.Header.Get("webhook-signature"), body, r.now()); err != nil {
			r.t.Errorf("receiver: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.calls <= r.fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			r.t.Errorf("receiver: body %s: %v", body, err)
		}
		r.got = append(r.got, received{req.Header.Get("webhook-id"), m["type"].(string), m})
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, g := range r.got {
		out = append(out, g.Type)
	}
	return out
}

func (e *env) hook(t *testing.T, r *receiver, events ...string) *manage.CreatedWebhook {
	t.Helper()
	w, err := e.svc.CreateWebhook(t.Context(), e.operator, latchkey.DefaultAccount, latchkey.NewWebhook{URL: r.srv.URL + "/hook", Events: events})
	if err != nil {
		t.Fatal(err)
	}
	r.secret = w.Secret
	return w
}

func (e *env) dispatcher() *manage.Dispatcher {
	d := manage.NewDispatcher(e.store, nil)
	d.Destinations = e.dest
	d.Now = e.clock.Now
	d.Backoff = func(attempt int) time.Duration { return time.Duration(attempt) * time.Minute }
	return d
}

func (e *env) deliver(t *testing.T, d *manage.Dispatcher) int {
	t.Helper()
	n, err := d.RunOnce(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *env) enforce(t *testing.T, svc *manage.Service) manage.EnforceResult {
	t.Helper()
	res, err := svc.EnforcePolicies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (e *env) policy(t *testing.T, s latchkey.PolicySettings) {
	t.Helper()
	if _, err := e.svc.PutPolicy(t.Context(), e.operator, latchkey.DefaultAccount, s); err != nil {
		t.Fatal(err)
	}
}

// policyEvents returns the audit events whose actor is the policy.
func (e *env) policyEvents(t *testing.T) []string {
	var out []string
	for _, ev := range e.events(t) {
		if ev.Actor == latchkey.PolicyActor {
			out = append(out, ev.Action+" "+ev.Target)
		}
	}
	return out
}

// TestUnusedKeyDeactivatedOnceAcrossRestarts walks an unused key through
// a policy that deactivates keys unused for 20 days, with 3 days' notice:
// key.unused at 10 days, the announcement at 17, the deactivation at 20,
// each once, while the server restarts (a new Service on the same store)
// between rounds.
func TestUnusedKeyDeactivatedOnceAcrossRestarts(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, e.clock.Now, 0)
	e.hook(t, r, latchkey.EventKeyUnused, latchkey.EventKeyUpdated)
	e.policy(t, latchkey.PolicySettings{UnusedAfter: dur(10 * day), DeactivateUnusedAfter: dur(20 * day), NoticeBefore: dur(3 * day)})
	e.app(t, latchkey.DefaultAccount, "billing")
	k := e.key(t, latchkey.DefaultAccount, "billing")
	d := e.dispatcher()

	restart := func() *manage.Service {
		ix := verify.NewIndex()
		if _, err := ix.Sync(t.Context(), e.store); err != nil {
			t.Fatal(err)
		}
		svc := manage.New(e.store, ix, nil)
		svc.Now = e.clock.Now
		return svc
	}
	steps := []struct {
		at          time.Duration
		deactivated int
		notices     int
		status      latchkey.Status
	}{
		{9 * day, 0, 0, latchkey.StatusActive},
		// key.unused, for the application key and the default account's
		// four principal keys, none of which is used either
		{10 * day, 0, 5, latchkey.StatusActive},
		{10 * day, 0, 0, latchkey.StatusActive},
		{17*day - time.Second, 0, 0, latchkey.StatusActive},
		{17 * day, 0, 1, latchkey.StatusActive}, // key.unused with deactivate_at
		{20*day - time.Second, 0, 0, latchkey.StatusActive},
		{20 * day, 1, 0, latchkey.StatusInactive},
		{20 * day, 0, 0, latchkey.StatusInactive},
		{40 * day, 0, 0, latchkey.StatusInactive},
	}
	for _, st := range steps {
		e.clock.t = t0.Add(st.at)
		for range 2 { // twice, on a restarted service each time
			res := e.enforce(t, restart())
			if res.Deactivated != st.deactivated || res.Notices != st.notices {
				t.Fatalf("at %v: %+v, want %d deactivated and %d notices", st.at, res, st.deactivated, st.notices)
			}
			st.deactivated, st.notices = 0, 0
		}
		if got := e.storedKey(t, k.ID).Status; got != st.status {
			t.Fatalf("at %v: status %s, want %s", st.at, got, st.status)
		}
		e.deliver(t, d)
	}
	if diff := cmp.Diff([]string{latchkey.ActionAccessKeyUpdate + " " + k.ID}, e.policyEvents(t)); diff != "" {
		t.Errorf("audit events by the policy (-want +got):\n%s", diff)
	}
	var (
		types    []string
		announce map[string]any
	)
	r.mu.Lock()
	for _, g := range r.got {
		data := g.Body["data"].(map[string]any)
		if data["access_key"].(map[string]any)["access_key_id"] != k.ID {
			continue
		}
		types = append(types, g.Type)
		if data["deactivate_at"] != nil {
			announce = data
		}
	}
	r.mu.Unlock()
	want := []string{latchkey.EventKeyUnused, latchkey.EventKeyUnused, latchkey.EventKeyUpdated}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("webhooks received about the key (-want +got):\n%s", diff)
	}
	if announce["deactivate_at"] != t0.Add(20*day).Format(time.RFC3339) {
		t.Errorf("announcement says deactivate_at %v, want %v", announce["deactivate_at"], t0.Add(20*day))
	}
}

// TestEnforceAcrossPages: EnforcePolicies reads keys a page at a time;
// with pages of 3 keys, each of 12 keys (8 application keys, the default
// account's 4 principal keys) still gets its notice once, and each
// application key its announcement and deactivation once.
func TestEnforceAcrossPages(t *testing.T) {
	defer func(n int) { *manage.EnforcePageSize = n }(*manage.EnforcePageSize)
	*manage.EnforcePageSize = 3
	e := newEnv(t)
	r := newReceiver(t, e.clock.Now, 0)
	e.hook(t, r, latchkey.EventKeyUnused)
	e.policy(t, latchkey.PolicySettings{UnusedAfter: dur(10 * day), DeactivateUnusedAfter: dur(20 * day), NoticeBefore: dur(3 * day)})
	var keys []string
	for i := range 4 {
		app := fmt.Sprintf("app-%d", i)
		e.app(t, latchkey.DefaultAccount, app)
		keys = append(keys, e.key(t, latchkey.DefaultAccount, app).ID, e.key(t, latchkey.DefaultAccount, app).ID)
	}
	steps := []struct {
		at                   time.Duration
		notices, deactivated int
	}{
		{10 * day, 12, 0},
		{10 * day, 0, 0},
		{17 * day, 8, 0},
		{20 * day, 0, 8},
		{20 * day, 0, 0},
	}
	for _, st := range steps {
		e.clock.t = t0.Add(st.at)
		if res := e.enforce(t, e.svc); res.Notices != st.notices || res.Deactivated != st.deactivated {
			t.Fatalf("at %v: %+v, want %d notices and %d deactivated", st.at, res, st.notices, st.deactivated)
		}
	}
	for _, id := range keys {
		if got := e.storedKey(t, id).Status; got != latchkey.StatusInactive {
			t.Errorf("key %s is %s, want Inactive", id, got)
		}
	}
}

// TestActionPostponedForNotice: a key already long unused when the policy
// is turned on is announced now and deactivated only after the notice.
func TestActionPostponedForNotice(t *testing.T) {
	e := newEnv(t)
	e.app(t, latchkey.DefaultAccount, "billing")
	k := e.key(t, latchkey.DefaultAccount, "billing")
	e.clock.Advance(100 * day)
	e.policy(t, latchkey.PolicySettings{DeactivateUnusedAfter: dur(30 * day), NoticeBefore: dur(7 * day)})
	if res := e.enforce(t, e.svc); res.Deactivated != 0 || res.Notices != 1 {
		t.Fatalf("first round %+v: want the announcement only", res)
	}
	e.clock.Advance(7*day - time.Second)
	if res := e.enforce(t, e.svc); res.Deactivated != 0 {
		t.Fatalf("deactivated before the notice ran out")
	}
	e.clock.Advance(time.Second)
	if res := e.enforce(t, e.svc); res.Deactivated != 1 {
		t.Fatalf("not deactivated after the notice: %+v", res)
	}
	if e.storedKey(t, k.ID).Status != latchkey.StatusInactive {
		t.Error("key still Active")
	}
}

// TestActionCancelledWhenKeyUsed: a key used after the announcement is not
// deactivated; its idle clock starts again.
func TestActionCancelledWhenKeyUsed(t *testing.T) {
	e := newEnv(t)
	e.app(t, latchkey.DefaultAccount, "billing")
	k := e.key(t, latchkey.DefaultAccount, "billing")
	e.policy(t, latchkey.PolicySettings{DeactivateUnusedAfter: dur(20 * day), NoticeBefore: dur(3 * day)})
	e.clock.Advance(18 * day)
	if res := e.enforce(t, e.svc); res.Notices != 1 {
		t.Fatalf("no announcement: %+v", res)
	}
	// The key is used (in memory, not yet flushed to the store).
	rec := verify.NewRecorder(e.store, time.Hour, nil)
	v := verify.New(e.ix, rec)
	v.Now = e.clock.Now
	if res := v.Verify(&verify.Request{Secret: k.Secret}); !res.Valid() {
		t.Fatalf("verify: %s", res.Code)
	}
	e.clock.Advance(3 * day)
	res := e.enforce(t, e.svc)
	if res.Deactivated != 0 || res.Cancelled != 1 {
		t.Fatalf("after use: %+v, want the action cancelled", res)
	}
	if e.storedKey(t, k.ID).Status != latchkey.StatusActive {
		t.Error("a used key was deactivated")
	}
}

// TestInactiveKeyDeletedAndRotationCompleted: the old key of a rotation,
// left Inactive, is deleted by the policy; that completes the rotation.
func TestInactiveKeyDeletedAndRotationCompleted(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, e.clock.Now, 0)
	e.hook(t, r)
	e.policy(t, latchkey.PolicySettings{DeleteInactiveAfter: dur(5 * day), NoticeBefore: dur(1 * day)})
	e.app(t, latchkey.DefaultAccount, "billing")
	old := e.key(t, latchkey.DefaultAccount, "billing")
	e.clock.Advance(time.Hour)
	next := e.key(t, latchkey.DefaultAccount, "billing")
	e.clock.Advance(day)
	e.deactivate(t, old.ID)
	e.clock.Advance(4 * day)
	if res := e.enforce(t, e.svc); res.Notices != 1 || res.Deleted != 0 {
		t.Fatalf("at 4 days Inactive: %+v, want the announcement", res)
	}
	e.clock.Advance(day)
	if res := e.enforce(t, e.svc); res.Deleted != 1 {
		t.Fatalf("at 5 days Inactive: %+v, want the deletion", res)
	}
	if e.storedKey(t, old.ID) != nil {
		t.Fatal("the Inactive key still exists")
	}
	d := e.dispatcher()
	for e.deliver(t, d) > 0 {
	}
	want := []string{latchkey.EventKeyCreated, latchkey.EventKeyCreated, latchkey.EventRotationStarted, latchkey.EventKeyUpdated,
		latchkey.EventKeyDeletionSched, latchkey.EventKeyDeleted, latchkey.EventRotationCompleted}
	got := r.types()
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	rep, err := e.svc.CredentialReport(t.Context(), e.admin, latchkey.DefaultAccount)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rep.Keys {
		if row.AccessKeyID == next.ID && (row.LastRotatedAt == nil || !row.LastRotatedAt.Equal(e.clock.Now())) {
			t.Errorf("new key's last_rotated_at = %v, want %v", row.LastRotatedAt, e.clock.Now())
		}
	}
	if diff := cmp.Diff([]string{latchkey.ActionAccessKeyDelete + " " + old.ID}, e.policyEvents(t)); diff != "" {
		t.Errorf("audit by the policy (-want +got):\n%s", diff)
	}
}

// TestDeliveryRetriedThenDelivered: a real local receiver fails twice,
// then accepts; the log shows the attempts, backoff and codes.
func TestDeliveryRetriedThenDelivered(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, e.clock.Now, 2)
	w := e.hook(t, r)
	e.app(t, latchkey.DefaultAccount, "billing")
	e.key(t, latchkey.DefaultAccount, "billing")
	d := e.dispatcher()
	var outcomes []string
	d.Observe = func(o string, _ time.Duration) { outcomes = append(outcomes, o) }
	log := func() *latchkey.WebhookDelivery {
		t.Helper()
		ds, _, err := e.svc.ListDeliveries(t.Context(), e.viewer, latchkey.DeliveryFilter{WebhookID: w.ID})
		if err != nil || len(ds) != 1 {
			t.Fatalf("ListDeliveries = %v, %v", ds, err)
		}
		return ds[0]
	}
	if n := e.deliver(t, d); n != 1 {
		t.Fatalf("claimed %d", n)
	}
	if got := log(); got.Status != latchkey.DeliveryPending || got.Attempts != 1 || got.ResponseCode != 503 ||
		got.LastError != "HTTP 503" || !got.NextAttemptAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after attempt 1: %+v", got)
	}
	if n := e.deliver(t, d); n != 0 {
		t.Fatal("retried before the backoff")
	}
	e.clock.Advance(time.Minute)
	e.deliver(t, d)
	if got := log(); got.Attempts != 2 || !got.NextAttemptAt.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("after attempt 2: %+v", got)
	}
	e.clock.Advance(2 * time.Minute)
	e.deliver(t, d)
	got := log()
	if got.Status != latchkey.DeliveryDelivered || got.Attempts != 3 || got.ResponseCode != 204 || got.NextAttemptAt != nil {
		t.Fatalf("after attempt 3: %+v", got)
	}
	if diff := cmp.Diff([]string{"retry", "retry", "delivered"}, outcomes); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if len(r.got) != 1 || r.got[0].Type != latchkey.EventKeyCreated || r.got[0].ID != got.EventID {
		t.Errorf("receiver got %+v", r.got)
	}
}

// TestDeliveryGivesUp: after MaxAttempts failures the delivery is failed.
func TestDeliveryGivesUp(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, e.clock.Now, 100)
	w := e.hook(t, r)
	if _, err := e.svc.PingWebhook(t.Context(), e.admin, w.ID); err != nil {
		t.Fatal(err)
	}
	d := e.dispatcher()
	d.MaxAttempts = 3
	for range 3 {
		e.deliver(t, d)
		e.clock.Advance(time.Hour)
	}
	ds, _, _ := e.svc.ListDeliveries(t.Context(), e.admin, latchkey.DeliveryFilter{WebhookID: w.ID})
	if len(ds) != 1 || ds[0].Status != latchkey.DeliveryFailed || ds[0].Attempts != 3 || ds[0].EventType != latchkey.EventWebhookPing {
		t.Fatalf("deliveries %+v", ds[0])
	}
	if n := e.deliver(t, d); n != 0 {
		t.Error("a failed delivery was tried again")
	}
}

func TestWebhookManagement(t *testing.T) {
	e := newEnv(t)
	_, err := e.svc.CreateWebhook(t.Context(), e.viewer, latchkey.DefaultAccount, latchkey.NewWebhook{URL: "https://hooks.example.com/"})
	wantCode(t, err, latchkey.EFORBIDDEN)
	_, err = e.svc.CreateWebhook(t.Context(), e.admin, latchkey.DefaultAccount, latchkey.NewWebhook{URL: "https://u:p@hooks.example.com/"})
	wantCode(t, err, latchkey.EINVALID)
	_, err = e.svc.CreateWebhook(t.Context(), e.admin, latchkey.DefaultAccount, latchkey.NewWebhook{URL: "https://hooks.example.com/", Events: []string{"key.nope"}})
	wantCode(t, err, latchkey.EINVALID)
	w, err := e.svc.CreateWebhook(t.Context(), e.admin, latchkey.DefaultAccount, latchkey.NewWebhook{URL: "https://hooks.example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.GetWebhook(t.Context(), e.otherAdmin, w.ID)
	wantCode(t, err, latchkey.ENOTFOUND)
	_, err = e.svc.GetWebhook(t.Context(), e.admin, "wh_nope")
	wantCode(t, err, latchkey.ENOTFOUND)
	off := false
	got, err := e.svc.UpdateWebhook(t.Context(), e.admin, w.ID, latchkey.WebhookUpdate{Enabled: &off})
	if err != nil || got.Enabled {
		t.Fatalf("UpdateWebhook = %+v, %v", got, err)
	}
	_, err = e.svc.UpdateWebhook(t.Context(), e.viewer, w.ID, latchkey.WebhookUpdate{Enabled: &off})
	wantCode(t, err, latchkey.EFORBIDDEN)
	// The secret is in no audit event.
	for _, ev := range e.events(t) {
		if json := string(ev.Before) + string(ev.After); ev.TargetType == "webhook" && (json == "" || contains(json, w.Secret[6:])) {
			t.Errorf("audit event %s %s holds the secret or nothing", ev.Action, ev.Target)
		}
	}
	wantCode(t, e.svc.DeleteWebhook(t.Context(), e.otherAdmin, w.ID), latchkey.ENOTFOUND)
	if err := e.svc.DeleteWebhook(t.Context(), e.admin, w.ID); err != nil {
		t.Fatal(err)
	}
}

func contains(s, sub string) bool { return len(sub) > 0 && len(s) >= len(sub) && indexOf(s, sub) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// TestFindingsInList: with a 30-day policy, a 31-day-old unrestricted key
// is listed with rotation_due and unrestricted.
func TestFindingsInList(t *testing.T) {
	e := newEnv(t)
	e.app(t, latchkey.DefaultAccount, "billing")
	k := e.key(t, latchkey.DefaultAccount, "billing")
	e.policy(t, latchkey.PolicySettings{MaxKeyAge: dur(30 * day), UnusedAfter: dur(0)})
	e.clock.Advance(31 * day)
	keys, _, err := e.svc.ListAccessKeys(t.Context(), e.viewer, latchkey.AccessKeyFilter{Account: latchkey.DefaultAccount, Application: "billing"})
	if err != nil || len(keys) != 1 {
		t.Fatalf("ListAccessKeys = %v, %v", keys, err)
	}
	want := []latchkey.Finding{latchkey.FindingRotationDue, latchkey.FindingUnrestricted}
	if diff := cmp.Diff(want, keys[0].Findings); diff != "" {
		t.Errorf("findings in the list (-want +got):\n%s", diff)
	}
	one, err := e.svc.GetAccessKey(t.Context(), e.viewer, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, one.Findings); diff != "" {
		t.Errorf("findings of one key (-want +got):\n%s", diff)
	}
	rep, err := e.svc.CredentialReport(t.Context(), e.viewer, latchkey.DefaultAccount)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Summary["rotation_due"] < 1 || rep.Policy.MaxKeyAge != latchkey.Duration(30*day) {
		t.Errorf("report summary %v, policy %v", rep.Summary, rep.Policy)
	}
	_, err = e.svc.CredentialReport(t.Context(), e.otherAdmin, latchkey.DefaultAccount)
	wantCode(t, err, latchkey.ENOTFOUND)
	_, err = e.svc.PutPolicy(t.Context(), e.viewer, latchkey.DefaultAccount, latchkey.PolicySettings{})
	wantCode(t, err, latchkey.EFORBIDDEN)
}
