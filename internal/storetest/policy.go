package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/verify"
)

var policyTests = []test{
	{"PutFindPolicy", testPutFindPolicy},
	{"PolicyUnknownAccount", testPolicyUnknownAccount},
	{"KeyStates", testKeyStates},
	{"PolicyActionInsertedOnce", testPolicyActionInsertedOnce},
	{"PolicyActionClaimedOnce", testPolicyActionClaimedOnce},
	{"ListPolicyActions", testListPolicyActions},
	{"EnforceOnceAcrossReplicas", testEnforceOnceAcrossReplicas},
}

func testPutFindPolicy(t *testing.T, s latchkey.Store) {
	createAccount(t, s, "acme")
	createAccount(t, s, "other")
	err := s.View(t.Context(), func(tx latchkey.Tx) error {
		_, err := tx.FindPolicy(t.Context(), "acme")
		return err
	})
	wantCode(t, err, latchkey.ENOTFOUND)

	d30, off := latchkey.Duration(30*latchkey.Day), latchkey.Duration(0)
	p := &latchkey.AccountPolicy{Account: "acme", UpdatedAt: at(1),
		Settings: latchkey.PolicySettings{MaxKeyAge: &d30, DeleteInactiveAfter: &off}}
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.PutPolicy(ctx, p) })
	var got *latchkey.AccountPolicy
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		got, err = tx.FindPolicy(ctx, "acme")
		return err
	})
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("FindPolicy (-want +got):\n%s", diff)
	}

	// Put replaces the whole settings.
	d7 := latchkey.Duration(7 * latchkey.Day)
	p2 := &latchkey.AccountPolicy{Account: "acme", UpdatedAt: at(2), Settings: latchkey.PolicySettings{UnusedAfter: &d7}}
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.PutPolicy(ctx, p2) })
	p3 := &latchkey.AccountPolicy{Account: "other", UpdatedAt: at(3)}
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error { return tx.PutPolicy(ctx, p3) })
	var all []*latchkey.AccountPolicy
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		all, err = tx.ListPolicies(ctx)
		return err
	})
	if diff := cmp.Diff([]*latchkey.AccountPolicy{p2, p3}, all); diff != "" {
		t.Errorf("ListPolicies (-want +got):\n%s", diff)
	}
}

func testPolicyUnknownAccount(t *testing.T, s latchkey.Store) {
	err := tryUpdate(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		return tx.PutPolicy(ctx, &latchkey.AccountPolicy{Account: "ghost", UpdatedAt: at(1)})
	})
	wantCode(t, err, latchkey.ENOTFOUND)
}

func testKeyStates(t *testing.T, s latchkey.Store) {
	var ids []string
	want := map[string]*latchkey.KeyState{}
	// More than one chunk of the IN list.
	for i := range 620 {
		id := fmt.Sprintf("LKIA%016d", i)
		ids = append(ids, id)
		if i%3 == 0 {
			continue
		}
		st := &latchkey.KeyState{AccessKeyID: id, StatusSince: ptr(at(i))}
		if i%2 == 0 {
			st.RotatedAt, st.Predecessor = ptr(at(i+1)), "LKIAPREDECESSOR00000"
		}
		want[id] = st
	}
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		for _, st := range want {
			if err := tx.PutKeyState(ctx, st); err != nil {
				return err
			}
		}
		return nil
	})
	var got map[string]*latchkey.KeyState
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		got, err = tx.KeyStates(ctx, ids)
		return err
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("KeyStates (-want +got):\n%s", diff)
	}

	// Replace one, delete another (and one that does not exist).
	replaced := &latchkey.KeyState{AccessKeyID: ids[1], RotatedAt: ptr(at(999)), Predecessor: ids[2]}
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		if err := tx.PutKeyState(ctx, replaced); err != nil {
			return err
		}
		if err := tx.DeleteKeyState(ctx, ids[2]); err != nil {
			return err
		}
		return tx.DeleteKeyState(ctx, ids[0])
	})
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		got, err = tx.KeyStates(ctx, ids[:3])
		return err
	})
	if diff := cmp.Diff(map[string]*latchkey.KeyState{ids[1]: replaced}, got); diff != "" {
		t.Errorf("after replace and delete (-want +got):\n%s", diff)
	}
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		got, err = tx.KeyStates(ctx, nil)
		return err
	})
	if len(got) != 0 {
		t.Errorf("KeyStates(nil) = %v", got)
	}
}

func scheduled(id, kind string, due time.Time) *latchkey.PolicyAction {
	return &latchkey.PolicyAction{AccessKeyID: id, Kind: kind, DueAt: due, Account: "acme", ActAt: due.Add(time.Hour),
		State: latchkey.PolicyActionScheduled, CreatedAt: at(0)}
}

// testPolicyActionInsertedOnce inserts the same entry from many
// transactions at once, as replicas would: exactly one adds it.
func testPolicyActionInsertedOnce(t *testing.T, s latchkey.Store) {
	const id = "LKIAAAAAAAAAAAAAAAAA"
	var added atomic.Int32
	codes := runConcurrently(8, func(int) error {
		return s.Update(context.Background(), func(tx latchkey.Tx) error {
			ok, err := tx.InsertPolicyAction(context.Background(), scheduled(id, latchkey.ActionKindDeactivate, at(10)))
			if ok {
				added.Add(1)
			}
			return err
		})
	})
	if codes[""] != 8 {
		t.Fatalf("outcomes by error code %v, want 8 successes: a duplicate is no error", codes)
	}
	if n := added.Load(); n != 1 {
		t.Errorf("%d inserts reported adding the entry, want 1 (codes %v)", n, codes)
	}
	// Another due time or kind is another entry.
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		for _, a := range []*latchkey.PolicyAction{
			scheduled(id, latchkey.ActionKindDeactivate, at(11)),
			scheduled(id, latchkey.NoticeUnused, at(10)),
		} {
			ok, err := tx.InsertPolicyAction(ctx, a)
			if err != nil {
				return err
			}
			if !ok {
				t.Errorf("InsertPolicyAction(%s, %s) added nothing", a.Kind, a.DueAt)
			}
		}
		return nil
	})
}

// testPolicyActionClaimedOnce claims one scheduled entry from many
// transactions at once: exactly one claim succeeds, and the entry then
// holds that claim's state and time.
func testPolicyActionClaimedOnce(t *testing.T, s latchkey.Store) {
	const id = "LKIAAAAAAAAAAAAAAAAA"
	a := scheduled(id, latchkey.ActionKindDelete, at(10))
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		_, err := tx.InsertPolicyAction(ctx, a)
		return err
	})
	var claimed atomic.Int32
	codes := runConcurrently(8, func(i int) error {
		return s.Update(context.Background(), func(tx latchkey.Tx) error {
			ok, err := tx.ClaimPolicyAction(context.Background(), id, a.Kind, a.DueAt, latchkey.PolicyActionApplied, at(20))
			if ok {
				claimed.Add(1)
			}
			return err
		})
	})
	if n := claimed.Load(); n != 1 {
		t.Errorf("%d claims succeeded, want 1 (codes %v)", n, codes)
	}
	var got []*latchkey.PolicyAction
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		got, err = tx.ListPolicyActions(ctx, latchkey.PolicyActionFilter{AccessKeyID: id})
		return err
	})
	want := *a
	want.State, want.DoneAt = latchkey.PolicyActionApplied, ptr(at(20))
	if diff := cmp.Diff([]*latchkey.PolicyAction{&want}, got); diff != "" {
		t.Errorf("entry after the claims (-want +got):\n%s", diff)
	}
	// Claiming an entry that does not exist claims nothing.
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		ok, err := tx.ClaimPolicyAction(ctx, id, a.Kind, at(11), latchkey.PolicyActionApplied, at(20))
		if ok {
			t.Error("claimed an entry that does not exist")
		}
		return err
	})
}

func testListPolicyActions(t *testing.T, s latchkey.Store) {
	a1 := scheduled("LKIAAAAAAAAAAAAAAAA1", latchkey.ActionKindDeactivate, at(30))
	a2 := scheduled("LKIAAAAAAAAAAAAAAAA2", latchkey.ActionKindDelete, at(10))
	a3 := scheduled("LKIAAAAAAAAAAAAAAAA3", latchkey.NoticeUnused, at(20))
	a3.State, a3.DoneAt = latchkey.PolicyActionApplied, ptr(at(20))
	update(t, s, func(ctx context.Context, tx latchkey.Tx) error {
		for _, a := range []*latchkey.PolicyAction{a1, a2, a3} {
			if _, err := tx.InsertPolicyAction(ctx, a); err != nil {
				return err
			}
		}
		return nil
	})
	tests := []struct {
		name string
		f    latchkey.PolicyActionFilter
		want []*latchkey.PolicyAction
	}{
		{"all, by act_at", latchkey.PolicyActionFilter{}, []*latchkey.PolicyAction{a2, a3, a1}},
		{"scheduled", latchkey.PolicyActionFilter{State: latchkey.PolicyActionScheduled}, []*latchkey.PolicyAction{a2, a1}},
		{"due by a time", latchkey.PolicyActionFilter{State: latchkey.PolicyActionScheduled, ActBefore: ptr(a2.ActAt)}, []*latchkey.PolicyAction{a2}},
		{"one key", latchkey.PolicyActionFilter{AccessKeyID: a3.AccessKeyID}, []*latchkey.PolicyAction{a3}},
		{"limit", latchkey.PolicyActionFilter{Limit: 1}, []*latchkey.PolicyAction{a2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []*latchkey.PolicyAction
			view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
				got, err = tx.ListPolicyActions(ctx, tt.f)
				return err
			})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// testEnforceOnceAcrossReplicas runs the hygiene policy on several
// services at once over one store, as replicas would: the unused key is
// deactivated once, with one audit event and one announcement.
func testEnforceOnceAcrossReplicas(t *testing.T, s latchkey.Store) {
	now := base
	svcs := make([]*manage.Service, 4)
	for i := range svcs {
		svcs[i] = manage.New(s, verify.NewIndex(), nil)
		svcs[i].Now = func() time.Time { return now }
	}
	ctx := t.Context()
	if _, err := svcs[0].Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	sys := latchkey.System()
	if _, err := svcs[0].CreateApplication(ctx, sys, latchkey.DefaultAccount, "billing", "", nil); err != nil {
		t.Fatal(err)
	}
	k, err := svcs[0].CreateAccessKey(ctx, sys, latchkey.DefaultAccount, "billing", latchkey.NewAccessKey{})
	if err != nil {
		t.Fatal(err)
	}
	d1, d0 := latchkey.Duration(latchkey.Day), latchkey.Duration(0)
	if _, err := svcs[0].PutPolicy(ctx, sys, latchkey.DefaultAccount, latchkey.PolicySettings{DeactivateUnusedAfter: &d1, NoticeBefore: &d0}); err != nil {
		t.Fatal(err)
	}
	now = base.Add(2 * latchkey.Day)
	var deactivated atomic.Int32
	codes := runConcurrently(len(svcs), func(i int) error {
		res, err := svcs[i].EnforcePolicies(context.Background())
		deactivated.Add(int32(res.Deactivated))
		return err
	})
	if codes[""] != len(svcs) {
		t.Fatalf("outcomes %v", codes)
	}
	if n := deactivated.Load(); n != 1 {
		t.Errorf("%d replicas deactivated the key, want 1", n)
	}
	if got := mustFindKey(t, s, k.ID).Status; got != latchkey.StatusInactive {
		t.Errorf("status %s", got)
	}
	var evs []*latchkey.AuditEvent
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		evs, _, err = tx.ListAuditEvents(ctx, latchkey.AuditFilter{Actor: latchkey.PolicyActor})
		return err
	})
	if len(evs) != 1 || evs[0].Target != k.ID || evs[0].Action != latchkey.ActionAccessKeyUpdate {
		t.Errorf("audit events by the policy: %d, want one update of %s", len(evs), k.ID)
	}
	var acts []*latchkey.PolicyAction
	view(t, s, func(ctx context.Context, tx latchkey.Tx) (err error) {
		acts, err = tx.ListPolicyActions(ctx, latchkey.PolicyActionFilter{AccessKeyID: k.ID})
		return err
	})
	if len(acts) != 1 || acts[0].State != latchkey.PolicyActionApplied {
		t.Errorf("ledger %+v, want one applied deactivation", acts)
	}
}
