package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
)

var webhookTests = []test{
	{"WebhookCRUD", testWebhookCRUD},
	{"WebhookErrors", testWebhookErrors},
	{"EnqueueAndList", testEnqueueAndList},
	{"ClaimLeasesDeliveries", testClaimLeasesDeliveries},
	{"ConcurrentClaimsTakeDifferentRows", testConcurrentClaims},
	{"DeleteWebhookDeletesDeliveries", testDeleteWebhookDeliveries},
	{"PruneWebhookEvents", testPruneWebhookEvents},
}

func newWebhook(t *testing.T, s latchkey.Store, account, id string, events ...string) *latchkey.Webhook {
	t.Helper()
	secret, err := latchkey.NewWebhookSecret()
	if err != nil {
		t.Fatal(err)
	}
	if events == nil {
		events = []string{}
	}
	w := &latchkey.Webhook{ID: id, Account: account, URL: "https://hooks.example.com/" + id, Description: "hook " + id,
		Events: events, Enabled: true, CreatedAt: at(1), UpdatedAt: at(1), Secret: secret}
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.CreateWebhook(ctx, w) })
	return w
}

func enqueue(t *testing.T, s latchkey.Store, account, id, typ string, created time.Time, hooks ...string) []*latchkey.WebhookDelivery {
	t.Helper()
	e := &latchkey.WebhookEvent{ID: id, Account: account, Type: typ, Body: json.RawMessage(`{"type":"` + typ + `"}`), CreatedAt: created}
	var out []*latchkey.WebhookDelivery
	update(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		out, err = tx.EnqueueEvent(ctx, e, hooks)
		return err
	})
	return out
}

func testWebhookCRUD(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createAccount(t, s, "other")
	w1 := newWebhook(t, s, "acme", "wh_one")
	w2 := newWebhook(t, s, "acme", "wh_two", latchkey.EventKeyCreated, latchkey.EventKeyUnused)
	w3 := newWebhook(t, s, "other", "wh_three")
	var got *latchkey.Webhook
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		got, err = tx.FindWebhook(ctx, "wh_two")
		return err
	})
	if diff := cmp.Diff(w2, got); diff != "" {
		t.Errorf("FindWebhook (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		account string
		want    []*latchkey.Webhook
	}{{"acme", []*latchkey.Webhook{w1, w2}}, {"", []*latchkey.Webhook{w1, w3, w2}}, {"nobody", nil}} {
		var list []*latchkey.Webhook
		view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
			list, err = tx.ListWebhooks(ctx, tt.account)
			return err
		})
		// Same creation time: by ID.
		if diff := cmp.Diff(tt.want, list); diff != "" {
			t.Errorf("ListWebhooks(%q) (-want +got):\n%s", tt.account, diff)
		}
	}
	w2.URL, w2.Description, w2.Events, w2.Enabled, w2.UpdatedAt = "http://127.0.0.1:9/x", "changed", []string{}, false, at(5)
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.UpdateWebhook(ctx, w2) })
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		got, err = tx.FindWebhook(ctx, "wh_two")
		return err
	})
	if diff := cmp.Diff(w2, got); diff != "" {
		t.Errorf("after UpdateWebhook (-want +got):\n%s", diff)
	}
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.DeleteWebhook(ctx, "wh_two") })
	err := s.View(t.Context(), func(tx latchkey.Tx) error {
		_, err := tx.FindWebhook(t.Context(), "wh_two")
		return err
	})
	wantCode(t, err, latchkey.ENOTFOUND)
}

func testWebhookErrors(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	newWebhook(t, s, "acme", "wh_one")
	tests := []struct {
		name string
		fn   func(ctx context.Context, tx latchkey.Tx) error
		code string
	}{
		{"create in an unknown account", func(ctx context.Context, tx latchkey.Tx) error {
			return tx.CreateWebhook(ctx, &latchkey.Webhook{ID: "wh_x", Account: "ghost", URL: "https://x", Secret: "whsec_AAAA", CreatedAt: at(1), UpdatedAt: at(1)})
		}, latchkey.ENOTFOUND},
		{"create a taken ID", func(ctx context.Context, tx latchkey.Tx) error {
			return tx.CreateWebhook(ctx, &latchkey.Webhook{ID: "wh_one", Account: "acme", URL: "https://x", Secret: "whsec_AAAA", CreatedAt: at(1), UpdatedAt: at(1)})
		}, latchkey.EEXISTS},
		{"update a missing one", func(ctx context.Context, tx latchkey.Tx) error {
			return tx.UpdateWebhook(ctx, &latchkey.Webhook{ID: "wh_nope", UpdatedAt: at(2)})
		}, latchkey.ENOTFOUND},
		{"delete a missing one", func(ctx context.Context, tx latchkey.Tx) error { return tx.DeleteWebhook(ctx, "wh_nope") }, latchkey.ENOTFOUND},
		{"enqueue for a missing webhook", func(ctx context.Context, tx latchkey.Tx) error {
			_, err := tx.EnqueueEvent(ctx, &latchkey.WebhookEvent{ID: "msg_1", Account: "acme", Type: "key.created", Body: json.RawMessage(`{}`), CreatedAt: at(1)}, []string{"wh_nope"})
			return err
		}, latchkey.ENOTFOUND},
		{"finish a missing delivery", func(ctx context.Context, tx latchkey.Tx) error {
			return tx.FinishDelivery(ctx, latchkey.DeliveryResult{ID: 12345, At: at(1), Status: latchkey.DeliveryDelivered})
		}, latchkey.ENOTFOUND},
		{"find a missing delivery", func(ctx context.Context, tx latchkey.Tx) error {
			_, err := tx.FindDelivery(ctx, 12345)
			return err
		}, latchkey.ENOTFOUND},
		{"bad page token", func(ctx context.Context, tx latchkey.Tx) error {
			_, _, err := tx.ListDeliveries(ctx, latchkey.DeliveryFilter{WebhookID: "wh_one", After: "!!"})
			return err
		}, latchkey.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, tryUpdate(t, s, tt.fn), tt.code)
		})
	}
}

func testEnqueueAndList(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	newWebhook(t, s, "acme", "wh_a")
	newWebhook(t, s, "acme", "wh_b")
	var want []*latchkey.WebhookDelivery
	for i := range 5 {
		ds := enqueue(t, s, "acme", fmt.Sprintf("msg_%d", i), latchkey.EventKeyCreated, at(i), "wh_a", "wh_b")
		if len(ds) != 2 || ds[0].ID == ds[1].ID {
			t.Fatalf("EnqueueEvent returned %v", ds)
		}
		want = append([]*latchkey.WebhookDelivery{ds[0]}, want...)
	}
	var (
		got  []*latchkey.WebhookDelivery
		page []*latchkey.WebhookDelivery
		next string
	)
	for {
		view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
			page, next, err = tx.ListDeliveries(ctx, latchkey.DeliveryFilter{WebhookID: "wh_a", Limit: 2, After: next})
			return err
		})
		got = append(got, page...)
		if next == "" {
			break
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListDeliveries, newest first (-want +got):\n%s", diff)
	}
	var one *latchkey.WebhookDelivery
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		one, err = tx.FindDelivery(ctx, want[0].ID)
		return err
	})
	if diff := cmp.Diff(want[0], one); diff != "" {
		t.Errorf("FindDelivery (-want +got):\n%s", diff)
	}
}

func testClaimLeasesDeliveries(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	w := newWebhook(t, s, "acme", "wh_a")
	early := enqueue(t, s, "acme", "msg_early", latchkey.EventKeyCreated, at(10), "wh_a")[0]
	enqueue(t, s, "acme", "msg_late", latchkey.EventKeyDeleted, at(100), "wh_a")
	claim := func(now time.Time) []*latchkey.DueDelivery {
		t.Helper()
		var out []*latchkey.DueDelivery
		update(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
			out, err = tx.ClaimDeliveries(ctx, now, time.Minute, 10)
			return err
		})
		return out
	}
	if got := claim(at(5)); len(got) != 0 {
		t.Fatalf("claimed %d deliveries before any was due", len(got))
	}
	got := claim(at(20))
	if len(got) != 1 {
		t.Fatalf("claimed %d deliveries, want the one due", len(got))
	}
	d := got[0]
	if d.Delivery.ID != early.ID || d.URL != w.URL || d.Secret != w.Secret || string(d.Body) != `{"type":"key.created"}` ||
		d.Delivery.Attempts != 1 || d.Delivery.EventType != latchkey.EventKeyCreated {
		t.Errorf("claimed %+v", d)
	}
	// Leased: not claimed again until the lease ends.
	if got := claim(at(30)); len(got) != 0 {
		t.Fatalf("claimed a leased delivery again")
	}
	if got := claim(at(81)); len(got) != 1 || got[0].Delivery.Attempts != 2 {
		t.Fatalf("after the lease: %+v", got)
	}
	retry := at(500)
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		return tx.FinishDelivery(ctx, latchkey.DeliveryResult{ID: early.ID, At: at(82), Status: latchkey.DeliveryPending,
			NextAttempt: &retry, ResponseCode: 503, Error: "receiver answered 503"})
	})
	late := claim(at(200))
	if len(late) != 1 || late[0].Delivery.EventID != "msg_late" {
		t.Fatalf("at 200 want only msg_late, got %+v", late)
	}
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		if err := tx.FinishDelivery(ctx, latchkey.DeliveryResult{ID: late[0].Delivery.ID, At: at(201), Status: latchkey.DeliveryFailed, Error: "gave up"}); err != nil {
			return err
		}
		return tx.FinishDelivery(ctx, latchkey.DeliveryResult{ID: early.ID, At: at(501), Status: latchkey.DeliveryDelivered, ResponseCode: 204})
	})
	var after *latchkey.WebhookDelivery
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		after, err = tx.FindDelivery(ctx, early.ID)
		return err
	})
	want := &latchkey.WebhookDelivery{ID: early.ID, WebhookID: "wh_a", EventID: "msg_early", EventType: latchkey.EventKeyCreated,
		Status: latchkey.DeliveryDelivered, Attempts: 2, LastAttemptAt: ptr(at(501)), ResponseCode: 204, CreatedAt: at(10)}
	if diff := cmp.Diff(want, after); diff != "" {
		t.Errorf("finished delivery (-want +got):\n%s", diff)
	}
	if got := claim(at(10000)); len(got) != 0 {
		t.Errorf("claimed finished deliveries: %+v", got)
	}
}

// testConcurrentClaims: replicas claiming at once never take the same
// delivery twice.
func testConcurrentClaims(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	newWebhook(t, s, "acme", "wh_a")
	for i := range 20 {
		enqueue(t, s, "acme", fmt.Sprintf("msg_%02d", i), latchkey.EventKeyCreated, at(i), "wh_a")
	}
	var (
		mu   sync.Mutex
		seen = map[int64]int{}
	)
	codes := runConcurrently(4, func(int) error {
		for range 10 {
			err := s.Update(context.Background(), func(tx latchkey.Tx) error {
				ds, err := tx.ClaimDeliveries(context.Background(), at(100), time.Hour, 3)
				mu.Lock()
				defer mu.Unlock()
				for _, d := range ds {
					seen[d.Delivery.ID]++
				}
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if codes[""] != 4 {
		t.Fatalf("outcomes %v", codes)
	}
	if len(seen) != 20 {
		t.Errorf("claimed %d distinct deliveries, want 20", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("delivery %d claimed %d times", id, n)
		}
	}
}

func testDeleteWebhookDeliveries(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	newWebhook(t, s, "acme", "wh_a")
	newWebhook(t, s, "acme", "wh_b")
	enqueue(t, s, "acme", "msg_1", latchkey.EventKeyCreated, at(1), "wh_a", "wh_b")
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.DeleteWebhook(ctx, "wh_a") })
	var ds []*latchkey.DueDelivery
	update(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		ds, err = tx.ClaimDeliveries(ctx, at(10), time.Minute, 10)
		return err
	})
	if len(ds) != 1 || ds[0].Delivery.WebhookID != "wh_b" {
		t.Errorf("after deleting wh_a, claimed %+v", ds)
	}
}

func testPruneWebhookEvents(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	newWebhook(t, s, "acme", "wh_a")
	old := enqueue(t, s, "acme", "msg_old", latchkey.EventKeyCreated, at(1), "wh_a")[0]
	enqueue(t, s, "acme", "msg_stuck", latchkey.EventKeyCreated, at(2), "wh_a")
	enqueue(t, s, "acme", "msg_new", latchkey.EventKeyCreated, at(100), "wh_a")
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		return tx.FinishDelivery(ctx, latchkey.DeliveryResult{ID: old.ID, At: at(3), Status: latchkey.DeliveryDelivered, ResponseCode: 200})
	})
	var n int64
	update(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		n, err = tx.PruneWebhookEvents(ctx, at(50))
		return err
	})
	if n != 1 {
		t.Errorf("pruned %d deliveries, want 1 (finished and old)", n)
	}
	var left []*latchkey.WebhookDelivery
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		left, _, err = tx.ListDeliveries(ctx, latchkey.DeliveryFilter{WebhookID: "wh_a"})
		return err
	})
	var ids []string
	for _, d := range left {
		ids = append(ids, d.EventID)
	}
	if diff := cmp.Diff([]string{"msg_new", "msg_stuck"}, ids); diff != "" {
		t.Errorf("left (-want +got):\n%s", diff)
	}
}
