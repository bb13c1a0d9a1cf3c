package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
)

// TestRollAccessKey: POST /v1/access-keys/{id}/roll per status, and the
// roll seen in the key, the rotations list and the credential report.
func TestRollAccessKey(t *testing.T) {
	e := newEnv(t)
	e.mustApp(t, latchkey.DefaultAccount, "billing")
	old := e.mustKey(t, latchkey.DefaultAccount, "billing")
	e.mustApp(t, latchkey.DefaultAccount, "ledger")
	inactive := e.mustKey(t, latchkey.DefaultAccount, "ledger")
	e.mustDeactivate(t, inactive.ID)
	e.mustApp(t, "other", "shop")
	theirs := e.mustKey(t, "other", "shop")
	var rolled manage.RolledKey
	path := "/v1/access-keys/" + old.ID + "/roll"
	e.run(t, []apiCase{
		{name: "bad period", method: "POST", path: path, as: bearer(e.admin), body: `{"old_key_expires_in":"soon"}`, status: http.StatusBadRequest, code: latchkey.EINVALID},
		{name: "off is no period", method: "POST", path: path, as: bearer(e.admin), body: `{"old_key_expires_in":"off"}`, status: http.StatusBadRequest, code: latchkey.EINVALID},
		{name: "hard limit without expiry", method: "POST", path: path, as: bearer(e.admin), body: `{"hard_limit":"72h"}`, status: http.StatusBadRequest, code: latchkey.EINVALID},
		{name: "hard limit before expiry", method: "POST", path: path, as: bearer(e.admin), body: `{"old_key_expires_in":"24h","hard_limit":"1h"}`, status: http.StatusBadRequest, code: latchkey.EINVALID},
		{name: "unknown field", method: "POST", path: path, as: bearer(e.admin), body: `{"expires_in":"24h"}`, status: http.StatusBadRequest, code: latchkey.EMALFORMED},
		{name: "viewer", method: "POST", path: path, as: bearer(e.viewer), body: `{}`, status: http.StatusForbidden, code: latchkey.EFORBIDDEN},
		{name: "another account's key", method: "POST", path: "/v1/access-keys/" + theirs.ID + "/roll", as: bearer(e.admin), body: `{}`, status: http.StatusNotFound, code: latchkey.ENOTFOUND},
		{name: "unknown key", method: "POST", path: "/v1/access-keys/LKIAAAAAAAAAAAAAAAAA/roll", as: bearer(e.admin), body: `{}`, status: http.StatusNotFound, code: latchkey.ENOTFOUND},
		{name: "Inactive key", method: "POST", path: "/v1/access-keys/" + inactive.ID + "/roll", as: bearer(e.admin), body: `{}`, status: http.StatusBadRequest, code: latchkey.EINVALID},
		{name: "principal key", method: "POST", path: "/v1/access-keys/" + e.admin.id + "/roll", as: bearer(e.admin), body: `{}`, status: http.StatusBadRequest, code: latchkey.EINVALID},
		{name: "roll", method: "POST", path: path, as: bearer(e.admin), body: `{"old_key_expires_in":"24h","hard_limit":"3d","quiet_period":"30m"}`, status: http.StatusCreated,
			check: func(t *testing.T, r *resp) {
				r.decode(t, &rolled)
				k, ro := rolled.AccessKey, rolled.Rotation
				if k == nil || ro == nil || k.Secret == "" || k.Application != "billing" || ro.OldKeyID != old.ID || ro.NewKeyID != k.ID ||
					ro.State != latchkey.RotationWaiting || ro.QuietPeriod.String() != "30m" ||
					!ro.ExpiresAt.Equal(e.clock.Now().Add(latchkey.Day)) || !ro.HardLimitAt.Equal(e.clock.Now().Add(3*latchkey.Day)) {
					t.Fatalf("rolled %s", r.body)
				}
			}},
		{name: "no room for a third key", method: "POST", path: path, as: bearer(e.admin), body: `{}`, status: http.StatusConflict, code: latchkey.ELIMIT},
		{name: "the old key shows its roll", method: "GET", path: "/v1/access-keys/" + old.ID, as: bearer(e.viewer), status: http.StatusOK,
			check: func(t *testing.T, r *resp) {
				var k latchkey.AccessKey
				r.decode(t, &k)
				if k.Roll == nil || k.Roll.NewKeyID != rolled.AccessKey.ID || k.Roll.State != latchkey.RotationWaiting {
					t.Errorf("old key %s", r.body)
				}
			}},
		{name: "rotations of the account", method: "GET", path: "/v1/rotations?open=true", as: bearer(e.viewer), status: http.StatusOK,
			check: func(t *testing.T, r *resp) {
				var l struct{ Rotations []*latchkey.Rotation }
				r.decode(t, &l)
				if len(l.Rotations) != 1 || l.Rotations[0].OldKeyID != old.ID {
					t.Errorf("rotations %s", r.body)
				}
			}},
		{name: "none in another account", method: "GET", path: "/v1/rotations", as: bearer(e.otherAdmin), status: http.StatusOK,
			check: func(t *testing.T, r *resp) {
				var l struct{ Rotations []*latchkey.Rotation }
				r.decode(t, &l)
				if len(l.Rotations) != 0 {
					t.Errorf("rotations %s", r.body)
				}
			}},
		{name: "bad open", method: "GET", path: "/v1/rotations?open=maybe", as: bearer(e.viewer), status: http.StatusBadRequest, code: latchkey.EINVALID},
		{name: "credential report", method: "GET", path: "/v1/credential-report", as: bearer(e.viewer), status: http.StatusOK,
			check: func(t *testing.T, r *resp) {
				var rep manage.CredentialReport
				r.decode(t, &rep)
				for _, row := range rep.Keys {
					if row.AccessKeyID == old.ID && (row.RollState != latchkey.RotationWaiting || row.RolledWith != rolled.AccessKey.ID) {
						t.Errorf("row of the old key %+v", row)
					}
				}
			}},
	})
	if got := e.auditEvents(t); got[len(got)-1].Action != latchkey.ActionAccessKeyRoll {
		t.Errorf("last audit event %s, want %s", got[len(got)-1].Action, latchkey.ActionAccessKeyRoll)
	}
}
