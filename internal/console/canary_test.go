package console

import (
	"context"
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
