package console

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
)

// TestCanaryBanner: after a canary alert, the key list shows admins a
// banner naming the key, the surface and the client; a viewer sees neither
// the banner nor the canary.
func TestCanaryBanner(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.app("web")
	ck, err := e.svc.CreateAccessKey(ctx, e.op, latchkey.DefaultAccount, "web", latchkey.NewAccessKey{Description: "canary: ci", Canary: true})
	if err != nil {
		t.Fatal(err)
	}
	// Through the verifier, as any surface does: the hook gets the use.
	hook := &recordingHook{}
	e.ver.Canary = hook
	if code := e.call(ck.Secret, "203.0.113.9", "curl/8.5"); code != latchkey.CodeNotFound {
		t.Fatalf("canary decided %s, want NOT_FOUND", code)
	}
	if len(hook.uses) != 1 {
		t.Fatalf("hook told %d uses, want 1", len(hook.uses))
	}
	use := hook.uses[0]
	use.Surface, use.Path = latchkey.SurfaceAuthorize, "/orders"
	if err := e.svc.CanaryTriggered(ctx, use, 3); err != nil {
		t.Fatal(err)
	}
	admin, err := e.svc.CreatePrincipal(ctx, e.op, latchkey.DefaultAccount, "alice", latchkey.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := e.svc.CreatePrincipal(ctx, e.op, latchkey.DefaultAccount, "victor", latchkey.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustSignIn(admin.AccessKey.ID, admin.AccessKey.Secret)
	p := b.get("/console/keys")
	for _, want := range []string{`id="canary-alerts"`, ck.ID, "on authorize /orders", "from 203.0.113.9", "3 uses", ">canary</span>"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("admin's key list lacks %q", want)
		}
	}
	// A canary is not rotated: no Rotate button, and the wizard sends
	// the admin back with the reason.
	rotate := "/console/keys/" + ck.ID + "/rotate"
	for _, path := range []string{"/console/keys", "/console/keys/" + ck.ID} {
		if p := b.get(path); strings.Contains(p.body, `href="`+rotate+`"`) {
			t.Errorf("%s offers to rotate the canary", path)
		}
	}
	if p := b.get(rotate); p.status != http.StatusSeeOther {
		t.Errorf("the canary's rotation wizard answers %d, want 303", p.status)
	} else if got := b.get(p.location()); !strings.Contains(got.body, "canary key is not rotated") {
		t.Error("the canary's rotation wizard does not say why it sent the admin back")
	}
	v := e.browser()
	v.mustSignIn(viewer.AccessKey.ID, viewer.AccessKey.Secret)
	p = v.get("/console/keys")
	if strings.Contains(p.body, "canary-alerts") || strings.Contains(p.body, ck.ID) || strings.Contains(p.body, ">canary</span>") {
		t.Error("a viewer's key list shows the canary or its alert")
	}
}

type recordingHook struct{ uses []latchkey.CanaryUse }

func (h *recordingHook) CanaryUsed(e *verify.Entry, req *verify.Request, at time.Time) {
	h.uses = append(h.uses, latchkey.CanaryUse{AccessKeyID: e.ID, Account: e.Account, Application: e.Application(), At: at,
		IP: req.IP.String(), UserAgent: req.UserAgent})
}
