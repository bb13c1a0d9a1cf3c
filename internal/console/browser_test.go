package console

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
)

// findChromium returns the browser the test drives: $LATCHKEY_CHROMIUM,
// Debian's /usr/bin/chromium, or a Chromium or Chrome on PATH.
func findChromium() string {
	if p := os.Getenv("LATCHKEY_CHROMIUM"); p != "" {
		return p // used as given: a wrong path fails the test
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// missingChromium says what the browser test does without a browser: in CI
// (env CI set) it fails, because the check would otherwise silently not
// run; elsewhere it skips.
func missingChromium(ci bool) (fail bool, msg string) {
	if ci {
		return true, "the browser test needs Chromium, and CI must run it: install Debian's chromium package (.ci/run does: apt-get install chromium) or set LATCHKEY_CHROMIUM"
	}
	return false, "no Chromium found (apt-get install chromium, or set LATCHKEY_CHROMIUM); the browser test is skipped outside CI"
}

func TestMissingChromiumFailsInCI(t *testing.T) {
	if fail, _ := missingChromium(true); !fail {
		t.Error("without Chromium, CI would skip the browser test")
	}
	if fail, _ := missingChromium(false); fail {
		t.Error("without Chromium, a developer's run would fail")
	}
}

// artifactsDir is where screenshots go: $LATCHKEY_ARTIFACTS_DIR, or
// artifacts/console/ at the root of the module (ignored by git).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LATCHKEY_ARTIFACTS_DIR")
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		root := wd
		for {
			if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(root)
			if parent == root {
				t.Fatal("no go.mod above " + wd)
			}
			root = parent
		}
		dir = filepath.Join(root, "artifacts", "console")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fastClock runs speed times faster than the wall clock, so that an hour
// of traffic fits in a minute of test: the chart shows minutes of real
// calls without the test waiting for them.
type fastClock struct {
	start, real time.Time
	speed       float64
}

func (f fastClock) Now() time.Time {
	return f.start.Add(time.Duration(float64(time.Since(f.real)) * f.speed))
}

// fleet is the background client: instances of an application, each
// calling the API every tick with the key it was configured with, and a
// nightly job that calls rarely. Calls go through the verifier exactly as
// /v1/verify does.
type fleet struct {
	ver *verify.Verifier

	mu        sync.Mutex
	instances []instance
	job       instance
	jobEvery  time.Duration
	calls     map[latchkey.Code]int
}

type instance struct {
	ip, ua, secret string
}

func (f *fleet) run(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastJob := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			f.mu.Lock()
			batch := append([]instance(nil), f.instances...)
			if f.job.secret != "" && now.Sub(lastJob) >= f.jobEvery {
				batch = append(batch, f.job)
				lastJob = now
			}
			f.mu.Unlock()
			for _, in := range batch {
				res := f.ver.Verify(&verify.Request{Secret: in.secret, IP: netip.MustParseAddr(in.ip), UserAgent: in.ua})
				f.mu.Lock()
				f.calls[res.Code]++
				f.mu.Unlock()
			}
		}
	}
}

// deploy gives instance i a new secret, as a deployment would.
func (f *fleet) deploy(i int, secret string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instances[i].secret = secret
}

func (f *fleet) deployJob(secret string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.job.secret = secret
}

// bt drives the browser and fails the test on any error.
type bt struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
}

func (b *bt) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// nav loads a console page and waits for it.
func (b *bt) nav(path string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(b.base+path)); err != nil {
		b.t.Fatalf("navigate %s: %v", path, err)
	}
}

// submit clicks a button that submits a form and waits for the next page.
func (b *bt) submit(sel string) {
	b.t.Helper()
	if _, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err != nil {
		b.t.Fatalf("click %s: %v", sel, err)
	}
}

func (b *bt) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (b *bt) eval(js string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return s
}

// html is the whole document as the browser has it now.
func (b *bt) html() string { return b.eval(`document.documentElement.outerHTML`) }

func (b *bt) location() string { return b.eval(`location.pathname + location.search`) }

// waitJS waits until a JavaScript expression is true.
func (b *bt) waitJS(what, js string, timeout time.Duration) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		b.t.Fatalf("waiting for %s: %v\npage %s:\n%s", what, err, b.location(), b.text("main"))
	}
}

// reloadUntil reloads the page until sel is present.
func (b *bt) reloadUntil(what, sel string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if b.eval(fmt.Sprintf(`document.querySelector(%q) ? "yes" : "no"`, sel)) == "yes" {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waiting for %s (%s) on %s:\n%s", what, sel, b.location(), b.text("main"))
		}
		time.Sleep(500 * time.Millisecond)
		if _, err := chromedp.RunResponse(b.ctx, chromedp.Reload()); err != nil {
			b.t.Fatal(err)
		}
	}
}

// shot saves a full-page PNG screenshot.
func (b *bt) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.shots, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
}

func (b *bt) status(keyID string) string {
	return b.eval(fmt.Sprintf(`(document.querySelector('tr[data-key-id=%q] [data-status]') || {}).dataset?.status || "missing"`, keyID))
}

// rigOptions are what a browser test changes in the server it drives.
type rigOptions struct {
	now            func() time.Time // the clock of the service, verifier and console
	refreshSeconds int              // the chart's refresh interval
	trafficWindow  time.Duration
	// wrap, when set, wraps the server's handler, to watch or delay
	// requests.
	wrap    func(http.Handler) http.Handler
	timeout time.Duration // the whole browser session (default 2 minutes)
	// setup, when set, configures the console before it serves, knowing
	// the URL it will serve at (OIDC needs its callback URL).
	setup func(c *Console, consoleURL string)
}

// rig is a browser test's world: the server, wired as latchkey serve wires
// it (the console mounted into the API server), and Debian's headless
// Chromium with a fresh profile at 1280 x 900, whose console errors,
// warnings and exceptions (a CSP violation is one) are collected. It skips
// or fails the test without Chromium, as missingChromium says.
type rig struct {
	*bt
	svc  *manage.Service
	ver  *verify.Verifier
	srv  *httptest.Server
	boot *manage.CreatedKey

	mu       sync.Mutex
	problems []string
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	chromium := findChromium()
	if chromium == "" {
		if fail, msg := missingChromium(os.Getenv("CI") != ""); fail {
			t.Fatal(msg)
		} else {
			t.Skip(msg)
		}
	}
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("the browser tests take a minute or more; skipped with -short outside CI")
	}
	ctx := t.Context()
	if o.now == nil {
		o.now = time.Now
	}
	store, err := sqlite.Open(ctx, t.TempDir()+"/lk.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ix := verify.NewIndex()
	log := slog.New(slog.DiscardHandler)
	svc := manage.New(store, ix, log)
	svc.Now = o.now
	rec := verify.NewRecorder(store, 200*time.Millisecond, log)
	recCtx, stopRec := context.WithCancel(context.WithoutCancel(ctx))
	rec.Start(recCtx)
	t.Cleanup(func() { stopRec(); _ = rec.Stop(context.Background()) })
	ver := verify.New(ix, rec)
	ver.Now = o.now
	boot, err := svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	con := &Console{Service: svc, Verifier: ver, Log: log, Now: o.now, RefreshSeconds: o.refreshSeconds, TrafficWindow: o.trafficWindow,
		ClientIP: func(r *http.Request) netip.Addr { return httpapi.ClientIP(r, nil) }}
	srv := httptest.NewUnstartedServer(nil)
	if o.setup != nil {
		o.setup(con, "http://"+srv.Listener.Addr().String())
	}
	portal := &Portal{Console: con} // the consumer portal beside the console
	api := &httpapi.Server{Service: svc, Verifier: ver, Log: log, Mount: func(m *http.ServeMux) { con.Mount(m); portal.Mount(m) }}
	h := api.Handler()
	if o.wrap != nil {
		h = o.wrap(h)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	if o.timeout == 0 {
		o.timeout = 2 * time.Minute
	}
	bctx, cancelTimeout := context.WithTimeout(bctx, o.timeout)
	t.Cleanup(cancelTimeout)
	r := &rig{bt: &bt{t: t, ctx: bctx, base: srv.URL, shots: artifactsDir(t)}, svc: svc, ver: ver, srv: srv, boot: boot}

	logs := chromedp.Events(bctx, cdplog.EntryAdded)
	exceptions := chromedp.Events(bctx, runtime.ExceptionThrown)
	go func() {
		for ev, err := range logs {
			if err != nil {
				return
			}
			if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Level == cdplog.EntryLevelWarning {
				r.problem(fmt.Sprintf("%s: %s (%s)", ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
			}
		}
	}()
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			r.problem("exception: " + ev.ExceptionDetails.Text)
		}
	}()
	return r
}

func (r *rig) problem(p string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, p)
}

// checkProblems fails the test if the browser reported a problem that
// expected does not match (nil: every problem fails it).
func (r *rig) checkProblems(expected *regexp.Regexp) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var real []string
	for _, p := range r.problems {
		if expected == nil || !expected.MatchString(p) {
			real = append(real, p)
		}
	}
	if len(real) > 0 {
		r.t.Errorf("the browser reported problems:\n%s", strings.Join(real, "\n"))
	}
}

// signIn signs in with the first operator's key through the sign-in form.
func (r *rig) signIn() {
	r.t.Helper()
	r.nav("/console/signin")
	r.do(chromedp.SendKeys(chromedp.ID("access_key_id"), r.boot.ID), chromedp.SendKeys(chromedp.ID("secret_access_key"), r.boot.Secret))
	r.submit(`form[action="/console/signin"] button[type=submit]`)
	if loc := r.location(); loc != "/console/applications" {
		r.t.Fatalf("after sign-in at %s", loc)
	}
}

// TestBrowserConsole drives Debian's headless Chromium through the console
// the way a new user would, with a background client using the keys:
// sign in with the keyboard, register an application, create a key and
// read its secret once (then find it nowhere after reloading or going
// back), download it as .env, deactivate and reactivate it from the key
// list, rotate it with the wizard while the client's instances move to the
// new key and a nightly job keeps using the old one (steps 3 and 4 show
// it), reactivate, move the job, deactivate, delete; refuse two forged
// POSTs; check phone width; sign out. It fails on any console error (a
// CSP violation included). Screenshots go to artifacts/console/.
func TestBrowserConsole(t *testing.T) {
	// The server runs on a clock 60 times faster than the wall clock.
	clk := fastClock{start: time.Now().UTC().Truncate(time.Minute), real: time.Now(), speed: 60}
	r := newRig(t, rigOptions{now: clk.Now, refreshSeconds: 2, trafficWindow: 5 * time.Minute, timeout: 4 * time.Minute})
	ctx := t.Context()
	b, bctx, svc, ver, srv, boot := r.bt, r.ctx, r.svc, r.ver, r.srv, r.boot
	downloads := t.TempDir()
	if _, err := chromedp.CallBrowser(bctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads}); err != nil {
		t.Fatal(err)
	}

	// Sign in with the keyboard only.
	b.nav("/console/")
	if loc := b.location(); !strings.HasPrefix(loc, "/console/signin") {
		t.Fatalf("/console/ without a session went to %s, want the sign-in page", loc)
	}
	if got := b.eval(`getComputedStyle(document.querySelector('header.top')).display`); got != "flex" {
		t.Fatalf("the stylesheet did not apply (header display %q): is it blocked?", got)
	}
	b.do(chromedp.Focus(chromedp.ID("access_key_id")), chromedp.KeyEvent(boot.ID+"\t"+boot.Secret))
	if _, err := chromedp.RunResponse(bctx, chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	if loc := b.location(); loc != "/console/applications" {
		t.Fatalf("after sign-in at %s\n%s", loc, b.text("main"))
	}
	if strings.Contains(b.html(), boot.Secret) {
		t.Fatal("the page after sign-in contains the admin secret")
	}

	// Register an application and create its first key.
	b.do(chromedp.SendKeys(chromedp.ID("app-name"), "shipments-web"), chromedp.SendKeys(chromedp.ID("app-desc"), "the web shop"))
	b.submit(`form[action="/console/applications"] button[type=submit]`)
	if h := b.text("h1"); h != "shipments-web" {
		t.Fatalf("after registering, h1 = %q", h)
	}
	b.do(chromedp.SendKeys(chromedp.ID("key-desc"), "production"))
	b.submit(`form[action$="/keys"] button[type=submit]`)
	secret1 := strings.TrimSpace(b.text("#new-secret"))
	key1 := strings.TrimSpace(b.text("#new-key-id"))
	if !keyformat.ValidSecret(secret1) || !keyformat.ValidID(key1) {
		t.Fatalf("the created page shows ID %q and a secret that is not valid", key1)
	}
	if !strings.Contains(b.text(".flash-warn"), "only time") {
		t.Fatal("the created page does not say the secret is shown only once")
	}
	// The copy button puts the secret on the clipboard.
	for _, perm := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(bctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: perm}, Setting: cdpbrowser.PermissionSettingGranted, Origin: srv.URL}); err != nil {
			t.Fatal(err)
		}
	}
	b.do(chromedp.Click(chromedp.CSS(`[data-copy="#new-secret"]`), chromedp.NodeVisible))
	b.waitJS("the copy confirmation", `document.querySelector('.copy-status').textContent !== ""`, 5*time.Second)
	if got := b.text(".copy-status"); got != "Copied to the clipboard." {
		t.Fatalf("copy button: %q", got)
	}
	if got, err := chromedp.Run(bctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise)); err != nil || got != secret1 {
		t.Fatalf("the clipboard holds %d characters (err %v), want the secret", len(got), err)
	}
	// The .env download is built in the browser from the page.
	b.do(chromedp.Click(chromedp.CSS(`[data-download="#dotenv"]`), chromedp.NodeVisible))
	envFile := filepath.Join(downloads, "latchkey.env")
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := os.ReadFile(envFile)
		if err == nil && strings.Contains(string(got), "LATCHKEY_SECRET_ACCESS_KEY="+secret1) {
			if !strings.Contains(string(got), "LATCHKEY_ACCESS_KEY_ID="+key1) {
				t.Fatalf(".env download lacks the key ID:\n%s", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the .env download did not arrive in %s (err %v)", downloads, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	os.Remove(envFile)

	// Leave the page: the secret is nowhere, after a reload or going back.
	b.submit(`main a.button[href="/console/applications/shipments-web"]`)
	noSecret := func(where, secret string) {
		t.Helper()
		if strings.Contains(b.html(), secret) {
			t.Fatalf("%s (%s) still shows the secret", where, b.location())
		}
	}
	noSecret("the application page", secret1)
	if _, err := chromedp.RunResponse(bctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	noSecret("the application page after a reload", secret1)
	// Back to the creation response: Chrome may not show a no-store page
	// from its cache (ERR_CACHE_MISS, "confirm form resubmission").
	if err := chromedp.Do(bctx, chromedp.NavigateBack()); err != nil && !strings.Contains(err.Error(), "ERR_CACHE_MISS") {
		t.Fatal(err)
	}
	b.waitJS("the page after going back", `document.readyState === "complete"`, 10*time.Second)
	noSecret("the page after going back", secret1)
	// Submitting the creation form again (reload of that page) creates
	// nothing and shows nothing: its one-time token is spent.
	if _, err := chromedp.RunResponse(bctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	noSecret("the resubmitted creation form", secret1)
	if msg := b.text(".flash-error"); !strings.Contains(msg, "already been used") {
		t.Fatalf("resubmitting the creation form: %q", msg)
	}
	if keys, _, _ := svc.ListAccessKeys(ctx, latchkey.System(), latchkey.AccessKeyFilter{Application: "shipments-web", Account: "default"}); len(keys) != 1 {
		t.Fatalf("resubmitting the creation form made %d keys, want 1", len(keys))
	}
	for _, p := range []string{"/console/keys", "/console/keys/" + key1, "/console/audit", "/console/applications"} {
		b.nav(p)
		noSecret(p, secret1)
	}

	// Traffic: three web instances and a nightly job use the key.
	f := &fleet{ver: ver, calls: map[latchkey.Code]int{}, jobEvery: 3 * time.Second,
		instances: []instance{
			{"203.0.113.11", "shipments-web/2.3 (web-1)", secret1},
			{"203.0.113.12", "shipments-web/2.3 (web-2)", secret1},
			{"203.0.113.13", "shipments-web/2.3 (web-3)", secret1},
		},
		job: instance{"198.51.100.7", "nightly-report/1.0", secret1},
	}
	fctx, stopFleet := context.WithCancel(ctx)
	var fleetDone sync.WaitGroup
	fleetDone.Go(func() { f.run(fctx) })
	defer func() { stopFleet(); fleetDone.Wait() }()

	// The key list shows the status beside each key; deactivate and see it
	// change, then reactivate.
	b.nav("/console/keys")
	b.reloadUntil("the key's first use", `tr[data-key-id="`+key1+`"] td[data-label="Last used"] time`, 10*time.Second)
	if st := b.status(key1); st != "Active" {
		t.Fatalf("key list status of %s = %s, want Active", key1, st)
	}
	b.submit(`tr[data-key-id="` + key1 + `"] button[aria-label="Deactivate ` + key1 + `"]`)
	if st := b.status(key1); st != "Inactive" {
		t.Fatalf("after Deactivate, key list status = %s, want Inactive\n%s", st, b.text("main"))
	}
	if !strings.Contains(b.text(`[role=status]`), "is now Inactive") {
		t.Fatal("no confirmation after deactivating")
	}
	b.shot("key-list-inactive.png")
	b.submit(`tr[data-key-id="` + key1 + `"] button[aria-label="Reactivate ` + key1 + `"]`)
	if st := b.status(key1); st != "Active" {
		t.Fatalf("after Reactivate, key list status = %s, want Active", st)
	}

	// Let the old key build up some history on the chart.
	time.Sleep(8 * time.Second)
	b.nav("/console/keys")
	b.shot("key-list.png")

	// The rotation wizard. Step 1: create the new key.
	b.nav("/console/applications/shipments-web")
	b.submit(`tr[data-key-id="` + key1 + `"] a[aria-label="Rotate ` + key1 + `"]`)
	if got := b.eval(`document.querySelector('.stepper li.current').dataset.step`); got != "1" {
		t.Fatalf("the wizard opened at step %s, want 1", got)
	}
	b.submit(`section.step form button[type=submit]`)
	secret2 := strings.TrimSpace(b.text("#new-secret"))
	key2 := strings.TrimSpace(b.text("#new-key-id"))
	if !keyformat.ValidSecret(secret2) || key2 == key1 {
		t.Fatalf("step 1 made key %q", key2)
	}
	b.submit(`main a.button[href*="/rotate"]`)
	noSecret("wizard step 2", secret2)
	if got := b.eval(`document.querySelector('.stepper li.current').dataset.step`); got != "2" {
		t.Fatalf("after creating the new key the wizard is at step %s, want 2", got)
	}
	b.submit(`nav.hours a[href*="hours=1&"]`)

	// Step 2: the instances move one by one; the chart updates live.
	generated := b.eval(`document.querySelector('#usage-chart').dataset.generated`)
	for i := range f.instances {
		time.Sleep(4 * time.Second)
		f.deploy(i, secret2)
	}
	time.Sleep(4 * time.Second)
	b.waitJS("a live chart update", fmt.Sprintf(`document.querySelector('#usage-chart').dataset.generated !== %q`, generated), 10*time.Second)
	b.waitJS("the new key's traffic on the live chart", `+document.querySelector('.chart-summary li[data-role="new"] [data-valid]').dataset.valid > 0`, 10*time.Second)
	if got := b.eval(`String(document.querySelectorAll('#usage-chart path.s-new').length)`); got != "2" {
		t.Fatalf("the chart has %s lines for the new key, want 2 (valid and rejected)", got)
	}
	b.shot("wizard-step2.png")

	// Phone width: the key list and the wizard still work.
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	wizard := b.location()
	b.nav("/console/keys")
	if w := b.eval(`String(document.documentElement.scrollWidth)`); w != "390" {
		t.Errorf("at phone width the key list is %s px wide, want 390 (no sideways scrolling)", w)
	}
	b.shot("key-list-phone.png")
	b.nav(wizard)
	if w := b.eval(`String(document.documentElement.scrollWidth)`); w != "390" {
		t.Errorf("at phone width the wizard is %s px wide, want 390", w)
	}
	b.shot("wizard-phone.png")
	b.do(chromedp.EmulateReset())
	b.do(chromedp.EmulateViewport(1280, 900))

	// Step 3: the nightly job still uses the old key, so the wizard warns,
	// and deactivating is still possible.
	b.submit(`section.step a.button[href*="step=3"]`)
	b.reloadUntil("the warning that the old key is in use", "#traffic-warning", 10*time.Second)
	if w := b.text("#traffic-warning"); !strings.Contains(w, "198.51.100.7") && !strings.Contains(w, "203.0.113.") {
		t.Fatalf("the warning does not say where the traffic comes from: %q", w)
	}
	b.shot("wizard-step3.png")
	b.submit(`section.step form button[type=submit]`)
	if got := b.eval(`document.querySelector('.stepper li.current').dataset.step`); got != "4" {
		t.Fatalf("after deactivating the wizard is at step %s, want 4", got)
	}

	// Step 4: the nightly job is refused; the wizard shows where from.
	// It waits for the address too: Recorder.Flush (internal/verify)
	// takes a batch out of the pending usage before the store has it, so
	// for a moment a page can count a rejection and not yet know its
	// address.
	b.reloadUntil("the job's refused attempt", "#rejected-attempts .ip", 15*time.Second)
	rej := b.text("#rejected-attempts")
	if !strings.Contains(rej, "198.51.100.7") || !strings.Contains(rej, "nightly-report/1.0") || !strings.Contains(rej, "INACTIVE") {
		t.Fatalf("step 4 does not show the refused attempt's address, user agent and code: %q", rej)
	}
	b.shot("wizard-step4.png")
	// Reactivate while the job is fixed, then try again.
	b.submit(`section.step form button[type=submit]`)
	if got := b.eval(`document.querySelector('.stepper li.current').dataset.step`); got != "3" {
		t.Fatalf("after reactivating the wizard is at step %s, want 3", got)
	}
	if st := b.eval(`document.querySelector('.keys-pair [data-status]').dataset.status`); st != "Active" {
		t.Fatalf("after reactivating the old key is %s", st)
	}
	f.deployJob(secret2)
	b.reloadUntil("quiet on the old key", "#traffic-quiet", 20*time.Second)
	b.submit(`section.step form button[type=submit]`)
	b.reloadUntil("step 4 without refused attempts", "#no-rejections", 5*time.Second)
	b.submit(`section.step a.button[href*="step=5"]`)

	// Step 5: delete, with the key ID typed to confirm.
	b.do(chromedp.SendKeys(chromedp.ID("confirm-delete"), key1))
	b.shot("wizard-step5.png")
	b.submit(`section.step form button.danger`)
	if loc := b.location(); loc != "/console/applications/shipments-web" {
		t.Fatalf("after deleting, at %s", loc)
	}
	if msg := b.text(`[role=status]`); !strings.Contains(msg, "Rotation finished") {
		t.Fatalf("no confirmation after the rotation: %q", msg)
	}
	if b.status(key1) != "missing" || b.status(key2) != "Active" {
		t.Fatalf("after the rotation the list shows old %s, new %s", b.status(key1), b.status(key2))
	}
	if code := ver.Verify(&verify.Request{Secret: secret1}).Code; code != latchkey.CodeNotFound {
		t.Fatalf("the deleted key verifies as %s", code)
	}
	b.nav("/console/keys/" + key2 + "?hours=1")
	b.shot("key-page.png")

	// CSRF: a form without the token, from the console's own origin, is
	// refused, and so is a form posted from another site.
	b.eval(fmt.Sprintf(`(() => { const f = document.createElement('form'); f.method = 'post'; f.action = '/console/keys/%s/status';
		const s = document.createElement('input'); s.name = 'status'; s.value = 'Inactive'; f.appendChild(s);
		f.id = 'forged'; document.body.appendChild(f); return "ok"; })()`, key2))
	if _, err := chromedp.RunResponse(bctx, chromedp.Submit(chromedp.ID("forged"))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.text("main"), "security token") {
		t.Fatalf("a forged POST without the token was not refused:\n%s", b.text("main"))
	}
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><title>prize</title><form method="post" action="%s/console/keys/%s/status">
			<input type="hidden" name="status" value="Inactive"><button id="win" type="submit">Claim your prize</button></form>`, srv.URL, key2)
	}))
	defer evil.Close()
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1) // another site
	if _, err := chromedp.Run(bctx, chromedp.NavigateResponse(evilURL)); err != nil {
		t.Fatal(err)
	}
	resp, err := chromedp.RunResponse(bctx, chromedp.Click(chromedp.ID("win")))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusForbidden {
		t.Fatalf("a cross-site POST got status %d, want 403", resp.Status)
	}
	if k, err := svc.GetAccessKey(ctx, latchkey.System(), key2); err != nil || k.Status != latchkey.StatusActive {
		t.Fatalf("after the forged POSTs the new key is %v (err %v), want Active", k.Status, err)
	}

	// Every change was audited as the signed-in principal.
	b.nav("/console/audit?access_key_id=" + key1)
	for _, want := range []string{"key created", "key changed", "key deleted"} {
		if !strings.Contains(b.text("table.audit"), want) {
			t.Errorf("the audit log of %s lacks %q", key1, want)
		}
	}
	if got := b.eval(`[...document.querySelectorAll('[data-actor]')].map(e => e.dataset.actor).filter(a => a !== "admin").join(",")`); got != "" {
		t.Errorf("audit events by someone other than the signed-in admin: %s", got)
	}
	b.shot("audit.png")

	// Without JavaScript: the key list's buttons still work, the chart is
	// still there, and the script-only controls stay hidden.
	if _, err := chromedp.Call(bctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	b.nav("/console/keys")
	b.submit(`tr[data-key-id="` + key2 + `"] button[aria-label="Deactivate ` + key2 + `"]`)
	if st := b.status(key2); st != "Inactive" {
		t.Fatalf("without JavaScript, Deactivate left the key %s", st)
	}
	b.submit(`tr[data-key-id="` + key2 + `"] button[aria-label="Reactivate ` + key2 + `"]`)
	b.nav("/console/keys/" + key2)
	if got := b.eval(`String(document.querySelectorAll('#usage-chart path.line').length)`); got != "2" {
		t.Fatalf("without JavaScript the key page has %s chart lines, want 2", got)
	}
	if got := b.eval(`document.querySelector('.chart-updated .js-only').hidden ? "hidden" : "shown"`); got != "hidden" {
		t.Fatal("without JavaScript the page promises live updates")
	}
	b.shot("key-page-nojs.png")
	if _, err := chromedp.Call(bctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false}); err != nil {
		t.Fatal(err)
	}

	// Sign out: the session is gone.
	b.submit(`form[action="/console/signout"] button`)
	b.nav("/console/keys")
	if loc := b.location(); !strings.HasPrefix(loc, "/console/signin") {
		t.Fatalf("after signing out /console/keys is at %s", loc)
	}

	// the forged POSTs' 403 answers are expected failures
	r.checkProblems(regexp.MustCompile(`status of 403`))
	f.mu.Lock()
	t.Logf("background client calls: %v", f.calls)
	f.mu.Unlock()
}
