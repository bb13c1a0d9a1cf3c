package console

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
)

// TestKeyPrefixShown: the applications page says what new secrets start
// with, and a key created in the console after the account chose a
// prefix has it.
func TestKeyPrefixShown(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.CreateApplication(t.Context(), e.op, "default", "web", "", nil); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustSignIn(e.opID, e.opSecret)
	if p := b.get("/console/applications"); !strings.Contains(p.body, `data-key-prefix="lksk_"`) {
		t.Fatalf("the applications page does not show the lksk_ prefix")
	}
	prefix := "acme_live_"
	if _, err := e.svc.UpdateAccount(t.Context(), e.op, latchkey.DefaultAccount, latchkey.AccountUpdate{KeyPrefix: &prefix}); err != nil {
		t.Fatal(err)
	}
	if p := b.get("/console/applications"); !strings.Contains(p.body, `data-key-prefix="acme_live_"`) || !strings.Contains(p.body, "<code>acme_live_</code>") {
		t.Fatalf("the applications page does not show the account's prefix")
	}
	appPage := b.get("/console/applications/web")
	p := b.post("/console/applications/web/keys", url.Values{"csrf": {formValue(t, csrfRE, appPage.body)},
		"once": {formValue(t, onceRE, appPage.body)}, "description": {"prefixed"}})
	if !regexp.MustCompile(`<code id="new-secret"[^>]*>acme_live_[0-9A-Za-z]{46}</code>`).MatchString(p.body) {
		t.Errorf("the created page does not show a prefixed secret (status %d)", p.status)
	}
}
