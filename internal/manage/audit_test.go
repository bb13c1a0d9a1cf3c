package manage_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
)

// TestAuditEvents: every change writes exactly one audit event (a new
// principal two: the principal and its key) with the actor, the time and
// the object before and after; no change and no failure writes none; no
// event holds a secret.
func TestAuditEvents(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	var secrets []string
	var made []*manage.CreatedKey
	keep := func(k *manage.CreatedKey, err error) error {
		if err == nil {
			secrets = append(secrets, k.Secret)
			made = append(made, k)
		}
		return err
	}
	// The bootstrap and newEnv's principals made keys too.
	for _, a := range []latchkey.Actor{e.admin, e.viewer, e.verifier, e.otherAdmin} {
		if a.AccessKeyID == "" {
			t.Fatal("actor without key")
		}
	}
	c, d := "v2", "v2"
	inactive := latchkey.StatusInactive
	lastKey := func() string { return made[len(made)-1].ID }

	// One event: action, target, and which of before/after are set.
	type ev struct {
		action, target, app string
		before, after       bool
	}
	steps := []struct {
		name   string
		do     func() error
		events []ev
		check  func(t *testing.T, evs []*latchkey.AuditEvent)
	}{
		{"create account", func() error {
			_, err := e.svc.CreateAccount(ctx, e.operator, "acme", latchkey.AccountUpdate{})
			return err
		},
			[]ev{{"account.create", "acme", "", false, true}}, nil},
		{"create application", func() error {
			_, err := e.svc.CreateApplication(ctx, e.admin, "default", "billing", "v1", nil)
			return err
		}, []ev{{"application.create", "billing", "billing", false, true}}, nil},
		{"update application", func() error {
			_, err := e.svc.UpdateApplication(ctx, e.admin, "default", "billing", &c, nil)
			return err
		},
			[]ev{{"application.update", "billing", "billing", true, true}},
			func(t *testing.T, evs []*latchkey.AuditEvent) {
				wantField(t, evs[0].Before, "description", "v1")
				wantField(t, evs[0].After, "description", "v2")
			}},
		{"update application, same description", func() error {
			_, err := e.svc.UpdateApplication(ctx, e.admin, "default", "billing", &d, nil)
			return err
		}, nil, nil},
		{"update application, nothing given", func() error {
			_, err := e.svc.UpdateApplication(ctx, e.admin, "default", "billing", nil, nil)
			return err
		}, nil, nil},
		{"create access key", func() error {
			return keep(e.svc.CreateAccessKey(ctx, e.admin, "default", "billing", latchkey.NewAccessKey{Description: "ci"}))
		}, []ev{{"access_key.create", "", "billing", false, true}},
			func(t *testing.T, evs []*latchkey.AuditEvent) {
				wantField(t, evs[0].After, "status", "Active")
				wantField(t, evs[0].After, "access_key_id", lastKey())
			}},
		{"deactivate", func() error {
			_, err := e.svc.UpdateAccessKey(ctx, e.admin, lastKey(), latchkey.AccessKeyUpdate{Status: &inactive})
			return err
		}, []ev{{"access_key.update", "", "billing", true, true}},
			func(t *testing.T, evs []*latchkey.AuditEvent) {
				wantField(t, evs[0].Before, "status", "Active")
				wantField(t, evs[0].After, "status", "Inactive")
			}},
		{"deactivate again", func() error {
			_, err := e.svc.UpdateAccessKey(ctx, e.admin, lastKey(), latchkey.AccessKeyUpdate{Status: &inactive})
			return err
		}, nil, nil},
		{"usage is not audited", func() error {
			return e.store.RecordUsage(ctx, []latchkey.UsageUpdate{{AccessKeyID: lastKey(), Uses: 3}})
		}, nil, nil},
		{"delete", func() error { return e.svc.DeleteAccessKey(ctx, e.admin, lastKey(), false) },
			[]ev{{"access_key.delete", "", "billing", true, false}}, nil},
		{"create another key", func() error {
			return keep(e.svc.CreateAccessKey(ctx, e.admin, "default", "billing", latchkey.NewAccessKey{}))
		}, []ev{{"access_key.create", "", "billing", false, true}}, nil},
		{"flag exposed and deactivate", func() error {
			_, err := e.svc.MarkExposed(ctx, e.operator, lastKey(), "a public gist", true)
			return err
		}, []ev{{"access_key.exposed", "", "billing", true, true}},
			func(t *testing.T, evs []*latchkey.AuditEvent) {
				wantField(t, evs[0].After, "status", "Inactive")
				var after struct{ Exposed latchkey.Exposure }
				if err := json.Unmarshal(evs[0].After, &after); err != nil || after.Exposed.Where != "a public gist" {
					t.Errorf("exposure in the event: %+v, %v", after, err)
				}
			}},
		{"delete the exposed key with force", func() error { return e.svc.DeleteAccessKey(ctx, e.admin, lastKey(), true) },
			[]ev{{"access_key.delete", "", "billing", true, false}}, nil},
		{"create principal", func() error {
			p, err := e.svc.CreatePrincipal(ctx, e.admin, "default", "pat", latchkey.RoleViewer)
			if err == nil {
				return keep(p.AccessKey, nil)
			}
			return err
		}, []ev{{"principal.create", "pat", "", false, true}, {"access_key.create", "", "", false, true}},
			func(t *testing.T, evs []*latchkey.AuditEvent) {
				wantField(t, evs[0].After, "role", "viewer")
				wantField(t, evs[1].After, "principal", "pat")
			}},
		{"create principal key", func() error { return keep(e.svc.CreatePrincipalKey(ctx, e.admin, "default", "pat", "second")) },
			[]ev{{"access_key.create", "", "", false, true}}, nil},
		{"delete principal", func() error { return e.svc.DeletePrincipal(ctx, e.admin, "default", "pat") },
			[]ev{{"principal.delete", "pat", "", true, false}}, nil},
		{"delete application", func() error { return e.svc.DeleteApplication(ctx, e.admin, "default", "billing") },
			[]ev{{"application.delete", "billing", "billing", true, false}}, nil},
		{"refused: viewer", func() error { _, err := e.svc.CreateApplication(ctx, e.viewer, "default", "x", "", nil); return err },
			nil, nil},
		{"refused: name taken", func() error {
			_, err := e.svc.CreateAccount(ctx, e.operator, "acme", latchkey.AccountUpdate{})
			return err
		},
			nil, nil},
		{"refused: not found", func() error { return e.svc.DeleteApplication(ctx, e.admin, "default", "billing") },
			nil, nil},
	}

	seen := len(e.events(t))
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			e.clock.Advance(time.Minute)
			err := st.do()
			if strings.HasPrefix(st.name, "refused") != (err != nil) {
				t.Fatalf("%s: %v", st.name, err)
			}
			all := e.events(t)
			evs := all[seen:]
			seen = len(all)
			if len(evs) != len(st.events) {
				t.Fatalf("step %d: %d events, want %d: %v", i, len(evs), len(st.events), actions(evs))
			}
			actor := e.admin
			if st.name == "create account" || st.name == "flag exposed and deactivate" {
				actor = e.operator
			}
			for j, w := range st.events {
				got := evs[j]
				if w.target == "" {
					w.target = got.Target
					if got.TargetType != "access_key" {
						t.Errorf("target type %q", got.TargetType)
					}
				}
				gotEv := ev{got.Action, got.Target, got.Application, got.Before != nil, got.After != nil}
				if diff := cmp.Diff(w, gotEv, cmp.AllowUnexported(ev{})); diff != "" {
					t.Errorf("event %d (-want +got):\n%s", j, diff)
				}
				if got.Actor != actor.Principal || got.ActorKeyID != actor.AccessKeyID || got.SourceIP != actor.SourceIP ||
					got.UserAgent != actor.UserAgent || !got.Time.Equal(e.clock.Now()) {
					t.Errorf("event %d: actor %q key %q ip %q ua %q at %v", j, got.Actor, got.ActorKeyID, got.SourceIP, got.UserAgent, got.Time)
				}
			}
			if st.check != nil {
				st.check(t, evs)
			}
		})
	}

	// No event, in any form, holds a secret, a digest, or a field for one.
	all := e.events(t)
	raw, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	for _, k := range made {
		d := k.SecretDigest
		for _, leak := range []string{k.Secret, k.Secret[5:], hex.EncodeToString(d[:]), base64.StdEncoding.EncodeToString(d[:])} {
			if strings.Contains(text, leak) {
				t.Errorf("audit log holds the secret or digest of key %s", k.ID)
			}
		}
	}
	for _, word := range []string{"lksk_", "secret", "digest"} {
		if strings.Contains(strings.ToLower(text), word) {
			t.Errorf("audit log mentions %q", word)
		}
	}
	if len(secrets) != 4 {
		t.Errorf("%d secrets checked, want 4", len(secrets))
	}
}

func actions(evs []*latchkey.AuditEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Action+" "+e.Target)
	}
	return out
}

// wantField checks one string field of an event's before or after JSON.
func wantField(t *testing.T, raw json.RawMessage, field, want string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	if got, _ := m[field].(string); got != want {
		t.Errorf("%s = %q, want %q in %s", field, got, want, raw)
	}
}
