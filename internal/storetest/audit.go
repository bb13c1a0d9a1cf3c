package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
)

var auditTests = []test{
	{"AppendRoundTrip", testAuditAppendRoundTrip},
	{"IDsIncrease", testAuditIDsIncrease},
	{"ListFiltersPages", testAuditList},
	{"ListBadToken", testAuditListBadToken},
}

func appendAudit(t *testing.T, s latchkey.Store, e *latchkey.AuditEvent) *latchkey.AuditEvent {
	t.Helper()
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.AppendAudit(ctx, e) })
	return e
}

func testAuditAppendRoundTrip(t *testing.T, s latchkey.Store) {
	tests := []struct {
		name          string
		before, after json.RawMessage
		wantBefore    json.RawMessage
		wantAfter     json.RawMessage
	}{
		{
			name:      "create",
			after:     json.RawMessage(`{"access_key_id":"LKIAAAAAAAAAAAAAAAAA","description":"naïve \"quoted\" \u003c","status":"Active"}`),
			wantAfter: json.RawMessage(`{"access_key_id":"LKIAAAAAAAAAAAAAAAAA","description":"naïve \"quoted\" \u003c","status":"Active"}`),
		},
		{
			name:       "update",
			before:     json.RawMessage(`{"status":"Active","n":[1,2.5,null]}`),
			after:      json.RawMessage(`{"status":"Inactive","n":[1,2.5,null]}`),
			wantBefore: json.RawMessage(`{"status":"Active","n":[1,2.5,null]}`),
			wantAfter:  json.RawMessage(`{"status":"Inactive","n":[1,2.5,null]}`),
		},
		{
			name:       "delete",
			before:     json.RawMessage(`{"name":"billing"}`),
			wantBefore: json.RawMessage(`{"name":"billing"}`),
		},
		{
			name:   "JSON null is no object",
			before: json.RawMessage(`null`),
			after:  json.RawMessage(`null`),
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &latchkey.AuditEvent{
				Time: at(i), Account: "acme", Actor: "alice", ActorKeyID: "LKIAQQQQQQQQQQQQQQQQ",
				SourceIP: "2001:db8::1", UserAgent: "latchkey-cli/1.0", Action: latchkey.ActionAccessKeyUpdate,
				TargetType: "access_key", Target: "LKIAAAAAAAAAAAAAAAAA", Application: "billing",
				Before: tt.before, After: tt.after,
			}
			appendAudit(t, s, in)
			if in.ID <= 0 {
				t.Fatalf("AppendAudit set ID %d, want > 0", in.ID)
			}
			want := *in
			want.Before, want.After = tt.wantBefore, tt.wantAfter
			var got []*latchkey.AuditEvent
			view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
				got, _, err = tx.ListAuditEvents(ctx, latchkey.AuditFilter{Limit: 1})
				return err
			})
			if diff := cmp.Diff([]*latchkey.AuditEvent{&want}, got); diff != "" {
				t.Errorf("ListAuditEvents mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func testAuditIDsIncrease(t *testing.T, s latchkey.Store) {
	var last int64
	for i := range 5 {
		e := appendAudit(t, s, &latchkey.AuditEvent{Time: at(0), Account: "acme", Actor: "system",
			Action: latchkey.ActionAccountCreate, TargetType: "account", Target: fmt.Sprint("a", i)})
		if e.ID <= last {
			t.Fatalf("event %d got ID %d after ID %d", i, e.ID, last)
		}
		last = e.ID
	}
	// Several events in one transaction get increasing IDs too.
	var ids []int64
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		for i := range 3 {
			e := &latchkey.AuditEvent{Time: at(1), Account: "acme", Actor: "system",
				Action: latchkey.ActionAccountCreate, TargetType: "account", Target: fmt.Sprint("b", i)}
			if err := tx.AppendAudit(ctx, e); err != nil {
				return err
			}
			ids = append(ids, e.ID)
		}
		return nil
	})
	for _, id := range ids {
		if id <= last {
			t.Fatalf("IDs in one transaction %v do not increase after %d", ids, last)
		}
		last = id
	}
}

func testAuditList(t *testing.T, s latchkey.Store) {
	const k1, k2, k3 = "LKIAAAAAAAAAAAAAAAA1", "LKIAAAAAAAAAAAAAAAA2", "LKIAAAAAAAAAAAAAAAA3"
	events := []*latchkey.AuditEvent{
		{Time: at(10), Account: "acme", Actor: "alice", Action: latchkey.ActionApplicationCreate, TargetType: "application", Target: "billing", Application: "billing", After: json.RawMessage(`{"name":"billing"}`)},
		{Time: at(11), Account: "acme", Actor: "alice", Action: latchkey.ActionAccessKeyCreate, TargetType: "access_key", Target: k1, Application: "billing", After: json.RawMessage(`{"status":"Active"}`)},
		{Time: at(12), Account: "other", Actor: "bob", Action: latchkey.ActionAccountCreate, TargetType: "account", Target: "other"},
		{Time: at(13), Account: "acme", Actor: "system", Action: latchkey.ActionAccessKeyUpdate, TargetType: "access_key", Target: k1, Application: "billing", Before: json.RawMessage(`{"status":"Active"}`), After: json.RawMessage(`{"status":"Inactive"}`)},
		{Time: at(13), Account: "acme", Actor: "alice", Action: latchkey.ActionAccessKeyCreate, TargetType: "access_key", Target: k2, Application: "shipping"},
		{Time: at(14), Account: "other", Actor: "bob", Action: latchkey.ActionAccessKeyDelete, TargetType: "access_key", Target: k3, Application: "billing"},
		// A principal whose name looks like a key ID is not a key.
		{Time: at(15), Account: "acme", Actor: "alice", Action: latchkey.ActionPrincipalCreate, TargetType: "principal", Target: k1},
	}
	for _, e := range events {
		appendAudit(t, s, e)
	}

	tests := []struct {
		name   string
		filter latchkey.AuditFilter
		want   []int // indexes into events, newest first
	}{
		{"everything", latchkey.AuditFilter{}, []int{6, 5, 4, 3, 2, 1, 0}},
		{"account", latchkey.AuditFilter{Account: "acme"}, []int{6, 4, 3, 1, 0}},
		{"unknown account", latchkey.AuditFilter{Account: "nobody"}, nil},
		{"access key", latchkey.AuditFilter{AccessKeyID: k1}, []int{3, 1}},
		{"application", latchkey.AuditFilter{Application: "billing"}, []int{5, 3, 1, 0}},
		{"application of an account", latchkey.AuditFilter{Account: "acme", Application: "billing"}, []int{3, 1, 0}},
		{"actor", latchkey.AuditFilter{Actor: "alice"}, []int{6, 4, 1, 0}},
		{"action", latchkey.AuditFilter{Action: latchkey.ActionAccessKeyCreate}, []int{4, 1}},
		{"since is inclusive", latchkey.AuditFilter{Since: ptr(at(13))}, []int{6, 5, 4, 3}},
		{"until is exclusive", latchkey.AuditFilter{Until: ptr(at(13))}, []int{2, 1, 0}},
		{"time range", latchkey.AuditFilter{Since: ptr(at(11)), Until: ptr(at(14))}, []int{4, 3, 2, 1}},
		{"empty time range", latchkey.AuditFilter{Since: ptr(at(13)), Until: ptr(at(13))}, nil},
		{"account and actor", latchkey.AuditFilter{Account: "other", Actor: "bob"}, []int{5, 2}},
		{"everything at once", latchkey.AuditFilter{Account: "acme", AccessKeyID: k1, Application: "billing", Actor: "system",
			Action: latchkey.ActionAccessKeyUpdate, Since: ptr(at(13)), Until: ptr(at(14))}, []int{3}},
	}
	for _, tt := range tests {
		var want []*latchkey.AuditEvent
		for _, i := range tt.want {
			want = append(want, events[i])
		}
		for _, limit := range []int{0, 1, 2, 3} {
			t.Run(fmt.Sprintf("%s/limit=%d", tt.name, limit), func(t *testing.T) {
				f := tt.filter
				f.Limit = limit
				var got []*latchkey.AuditEvent
				pages := 0
				for {
					var page []*latchkey.AuditEvent
					var next string
					view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
						page, next, err = tx.ListAuditEvents(ctx, f)
						return err
					})
					pages++
					if limit > 0 && len(page) > limit {
						t.Fatalf("page %d has %d events, limit %d", pages, len(page), limit)
					}
					got = append(got, page...)
					if next == "" {
						break
					}
					if len(page) == 0 || pages > 20 {
						t.Fatalf("page %d: %d events and next token %q", pages, len(page), next)
					}
					f.After = next
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("ListAuditEvents mismatch (-want +got):\n%s", diff)
				}
				wantPages := 1
				if limit > 0 && len(want) > 0 {
					wantPages = (len(want) + limit - 1) / limit
				}
				if pages != wantPages {
					t.Errorf("took %d pages for %d events with limit %d, want %d", pages, len(want), limit, wantPages)
				}
			})
		}
	}
}

func testAuditListBadToken(t *testing.T, s latchkey.Store) {
	for _, tok := range []string{"abc", "0", "-5", "1.5"} {
		t.Run(tok, func(t *testing.T) {
			err := s.View(t.Context(), func(tx latchkey.Tx) error {
				_, _, err := tx.ListAuditEvents(t.Context(), latchkey.AuditFilter{After: tok})
				return err
			})
			wantCode(t, err, latchkey.EINVALID)
		})
	}
}
