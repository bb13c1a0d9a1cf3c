package manage_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/verify"
)

// TestEnforceCandidatesSameAsEveryKey runs the same hundred days of
// policy rounds twice, on two stores built by the same steps: once reading
// only the keys latchkey.PolicyCandidates selects, as the server does, and
// once reading every key. The rounds' results, the policy ledger and
// every key's status must be the same on both, day after day. The keys
// are of every kind a round acts on: created on different days, used on
// some (in the store, and in memory only), expiring, made Inactive,
// canaries, in two accounts; under policies with every rule on and tight
// windows, the server's default, an automatic deactivation announced
// before keys count as unused, and two different policies at once.
func TestEnforceCandidatesSameAsEveryKey(t *testing.T) {
	tight := latchkey.PolicySettings{MaxKeyAge: dur(40 * day), WarnBefore: dur(5 * day), UnusedAfter: dur(12 * day),
		DeactivateUnusedAfter: dur(25 * day), DeleteInactiveAfter: dur(15 * day), NoticeBefore: dur(4 * day)}
	// Deactivation announced before a key counts as unused (8 days).
	early := latchkey.PolicySettings{DeactivateUnusedAfter: dur(15 * day), NoticeBefore: dur(7 * day)}
	// Each rule's bound is the widest any account needs, so the configurations
	// give every rule a turn at being the widest.
	for _, cfg := range []candidatesConfig{
		{"every rule, tight", tight, tight, manage.EnforceResult{Notices: 1, Deactivated: 1, Deleted: 1, Cancelled: 1}},
		{"deactivation before unused", early, early, manage.EnforceResult{Notices: 1, Deactivated: 1}},
		{"the server's default", latchkey.PolicySettings{}, latchkey.PolicySettings{}, manage.EnforceResult{Notices: 1}},
		{"two policies", tight, early, manage.EnforceResult{Notices: 1, Deactivated: 1, Deleted: 1, Cancelled: 1}},
	} {
		t.Run(cfg.name, func(t *testing.T) { testCandidates(t, cfg) })
	}
}

// candidatesConfig is one configuration of TestEnforceCandidatesSameAsEveryKey.
type candidatesConfig struct {
	name          string
	policy, other latchkey.PolicySettings // the default account's, the other's
	// reaches: each kind of action the hundred days must see at least
	// once (1) or may not (0)
	reaches manage.EnforceResult
}

func testCandidates(t *testing.T, cfg candidatesConfig) {
	type world struct {
		e       *env
		keys    map[string]string // label -> key ID
		secrets map[string]string // label -> secret
		hook    *receiver
	}
	build := func(t *testing.T) *world {
		w := &world{e: newEnv(t), keys: map[string]string{}, secrets: map[string]string{}}
		e := w.e
		w.hook = newReceiver(t, e.clock.Now, 0)
		events := []string{latchkey.EventKeyUnused, latchkey.EventKeyRotationDue, latchkey.EventKeyExpiring,
			latchkey.EventKeyDeletionSched, latchkey.EventKeyUpdated}
		e.hook(t, w.hook, events...)
		// Notices are queued only for an account with a receiver.
		if _, err := e.svc.CreateWebhook(t.Context(), e.operator, "other", latchkey.NewWebhook{URL: w.hook.srv.URL + "/other", Events: events}); err != nil {
			t.Fatal(err)
		}
		e.policy(t, cfg.policy)
		if _, err := e.svc.PutPolicy(t.Context(), e.operator, "other", cfg.other); err != nil {
			t.Fatal(err)
		}
		for _, acct := range []string{latchkey.DefaultAccount, "other"} {
			for i := range 6 { // two keys each, the most an application may have
				app := fmt.Sprintf("app-%d", i)
				e.app(t, acct, app)
				for j := range 2 {
					label := fmt.Sprintf("%s/%s/%d", acct, app, j)
					nk := latchkey.NewAccessKey{}
					switch n := 2*i + j; {
					case n%4 == 1:
						at := e.clock.Now().Add(time.Duration(10+7*i) * day)
						nk.ExpiresAt = &at
					case n == 7:
						nk.Canary = true
					}
					k, err := e.svc.CreateAccessKey(t.Context(), e.operator, acct, app, nk)
					if err != nil {
						t.Fatal(err)
					}
					w.keys[label], w.secrets[label] = k.ID, k.Secret
				}
				e.clock.Advance(day)
			}
		}
		return w
	}
	// step changes both worlds the same way on day d.
	step := func(t *testing.T, w *world, d int) {
		e := w.e
		use := func(label string) {
			err := e.store.RecordUsage(t.Context(), []latchkey.UsageUpdate{{AccessKeyID: w.keys[label], Uses: 1,
				LastUsed: &latchkey.Use{At: e.clock.Now(), IP: "198.51.100.7", UserAgent: "billing/1"}}})
			if err != nil {
				t.Fatal(err)
			}
		}
		if d%10 == 0 {
			// Kept in use, so that only their age (rotation) or their
			// expiry makes them candidates.
			use("default/app-4/0")
			use("other/app-2/1")
		}
		switch d {
		case 5:
			use("default/app-0/0")
			use("other/app-2/1")
		case 14:
			e.deactivate(t, w.keys["default/app-1/0"])
			e.deactivate(t, w.keys["other/app-3/1"])
			// Young and just used: only its status makes it a
			// candidate for deletion.
			use("default/app-5/0")
			e.deactivate(t, w.keys["default/app-5/0"])
		case 20:
			use("default/app-4/0")
			use("default/app-2/1")
		case 28:
			// Used again after its announcement, in memory only (the
			// recorder has not flushed): the action is cancelled though
			// the store still has the old last use.
			v := verify.New(e.ix, verify.NewRecorder(e.store, time.Hour, nil))
			v.Now = e.clock.Now
			v.Verify(&verify.Request{Secret: w.secrets["default/app-0/0"]})
		case 47:
			use("other/app-5/0")
		}
	}
	type snapshot struct {
		Results []manage.EnforceResult
		Status  map[string]string   // label -> status, "deleted"
		Ledger  map[string][]string // label -> kind@due state
	}
	run := func(t *testing.T, everyKey bool) snapshot {
		defer func(v bool) { *manage.EnforceEveryKey = v }(*manage.EnforceEveryKey)
		*manage.EnforceEveryKey = everyKey
		w := build(t)
		var s snapshot
		for d := range 100 {
			step(t, w, d)
			s.Results = append(s.Results, w.e.enforce(t, w.e.svc))
			w.e.clock.Advance(day)
		}
		s.Status, s.Ledger = map[string]string{}, map[string][]string{}
		for label, id := range w.keys {
			st := "deleted"
			if k := w.e.storedKey(t, id); k != nil {
				st = string(k.Status)
			}
			s.Status[label] = st
			err := w.e.store.View(t.Context(), func(tx latchkey.Tx) error {
				as, err := tx.ListPolicyActions(t.Context(), latchkey.PolicyActionFilter{AccessKeyID: id, Limit: 100})
				for _, a := range as {
					s.Ledger[label] = append(s.Ledger[label], fmt.Sprintf("%s@%s %s", a.Kind,
						a.DueAt.Sub(t0).Round(time.Hour), a.State))
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	every := run(t, true)
	candidates := run(t, false)
	if diff := cmp.Diff(every, candidates); diff != "" {
		t.Errorf("rounds reading only the candidates differ from rounds reading every key (-every +candidates):\n%s", diff)
	}
	// The scenario must exercise what it claims: notices, deactivations,
	// deletions and a cancellation, and keys that end in each state.
	var total manage.EnforceResult
	for _, r := range every.Results {
		total.Notices += r.Notices
		total.Deactivated += r.Deactivated
		total.Deleted += r.Deleted
		total.Cancelled += r.Cancelled
	}
	if cfg.reaches.Notices > 0 && total.Notices == 0 || cfg.reaches.Deactivated > 0 && total.Deactivated == 0 ||
		cfg.reaches.Deleted > 0 && total.Deleted == 0 || cfg.reaches.Cancelled > 0 && total.Cancelled == 0 {
		t.Errorf("the scenario does not reach every kind of action it should: %+v", total)
	}
	states := map[string]int{}
	for _, st := range every.Status {
		states[st]++
	}
	if states["Active"] == 0 || states["Inactive"] == 0 || (cfg.reaches.Deleted > 0 && states["deleted"] == 0) {
		t.Errorf("the scenario's keys end in too few states: %v", states)
	}
}
