package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/cli"
	"github.com/latchkey/latchkey/internal/cli/clitest"
	"github.com/latchkey/latchkey/internal/credfile"
)

// The rotation tests run rotate-access-key in-process against a real server
// on 127.0.0.1:0, with a clock that moves on by itself: each wait of the
// command (one poll interval) advances it, and on each wait the
// application's instances make one call each. So a 15-minute quiet period
// with a 5-second poll is 180 polls and 180 calls per instance, taken as
// fast as the server answers, in the same order every run.
//
// The instances call the protected API the way a gateway would: a verifier
// principal asks latchkey about the key they present. "loop" reads its key
// from the application's credentials profile before every call, like a
// shell loop running curl -u "$ID:$SECRET"; "forgotten" is an instance
// nobody moved, still holding the old secret.

// fakeClock advances by d on every After(d), after running tick.
type fakeClock struct {
	mu   sync.Mutex
	now  time.Time
	tick func()
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	if c.tick != nil {
		c.tick()
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	t := c.now
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- t
	return ch
}

// instance is one running instance of the application.
type instance struct {
	gw            *client.Client
	file, profile string // where it reads its key before each call, or
	secret        string // the key it holds
	ip, ua        string

	mu       sync.Mutex
	ok       int
	failures []string
	used     map[string]int // access key ID -> successful calls
}

func (in *instance) call(t *testing.T) bool {
	t.Helper()
	secret, id := in.secret, ""
	if in.file != "" {
		f, err := credfile.Read(in.file)
		if err != nil {
			t.Errorf("instance reads its profile: %v", err)
			return false
		}
		p := f.Profile(in.profile)
		id, secret = p[credfile.KeyAccessKeyID], p[credfile.KeySecretAccessKey]
	}
	res, err := in.gw.Verify(context.Background(), client.VerifyInput{Key: secret, AccessKeyID: id, IP: in.ip, UserAgent: in.ua})
	in.mu.Lock()
	defer in.mu.Unlock()
	if err != nil {
		in.failures = append(in.failures, err.Error())
		return false
	}
	if !res.Valid {
		in.failures = append(in.failures, string(res.Code))
		return false
	}
	in.ok++
	in.used[res.AccessKeyID]++
	return true
}

func (in *instance) stats() (ok int, failures []string, used map[string]int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	u := map[string]int{}
	for k, v := range in.used {
		u[k] = v
	}
	return in.ok, append([]string(nil), in.failures...), u
}

// rig is a server, an application "billing" with one key (old) saved in
// profile "billing" of appCreds, and its instances.
type rig struct {
	srv       *clitest.Server
	admin     *client.Client
	env       map[string]string
	clock     *fakeClock
	appCreds  string
	old       *client.CreatedAccessKey
	loop      *instance
	forgotten *instance
	forgetful atomic.Bool // the forgotten instance is running
}

func newRig(t *testing.T) *rig {
	t.Helper()
	srv := clitest.Start(t)
	dir := t.TempDir()
	adminCreds := filepath.Join(dir, "admin", "credentials")
	if _, err := credfile.SaveProfile(adminCreds, "default", credfile.Profile{
		credfile.KeyAccessKeyID: srv.Admin.AccessKeyID, credfile.KeySecretAccessKey: srv.Admin.SecretAccessKey,
		credfile.KeyEndpointURL: srv.URL,
	}); err != nil {
		t.Fatal(err)
	}
	r := &rig{
		srv: srv, admin: srv.Client(t, srv.Admin),
		env:      map[string]string{cli.EnvCredentialsFile: adminCreds, "HOME": dir},
		clock:    &fakeClock{now: time.Now()},
		appCreds: filepath.Join(dir, "billing", "credentials"),
	}
	ctx := context.Background()
	if _, err := r.admin.CreateApplication(ctx, client.CreateApplicationInput{Name: "billing"}); err != nil {
		t.Fatal(err)
	}
	var err error
	if r.old, err = r.admin.CreateAccessKey(ctx, client.CreateAccessKeyInput{Application: "billing"}); err != nil {
		t.Fatal(err)
	}
	if _, err := credfile.SaveProfile(r.appCreds, "billing", credfile.Profile{
		credfile.KeyAccessKeyID: r.old.ID, credfile.KeySecretAccessKey: r.old.SecretAccessKey,
	}); err != nil {
		t.Fatal(err)
	}
	gw := srv.Client(t, srv.Verifier(t, "gateway"))
	r.loop = &instance{gw: gw, file: r.appCreds, profile: "billing", ip: "192.0.2.10", ua: "billing-loop/1.0", used: map[string]int{}}
	r.forgotten = &instance{gw: gw, secret: r.old.SecretAccessKey, ip: "198.51.100.23", ua: "nightly-cron/0.9", used: map[string]int{}}
	r.clock.tick = func() {
		r.loop.call(t)
		if r.forgetful.Load() {
			r.forgotten.call(t)
		}
	}
	if !r.loop.call(t) {
		t.Fatal("the instance cannot call with the first key")
	}
	return r
}

// outBuf collects a command's output and lets a test wait for a text.
type outBuf struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{}
}

func newOutBuf() *outBuf { return &outBuf{changed: make(chan struct{})} }

func (o *outBuf) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b.Write(p)
	close(o.changed)
	o.changed = make(chan struct{})
	return len(p), nil
}

func (o *outBuf) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// waitFor blocks until the output holds s.
func (o *outBuf) waitFor(t *testing.T, s string) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		o.mu.Lock()
		done, ch := strings.Contains(o.b.String(), s), o.changed
		o.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("waited in vain for %q; output so far:\n%s", s, o.String())
		}
	}
}

// cliRun is one command running in-process.
type cliRun struct {
	stdout, stderr *outBuf
	stdin          *io.PipeWriter
	done           chan int
	cancel         context.CancelFunc
}

// start runs latchkey with args; its standard input is a pipe the test
// writes answers to.
func (r *rig) start(t *testing.T, args ...string) *cliRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	run := &cliRun{stdout: newOutBuf(), stderr: newOutBuf(), stdin: pw, done: make(chan int, 1), cancel: cancel}
	root := cli.NewRootEnv(cli.Env{
		Getenv:     func(k string) string { return r.env[k] },
		Now:        r.clock.Now,
		After:      r.clock.After,
		IsTerminal: func(any) bool { return false },
		HTTPClient: &http.Client{},
	})
	root.SetArgs(args)
	root.SetIn(pr)
	root.SetOut(run.stdout)
	root.SetErr(run.stderr)
	go func() {
		err := root.ExecuteContext(ctx)
		run.done <- cli.ExitCode(err, func(msg string) { fmt.Fprintln(run.stderr, msg) })
	}()
	t.Cleanup(func() {
		cancel()
		pw.Close()
	})
	return run
}

func (c *cliRun) answer(t *testing.T, after, line string) {
	t.Helper()
	c.stdout.waitFor(t, after)
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

func (c *cliRun) wait(t *testing.T) int {
	t.Helper()
	c.stdin.Close()
	select {
	case code := <-c.done:
		return code
	case <-time.After(120 * time.Second):
		t.Fatalf("the command did not end; stdout:\n%s\nstderr:\n%s", c.stdout, c.stderr)
	}
	return -1
}

// runCLI runs a command to its end with standard input closed.
func (r *rig) runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	c := r.start(t, args...)
	code = c.wait(t)
	return c.stdout.String(), c.stderr.String(), code
}

func (r *rig) rotateArgs(extra ...string) []string {
	return append([]string{"rotate-access-key", "--access-key-id", r.old.ID, "--save-to-profile", "billing",
		"--credentials-file", r.appCreds, "--quiet-period", "15m", "--validate-period", "15m", "--poll-interval", "5s"}, extra...)
}

func (r *rig) profileKey(t *testing.T) string {
	t.Helper()
	f, err := credfile.Read(r.appCreds)
	if err != nil {
		t.Fatal(err)
	}
	return f.Profile("billing")[credfile.KeyAccessKeyID]
}

func (r *rig) status(t *testing.T, id string) latchkey.Status {
	t.Helper()
	k, err := r.admin.GetAccessKey(context.Background(), id)
	if latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
		return "Deleted"
	}
	if err != nil {
		t.Fatal(err)
	}
	return k.Status
}

// noFailedCall checks the instance that follows the profile never failed
// and moved from the old key to the new one.
func (r *rig) noFailedCall(t *testing.T, newID string) {
	t.Helper()
	ok, failures, used := r.loop.stats()
	if len(failures) > 0 {
		t.Errorf("the instance reading the profile had %d failed calls (of %d): %v", len(failures), ok+len(failures), failures)
	}
	if used[r.old.ID] == 0 || used[newID] == 0 {
		t.Errorf("calls per key: %v; want calls with both %s and %s", used, r.old.ID, newID)
	}
}

var secretRE = regexp.MustCompile(`lksk_[0-9A-Za-z]{46}`)

func mustContain(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, s)
		}
	}
}

// The five steps, straight through, for a script (--yes).
func TestRotateCompletes(t *testing.T) {
	r := newRig(t)
	start := r.clock.Now()
	stdout, stderr, code := r.runCLI(t, r.rotateArgs("--yes")...)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	newID := r.profileKey(t)
	if newID == r.old.ID {
		t.Fatalf("profile still holds the old key")
	}
	mustContain(t, "stdout", stdout,
		"Step 1/5: create the second key", "Created "+newID+" (Active)",
		"Step 2/5: hand the new key over", `Saved access key `+newID+` to profile "billing"`,
		r.old.ID+" has not been used for 15m",
		"Step 3/5: deactivate the old key", r.old.ID+" is Inactive",
		"Step 4/5: validate", "No call tried "+r.old.ID+" for 15m.",
		"Step 5/5: delete the old key", "Deleted "+r.old.ID,
		`Rotation complete: application "billing" uses `+newID,
		`Profile "billing-previous-1"`)
	if secretRE.MatchString(stdout + stderr) {
		t.Errorf("a secret was printed although it went to a profile")
	}
	if got := r.status(t, r.old.ID); got != "Deleted" {
		t.Errorf("old key is %s", got)
	}
	if got := r.status(t, newID); got != latchkey.StatusActive {
		t.Errorf("new key is %s", got)
	}
	if waited := r.clock.Now().Sub(start); waited < 30*time.Minute {
		t.Errorf("the command waited %s, less than the quiet and validation periods", waited)
	}
	r.noFailedCall(t, newID)
}

// Something still uses the old key after it is deactivated: the command
// shows who, reactivates the key on request and stops; once that instance
// is moved, running the same command again picks up at step 2 and
// finishes. The instance that follows the profile never fails.
func TestRotateStillUsedIsReactivatedThenResumed(t *testing.T) {
	r := newRig(t)
	r.forgetful.Store(true)

	run := r.start(t, r.rotateArgs()...)
	// The forgotten instance keeps the old key busy: move on by hand.
	run.answer(t, "press Enter or type skip to move on now", "skip")
	run.answer(t, "Reactivate "+r.old.ID+" so that it works again? [Y/n]", "y")
	if code := run.wait(t); code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, run.stdout, run.stderr)
	}
	stdout := run.stdout.String()
	newID := r.profileKey(t)
	mustContain(t, "stdout", stdout,
		"Moving on at your request",
		"Step 3/5: deactivate the old key",
		r.old.ID+" was tried after it was deactivated",
		`Who: source IP 198.51.100.23, user agent "nightly-cron/0.9"`,
		r.old.ID+" is Active again. Move that caller to "+newID)
	mustContain(t, "stderr", run.stderr.String(), "rotation stopped: "+r.old.ID+" is still in use, and is Active again")
	if strings.Contains(stdout, "Step 5/5") {
		t.Errorf("went on to delete the key")
	}
	if got := r.status(t, r.old.ID); got != latchkey.StatusActive {
		t.Fatalf("old key is %s after reactivation", got)
	}
	_, failures, _ := r.forgotten.stats()
	if len(failures) == 0 {
		t.Errorf("the forgotten instance was never refused")
	}
	if !r.forgotten.call(t) {
		t.Errorf("the forgotten instance still fails after reactivation")
	}

	// The forgotten instance is moved to the new key; run again.
	r.forgetful.Store(false)
	run = r.start(t, r.rotateArgs()...)
	run.answer(t, "Delete "+r.old.ID+" now? This cannot be undone. [y/N]", "y")
	if code := run.wait(t); code != 0 {
		t.Fatalf("second run: exit %d\nstdout:\n%s\nstderr:\n%s", code, run.stdout, run.stderr)
	}
	mustContain(t, "second run", run.stdout.String(),
		"Already done: "+newID,
		`Already done: profile "billing" in `+r.appCreds+" holds "+newID,
		"No call tried "+r.old.ID,
		"Deleted "+r.old.ID)
	if got := r.status(t, r.old.ID); got != "Deleted" {
		t.Errorf("old key is %s", got)
	}
	r.noFailedCall(t, newID)
}

// Interrupted at step 2, then at step 4: each run picks up where the keys
// stand.
func TestRotateInterruptedResumes(t *testing.T) {
	r := newRig(t)
	r.forgetful.Store(true) // keeps the watch from ending by itself

	run := r.start(t, r.rotateArgs()...)
	run.stdout.waitFor(t, "Watching both keys")
	run.cancel()
	if code := run.wait(t); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	mustContain(t, "stderr", run.stderr.String(), "interrupted at step 2", "Run the same command again")
	newID := r.profileKey(t)
	if r.status(t, r.old.ID) != latchkey.StatusActive || r.status(t, newID) != latchkey.StatusActive {
		t.Fatalf("keys after interruption: old %s, new %s", r.status(t, r.old.ID), r.status(t, newID))
	}

	r.forgetful.Store(false)
	run = r.start(t, r.rotateArgs()...)
	run.stdout.waitFor(t, "Watching for calls with")
	run.cancel()
	if code := run.wait(t); code != 1 {
		t.Fatalf("second run: exit %d, want 1", code)
	}
	mustContain(t, "second run", run.stdout.String(), "Already done: "+newID+" (created", "Step 3/5")
	mustContain(t, "second run stderr", run.stderr.String(), "interrupted at step 4")
	if got := r.status(t, r.old.ID); got != latchkey.StatusInactive {
		t.Fatalf("old key is %s, want Inactive", got)
	}

	stdout, stderr, code := r.runCLI(t, r.rotateArgs("--yes", "-o", "json")...)
	if code != 0 {
		t.Fatalf("third run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	mustContain(t, "third run steps", stderr, "Already done: "+r.old.ID+" is Inactive", "Step 4/5", "Deleted")
	var res map[string]string
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout)
	}
	want := map[string]string{
		"application": "billing", "old_access_key_id": r.old.ID, "new_access_key_id": newID,
		"outcome": "completed", "old_key_status": "Deleted", "saved_to_profile": "billing", "credentials_file": r.appCreds,
	}
	for k, v := range want {
		if res[k] != v {
			t.Errorf("summary %s = %q, want %q", k, res[k], v)
		}
	}
	r.noFailedCall(t, newID)
}

// Without --save-to-profile the secret is printed once: as text, or as the
// first of two JSON documents.
func TestRotatePrintsSecretOnce(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			r := newRig(t)
			r.clock.tick = nil // nobody hands the printed key over: the instances stay idle
			stdout, stderr, code := r.runCLI(t, "rotate-access-key", "--access-key-id", r.old.ID,
				"--quiet-period", "0", "--validate-period", "1m", "--poll-interval", "5s", "--yes", "-o", format)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			if n := len(secretRE.FindAllString(stdout, -1)); n != 1 {
				t.Errorf("stdout shows %d secrets, want 1", n)
			}
			if secretRE.MatchString(stderr) {
				t.Errorf("stderr shows a secret")
			}
			mustContain(t, "steps", stdout+stderr, "This is the only time the secret is shown")
			if format != "json" {
				return
			}
			dec := json.NewDecoder(strings.NewReader(stdout))
			var key struct {
				ID     string `json:"access_key_id"`
				Secret string `json:"secret_access_key"`
			}
			var sum struct {
				New     string `json:"new_access_key_id"`
				Outcome string `json:"outcome"`
			}
			if err := dec.Decode(&key); err != nil || key.Secret == "" {
				t.Fatalf("first document: %v", err)
			}
			if err := dec.Decode(&sum); err != nil || sum.New != key.ID || sum.Outcome != "completed" {
				t.Fatalf("summary: %+v, %v", sum, err)
			}
		})
	}
}

// Answers other than "go on": keep the old key, or let --yes reactivate it.
func TestRotateAnswers(t *testing.T) {
	t.Run("keep the old key", func(t *testing.T) {
		r := newRig(t)
		run := r.start(t, r.rotateArgs("--quiet-period", "1m", "--validate-period", "1m")...)
		run.answer(t, "This cannot be undone. [y/N]", "n")
		if code := run.wait(t); code != 0 {
			t.Fatalf("exit %d\n%s", code, run.stderr)
		}
		mustContain(t, "stdout", run.stdout.String(), "stays Inactive. Delete it later with: latchkey delete-access-key --access-key-id "+r.old.ID)
		if got := r.status(t, r.old.ID); got != latchkey.StatusInactive {
			t.Errorf("old key is %s", got)
		}
	})
	t.Run("--yes reactivates a key still in use", func(t *testing.T) {
		r := newRig(t)
		r.forgetful.Store(true)
		stdout, stderr, code := r.runCLI(t, r.rotateArgs("--quiet-period", "0", "--yes")...)
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
		}
		mustContain(t, "stdout", stdout, "Reactivating it (--yes)", "is Active again")
		if got := r.status(t, r.old.ID); got != latchkey.StatusActive {
			t.Errorf("old key is %s", got)
		}
	})
	t.Run("nobody answers whether to reactivate", func(t *testing.T) {
		r := newRig(t)
		r.forgetful.Store(true)
		stdout, stderr, code := r.runCLI(t, r.rotateArgs("--quiet-period", "0")...)
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
		}
		mustContain(t, "stderr", stderr, "nobody answered whether to reactivate it")
		if got := r.status(t, r.old.ID); got != latchkey.StatusInactive {
			t.Errorf("old key is %s, want it left Inactive", got)
		}
	})
}

// What rotate-access-key refuses, and the exit code it refuses with.
func TestRotateRefuses(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		prepare func(t *testing.T, r *rig) []string
		code    int
		stderr  string
	}{
		{"third key", func(t *testing.T, r *rig) []string {
			k, err := r.admin.CreateAccessKey(ctx, client.CreateAccessKeyInput{Application: "billing"})
			if err != nil {
				t.Fatal(err)
			}
			inactive := latchkey.StatusInactive
			if _, err := r.admin.UpdateAccessKey(ctx, k.ID, latchkey.AccessKeyUpdate{Status: &inactive}); err != nil {
				t.Fatal(err)
			}
			r.env["WANT"] = k.ID
			return r.rotateArgs()
		}, 1, "LimitExceeded: application \"billing\" already has 2 access keys, the most it may have. Not part of this rotation: $WANT (Inactive"},
		{"unknown key", func(t *testing.T, r *rig) []string {
			return []string{"rotate-access-key", "--access-key-id", "LKIAAAAAAAAAAAAAAAAA"}
		}, 1, "NotFound: access key LKIAAAAAAAAAAAAAAAAA not found"},
		{"admin key", func(t *testing.T, r *rig) []string {
			return []string{"rotate-access-key", "--access-key-id", r.srv.Admin.AccessKeyID}
		}, 2, `belongs to principal "admin"`},
		{"old key Inactive, no other key", func(t *testing.T, r *rig) []string {
			inactive := latchkey.StatusInactive
			if _, err := r.admin.UpdateAccessKey(ctx, r.old.ID, latchkey.AccessKeyUpdate{Status: &inactive}); err != nil {
				t.Fatal(err)
			}
			return r.rotateArgs()
		}, 1, "Conflict: access key $OLD is already Inactive and application \"billing\" has no Active key"},
		{"second key from an earlier run, not in the profile", func(t *testing.T, r *rig) []string {
			k, err := r.admin.CreateAccessKey(ctx, client.CreateAccessKeyInput{Application: "billing"})
			if err != nil {
				t.Fatal(err)
			}
			r.env["WANT"] = k.ID
			return r.rotateArgs()
		}, 1, "$WANT was created by an earlier run, but profile \"billing\""},
		{"own profile", func(t *testing.T, r *rig) []string {
			return []string{"rotate-access-key", "--access-key-id", r.old.ID, "--save-to-profile", "default"}
		}, 2, "holds the credentials this command runs with"},
		{"no key", func(t *testing.T, r *rig) []string { return []string{"rotate-access-key"} }, 2, "--access-key-id is required"},
		{"negative period", func(t *testing.T, r *rig) []string {
			return []string{"rotate-access-key", "--access-key-id", r.old.ID, "--quiet-period", "-1m"}
		}, 2, "--quiet-period -1m0s: expected a duration of 0 or more"},
		{"bad duration", func(t *testing.T, r *rig) []string {
			return []string{"rotate-access-key", "--access-key-id", r.old.ID, "--validate-period", "soon"}
		}, 2, "invalid argument \"soon\" for \"--validate-period\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			args := tt.prepare(t, r)
			stdout, stderr, code := r.runCLI(t, args...)
			want := strings.NewReplacer("$WANT", r.env["WANT"], "$OLD", r.old.ID).Replace(tt.stderr)
			if code != tt.code || !strings.Contains(stderr, want) {
				t.Errorf("exit %d, want %d; stderr does not hold %q:\n%s\nstdout:\n%s", code, tt.code, want, stderr, stdout)
			}
			if r.status(t, r.old.ID) != latchkey.StatusActive && tt.name != "old key Inactive, no other key" {
				t.Errorf("old key changed to %s", r.status(t, r.old.ID))
			}
		})
	}
}

// A --save-to-profile that holds some other key (another application's,
// say) is refused before anything changes: saving the new key there would
// rename that profile to PROFILE-previous-1 behind its readers' backs.
func TestRotateLeavesOtherProfilesAlone(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	if _, err := r.admin.CreateApplication(ctx, client.CreateApplicationInput{Name: "shipping"}); err != nil {
		t.Fatal(err)
	}
	other, err := r.admin.CreateAccessKey(ctx, client.CreateAccessKeyInput{Application: "shipping"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := credfile.SaveProfile(r.appCreds, "shipping", credfile.Profile{
		credfile.KeyAccessKeyID: other.ID, credfile.KeySecretAccessKey: other.SecretAccessKey,
	}); err != nil {
		t.Fatal(err)
	}
	before, err := credfile.Read(r.appCreds)
	if err != nil {
		t.Fatal(err)
	}

	stdout, stderr, code := r.runCLI(t, "rotate-access-key", "--access-key-id", r.old.ID, "--save-to-profile", "shipping",
		"--credentials-file", r.appCreds, "--quiet-period", "0", "--validate-period", "0", "--yes")
	if code != 2 {
		t.Errorf("exit %d, want 2\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	mustContain(t, "stderr", stderr, `--save-to-profile shipping: profile "shipping" in `+r.appCreds+" holds access key "+other.ID+", not "+r.old.ID)
	after, err := credfile.Read(r.appCreds)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(after.Bytes()), string(before.Bytes()); got != want {
		t.Errorf("the credentials file changed: profiles %v, were %v", after.Profiles(), before.Profiles())
	}
	n := 0
	for _, err := range r.admin.AccessKeys(ctx, client.ListAccessKeysInput{Application: "billing"}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 1 {
		t.Errorf("application billing has %d keys, want 1: a key was created although the rotation was refused", n)
	}
	if got := r.status(t, r.old.ID); got != latchkey.StatusActive {
		t.Errorf("old key is %s", got)
	}
}
