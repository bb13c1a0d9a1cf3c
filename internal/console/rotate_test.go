package console

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

var currentStepRE = regexp.MustCompile(`<li class="current" data-step="(\d)"`)

func currentStep(t *testing.T, p page) string {
	t.Helper()
	m := currentStepRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no current step (status %d):\n%s", p.status, p.body)
	}
	return m[1]
}

// TestRotationWizard walks the five steps with an injected clock and a
// client calling the verifier, checking what each step shows.
func TestRotationWizard(t *testing.T) {
	e := newEnv(t)
	old := e.app("web")
	b := e.browser()
	b.mustSignIn(e.opID, e.opSecret)
	wiz := "/console/keys/" + old.ID + "/rotate"

	// Step 1: no second key yet; the wizard offers to create it.
	p := b.get(wiz)
	if got := currentStep(t, p); got != "1" {
		t.Fatalf("first visit at step %s", got)
	}
	if !strings.Contains(p.body, `name="rotate" value="`+old.ID+`"`) {
		t.Fatal("step 1 has no create form")
	}
	if m := regexp.MustCompile(`rotate\?[^"]*step=[2-5]`).FindString(p.body); m != "" {
		t.Errorf("a later step is linked before a second key exists: %s", m)
	}
	if q := b.get(wiz + "?step=4"); currentStep(t, q) != "1" {
		t.Error("?step=4 jumps over steps not reached")
	}
	form := url.Values{"csrf": {formValue(t, csrfRE, p.body)}, "once": {formValue(t, onceRE, p.body)}, "rotate": {old.ID}, "description": {"next"}}
	created := b.post("/console/applications/web/keys", form)
	if created.status != http.StatusCreated {
		t.Fatalf("create the new key: %d", created.status)
	}
	newSecret := regexp.MustCompile(`lksk_[0-9A-Za-z]{46}`).FindString(created.body)
	next := regexp.MustCompile(`href="(/console/keys/` + old.ID + `/rotate\?[^"]+)"`).FindStringSubmatch(created.body)
	if next == nil || !strings.Contains(next[1], "step=2") {
		t.Fatal("the created page does not continue to step 2")
	}
	newKey := regexp.MustCompile(`new=(LKIA[A-Z2-7]{16})`).FindStringSubmatch(next[1])[1]

	// Step 2: both keys on the chart; the old one still in use.
	e.call(old.Secret, "203.0.113.10", "web-1")
	e.clock.Advance(time.Minute)
	e.call(newSecret, "203.0.113.11", "web-2")
	e.clock.Advance(time.Minute)
	p = b.get(strings.ReplaceAll(next[1], "&amp;", "&"))
	if got := currentStep(t, p); got != "2" {
		t.Fatalf("after creating the new key at step %s", got)
	}
	for _, want := range []string{`data-role="old"`, `data-role="new"`, old.ID, newKey, "still in use", `class="line s-old"`, `class="line s-new"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("step 2 lacks %q", want)
		}
	}
	if strings.Contains(p.body, newSecret) {
		t.Error("step 2 shows the new secret")
	}
	if !strings.Contains(p.body, `aria-current="true" title="from just before the first call in the last 3 hours">auto</a>`) {
		t.Error("step 2's chart does not choose its period from the traffic by default")
	}
	if !regexp.MustCompile(`<noscript><meta http-equiv="refresh" content="30; url=/console/keys/` + old.ID + `/rotate\?auto=1&amp;[^"]*"></noscript>`).MatchString(p.body) {
		t.Error("step 2 does not refresh itself without scripts")
	}

	// Step 3: warns while the old key has traffic, and still allows it.
	step3 := wiz + "?step=3&new=" + newKey
	p = b.get(step3)
	if !strings.Contains(p.body, `id="traffic-warning"`) || !strings.Contains(p.body, "203.0.113.10") || !strings.Contains(p.body, "Deactivate the old key anyway") {
		t.Fatalf("step 3 does not warn about the old key's traffic:\n%s", p.body)
	}
	e.clock.Advance(e.con.TrafficWindow)
	p = b.get(step3)
	if strings.Contains(p.body, `id="traffic-warning"`) || !strings.Contains(p.body, `id="traffic-quiet"`) {
		t.Fatal("step 3 still warns after the traffic window")
	}
	p = b.post(wiz[:len(wiz)-len("/rotate")]+"/status", url.Values{
		"csrf": {formValue(t, csrfRE, p.body)}, "status": {"Inactive"}, "return": {"rotate"}, "new": {newKey}})
	if p.status != http.StatusSeeOther || !strings.Contains(p.location(), "step=4") {
		t.Fatalf("deactivate from step 3: %d %q", p.status, p.location())
	}

	// Step 4: a straggler is refused; the wizard shows it and offers to
	// reactivate.
	e.clock.Advance(2 * time.Minute)
	if code := e.call(old.Secret, "198.51.100.7", "nightly-report/1.0"); code != latchkey.CodeInactive {
		t.Fatalf("the straggler's call: %s", code)
	}
	p = b.get(p.location())
	if got := currentStep(t, p); got != "4" {
		t.Fatalf("after deactivating at step %s", got)
	}
	for _, want := range []string{`id="rejected-attempts"`, "1 refused attempt", "198.51.100.7", "nightly-report/1.0", "INACTIVE", "Make the old key Active again", "old key deactivated"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("step 4 lacks %q", want)
		}
	}
	re := b.post("/console/keys/"+old.ID+"/status", url.Values{"csrf": {formValue(t, csrfRE, p.body)}, "status": {"Active"}, "return": {"rotate"}, "new": {newKey}})
	if !strings.Contains(re.location(), "step=3") || e.get(old.ID).Status != latchkey.StatusActive {
		t.Fatalf("reactivate from step 4: %q, %s", re.location(), e.get(old.ID).Status)
	}
	// the job is moved; a minute later (usage is counted by the minute)
	// the old key is deactivated again
	e.clock.Advance(time.Minute)
	b.post("/console/keys/"+old.ID+"/status", url.Values{"csrf": {formValue(t, csrfRE, p.body)}, "status": {"Inactive"}, "return": {"rotate"}, "new": {newKey}})
	e.clock.Advance(20 * time.Minute)
	p = b.get(wiz + "?step=4&new=" + newKey)
	if !strings.Contains(p.body, `id="no-rejections"`) {
		t.Error("step 4 shows rejections from before the latest deactivation")
	}

	// Step 5: typed confirmation, then done.
	p = b.get(wiz + "?step=5&new=" + newKey)
	if got := currentStep(t, p); got != "5" {
		t.Fatalf("step 5 at %s", got)
	}
	if strings.Contains(p.body, "http-equiv=\"refresh\"") {
		t.Error("step 5 reloads itself while the user types")
	}
	wrong := b.post("/console/keys/"+old.ID+"/delete", url.Values{"csrf": {formValue(t, csrfRE, p.body)}, "confirm": {newKey}, "return": {"rotate"}, "new": {newKey}})
	if !strings.Contains(wrong.location(), "step=5") {
		t.Fatalf("a wrong confirmation went to %q", wrong.location())
	}
	done := b.post("/console/keys/"+old.ID+"/delete", url.Values{"csrf": {formValue(t, csrfRE, p.body)}, "confirm": {old.ID}, "return": {"rotate"}, "new": {newKey}})
	if done.location() != "/console/applications/web" {
		t.Fatalf("delete from step 5 went to %q", done.location())
	}
	if got := b.get(done.location()); !strings.Contains(got.body, "Rotation finished") || strings.Contains(got.body, `data-key-id="`+old.ID+`"`) {
		t.Error("after the rotation the application page still lists the old key, or does not say it is done")
	}
	if code := e.call(old.Secret, "203.0.113.10", "web-1"); code != latchkey.CodeNotFound {
		t.Errorf("the deleted key verifies as %s", code)
	}
}

func TestRotationWizardPicksTheNewKey(t *testing.T) {
	e := newEnv(t)
	old := e.app("web")
	e.clock.Advance(time.Minute)
	nk := e.key("web")
	b := e.browser()
	b.mustSignIn(e.opID, e.opSecret)
	p := b.get("/console/keys/" + old.ID + "/rotate")
	if currentStep(t, p) != "2" || !strings.Contains(p.body, "New key</span> <code>"+nk.ID) {
		t.Fatal("with two keys the wizard does not start at step 2 with the other key as new")
	}
	// the new key's own wizard treats the first as its new key
	if p := b.get("/console/keys/" + nk.ID + "/rotate"); !strings.Contains(p.body, "New key</span> <code>"+old.ID) {
		t.Error("rotating the newer key does not pick the other key")
	}
	// a named new key of another application is ignored
	other := e.app("other")
	if p := b.get("/console/keys/" + old.ID + "/rotate?new=" + other.ID); !strings.Contains(p.body, "New key</span> <code>"+nk.ID) {
		t.Error("?new= accepted another application's key")
	}
	// and the chart refuses to pair them
	if p := b.get("/console/keys/" + old.ID + "/chart?with=" + other.ID); p.status != http.StatusBadRequest {
		t.Errorf("chart pairing keys of two applications: %d", p.status)
	}
}
