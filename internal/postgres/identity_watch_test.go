package postgres_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/postgres"
	"github.com/latchkey/latchkey/internal/verify"
)

// An identity's changes reach another replica's index through the change
// feed alone (no resync): an application moved into an identity, the
// identity's external ID and metadata, its quota, and the application
// leaving it.
func TestWatcherFollowsIdentityChanges(t *testing.T) {
	r := startReplicas(t, postgres.WatchOptions{Resync: time.Hour})
	ctx := t.Context()
	sys := latchkey.System()
	if _, err := r.svc.CreateApplication(ctx, sys, latchkey.DefaultAccount, "shop", "", nil); err != nil {
		t.Fatal(err)
	}
	k, err := r.svc.CreateAccessKey(ctx, sys, latchkey.DefaultAccount, "shop", latchkey.NewAccessKey{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := r.svc.CreateIdentity(ctx, sys, latchkey.DefaultAccount, latchkey.NewIdentity{Name: "acme", ExternalID: "cus_1"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the key", func() bool { return status(r.ix, k.ID) == "Active" })
	steps := []struct {
		name   string
		change func(t *testing.T) error
		want   func() bool
	}{
		{"application moved into the identity", func(t *testing.T) error {
			_, err := r.svc.UpdateApplicationWith(ctx, sys, latchkey.DefaultAccount, "shop", latchkey.ApplicationUpdate{IdentityID: &id.ID})
			return err
		}, func() bool {
			e := r.ix.Get(k.ID)
			return e != nil && e.IdentityID() == id.ID && e.IdentityExternalID() == "cus_1"
		}},
		{"identity's external ID and metadata", func(t *testing.T) error {
			ext := "cus_2"
			_, err := r.svc.UpdateIdentity(ctx, sys, latchkey.DefaultAccount, id.ID, latchkey.IdentityUpdate{ExternalID: &ext,
				Metadata: json.RawMessage(`{"plan":"pro"}`)})
			return err
		}, func() bool {
			e := r.ix.Get(k.ID)
			return e != nil && e.IdentityExternalID() == "cus_2" && string(e.IdentityMetadata()) == `{"plan":"pro"}`
		}},
		{"identity's quota", func(t *testing.T) error {
			_, err := r.svc.UpdateIdentity(ctx, sys, latchkey.DefaultAccount, id.ID, latchkey.IdentityUpdate{Quota: &latchkey.Quota{Remaining: 0}})
			return err
		}, func() bool {
			e := r.ix.Get(k.ID)
			return e != nil && e.IdentityID() == id.ID && r.verifyCode(k.Secret) == latchkey.CodeQuotaExceeded
		}},
		{"application's metadata", func(t *testing.T) error {
			_, err := r.svc.UpdateApplicationWith(ctx, sys, latchkey.DefaultAccount, "shop", latchkey.ApplicationUpdate{Metadata: json.RawMessage(`{"c":1}`)})
			return err
		}, func() bool { e := r.ix.Get(k.ID); return e != nil && string(e.ApplicationMetadata()) == `{"c":1}` }},
		{"application out of the identity", func(t *testing.T) error {
			none := ""
			_, err := r.svc.UpdateApplicationWith(ctx, sys, latchkey.DefaultAccount, "shop", latchkey.ApplicationUpdate{IdentityID: &none})
			return err
		}, func() bool {
			e := r.ix.Get(k.ID)
			return e != nil && e.IdentityID() == "" && r.verifyCode(k.Secret) == latchkey.CodeValid
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := st.change(t); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, st.name+" on the other replica", st.want)
		})
	}
}

// verifyCode decides on secret with replica b's index, as its verifier
// would (without a quota leaser: a key with a quota is refused).
func (r *replicas) verifyCode(secret string) latchkey.Code {
	v := verify.New(r.ix, verify.NewRecorder(r.b, time.Hour, nil))
	return v.Verify(&verify.Request{Secret: secret}).Code
}
