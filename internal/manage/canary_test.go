package manage_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/verify"
)

// TestCanaryVisibility: admins and operators see a canary and its flag;
// to a viewer it does not exist (list, get, report, key count, audit).
// It takes no place of the two keys, has no findings, and only admins may
// see its alerts.
func TestCanaryVisibility(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	op := latchkey.System()
	e.app(t, "default", "web")
	real1 := e.key(t, "default", "web")
	ck, err := e.svc.CreateAccessKey(ctx, op, "default", "web", latchkey.NewAccessKey{Canary: true})
	if err != nil {
		t.Fatal(err)
	}
	// The canary takes no place: a second real key fits, a third does not.
	e.key(t, "default", "web")
	_, err = e.svc.CreateAccessKey(ctx, op, "default", "web", latchkey.NewAccessKey{})
	wantCode(t, err, latchkey.ELIMIT)
	_, err = e.svc.CreateAccessKey(ctx, op, "default", "web", latchkey.NewAccessKey{Canary: true, Restrictions: &latchkey.Restrictions{Scopes: []string{"a"}}})
	wantCode(t, err, latchkey.EINVALID)
	if err := e.svc.CanaryTriggered(ctx, latchkey.CanaryUse{AccessKeyID: ck.ID, Account: "default", Application: "web",
		At: time.Now(), IP: "203.0.113.9", Surface: latchkey.SurfaceVerify}, 1); err != nil {
		t.Fatal(err)
	}

	admin, viewer := e.admin, e.viewer
	tests := []struct {
		name  string
		actor latchkey.Actor
		sees  bool
	}{
		{"operator", op, true},
		{"admin", admin, true},
		{"viewer", viewer, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, _, err := e.svc.ListAccessKeys(ctx, tt.actor, latchkey.AccessKeyFilter{Account: "default", Application: "web"})
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(keys, func(k *latchkey.AccessKey) bool { return k.ID == ck.ID })
			if (i >= 0) != tt.sees {
				t.Errorf("canary listed: %v, want %v", i >= 0, tt.sees)
			}
			if i >= 0 && (!keys[i].Canary || len(keys[i].Findings) != 0) {
				t.Errorf("listed canary: canary %v, findings %v", keys[i].Canary, keys[i].Findings)
			}
			k, err := e.svc.GetAccessKey(ctx, tt.actor, ck.ID)
			if tt.sees {
				if err != nil || !k.Canary {
					t.Errorf("GetAccessKey = %v, %v", k, err)
				}
			} else {
				wantCode(t, err, latchkey.ENOTFOUND)
				if _, err := e.svc.GetAccessKey(ctx, tt.actor, real1.ID); err != nil {
					t.Errorf("a viewer cannot read a real key: %v", err)
				}
			}
			// The scanner's check of a found secret: a canary to those who
			// may see canaries, unknown to others.
			st, id := e.svc.KeyStatus(tt.actor, ck.SecretDigest)
			if wantSt := map[bool]string{true: "Canary", false: "unknown"}[tt.sees]; st != wantSt || (id == ck.ID) != tt.sees {
				t.Errorf("KeyStatus = %q, %q; want %q", st, id, wantSt)
			}
			rep, err := e.svc.CredentialReport(ctx, tt.actor, "default")
			if err != nil {
				t.Fatal(err)
			}
			inReport := slices.ContainsFunc(rep.Keys, func(r *manage.CredentialRow) bool { return r.AccessKeyID == ck.ID })
			if inReport != tt.sees {
				t.Errorf("canary in the credential report: %v, want %v", inReport, tt.sees)
			}
			app, err := e.svc.GetApplication(ctx, tt.actor, "default", "web")
			if err != nil {
				t.Fatal(err)
			}
			if app.KeyCount != 2 {
				t.Errorf("key_count %d, want 2 (canaries left out)", app.KeyCount)
			}
			evs, _, err := e.svc.ListAuditEvents(ctx, tt.actor, latchkey.AuditFilter{Account: "default", Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			alerted := slices.ContainsFunc(evs, func(ev *latchkey.AuditEvent) bool { return ev.Action == latchkey.ActionCanaryTriggered })
			if alerted != tt.sees {
				t.Errorf("canary alert in the audit log: %v, want %v", alerted, tt.sees)
			}
			// The audit chain is unfiltered (a gap would read as tampering),
			// so it is not for those who may not see canaries.
			chain, _, err := e.svc.AuditChain(ctx, tt.actor, "default", 0, 1000)
			if tt.sees {
				if err != nil || !slices.ContainsFunc(chain, func(ev *latchkey.AuditEvent) bool { return ev.Action == latchkey.ActionCanaryTriggered }) {
					t.Errorf("AuditChain: %d events, %v; want the canary alert in it", len(chain), err)
				}
			} else {
				wantCode(t, err, latchkey.EFORBIDDEN)
			}
		})
	}
	// An application with a canary cannot be deleted until the canary is.
	err = e.svc.DeleteApplication(ctx, op, "default", "web")
	wantCode(t, err, latchkey.ECONFLICT)
}

// TestCanaryNeverAuthorizes: whatever a canary's state (Active or
// Inactive, with an expiry) and whatever the call carries, Verify answers
// NOT_FOUND, records no usage, and tells the hook.
func TestCanaryNeverAuthorizes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	op := latchkey.System()
	e.app(t, "default", "web")
	exp := time.Now().Add(time.Hour)
	ck, err := e.svc.CreateAccessKey(ctx, op, "default", "web", latchkey.NewAccessKey{Canary: true, ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	v := verify.New(e.ix, nil)
	hook := &countingHook{}
	v.Canary = hook
	reqs := []verify.Request{
		{Secret: ck.Secret},
		{Secret: ck.Secret, AccessKeyID: ck.ID},
		{Secret: ck.Secret, AccessKeyID: ck.ID, Account: "default"},
		{Secret: ck.Secret, Principal: true},
		{Secret: ck.Secret, Scope: "orders:read"},
	}
	for _, st := range []latchkey.Status{latchkey.StatusActive, latchkey.StatusInactive} {
		if _, err := e.svc.UpdateAccessKey(ctx, op, ck.ID, latchkey.AccessKeyUpdate{Status: &st}); err != nil {
			t.Fatal(err)
		}
		for _, r := range reqs {
			res := v.Verify(&r)
			if res.Code != latchkey.CodeNotFound || res.Entry.Found() || res.WouldDeny != "" {
				t.Errorf("%s canary, %+v: %+v", st, r, res)
			}
		}
	}
	if hook.n != 2*len(reqs) {
		t.Errorf("hook told %d uses, want %d", hook.n, 2*len(reqs))
	}
	if p := e.ix.PendingUsage(ck.ID); p.Uses != 0 || p.Rejections != 0 {
		t.Errorf("usage recorded for a canary: %+v", p)
	}
}

type countingHook struct{ n int }

func (h *countingHook) CanaryUsed(*verify.Entry, *verify.Request, time.Time) { h.n++ }
