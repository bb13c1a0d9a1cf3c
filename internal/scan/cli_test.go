package scan_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey/internal/cli"
	"github.com/latchkey/latchkey/keyformat"
)

// runAsLatchkey makes this test binary act as the latchkey command when a
// git hook runs it.
const runAsLatchkey = "LATCHKEY_SCAN_TEST_RUN_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(runAsLatchkey) == "1" {
		err := cli.NewRoot().ExecuteContext(context.Background())
		os.Exit(cli.ExitCode(err, func(msg string) { fmt.Fprintln(os.Stderr, msg) }))
	}
	os.Exit(m.Run())
}

func secret(t *testing.T) string {
	t.Helper()
	s, err := keyformat.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// latchkey runs the CLI in process and returns stdout, stderr and the exit
// code.
func latchkey(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	root := cli.NewRoot()
	var out, errb bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(t.Context())
	code := cli.ExitCode(err, func(msg string) { errb.WriteString(msg + "\n") })
	return out.String(), errb.String(), code
}

func TestScanCommand(t *testing.T) {
	s := secret(t)
	dirty, clean := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dirty, "app.cfg"), []byte("key="+s+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(clean, "a.txt"), []byte("lksk_ nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	masked := keyformat.Mask(s)
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantOut    string // substring of stdout
		wantErr    string // substring of stderr
		wantNoText bool   // stdout must be empty
	}{
		{name: "clean", args: []string{"scan", clean}, wantCode: 0, wantNoText: true, wantErr: "0 findings"},
		{name: "found", args: []string{"scan", dirty}, wantCode: 1, wantOut: "app.cfg:1:5: latchkey secret access key " + masked, wantErr: "1 finding"},
		{name: "quiet", args: []string{"scan", "-q", dirty}, wantCode: 1, wantOut: masked},
		{name: "stdin", args: []string{"scan", "-"}, stdin: "x " + s, wantCode: 1, wantOut: "<stdin>:1:3:"},
		{name: "json", args: []string{"scan", "--format", "json", dirty}, wantCode: 1, wantOut: `"sha256"`},
		{name: "sarif", args: []string{"scan", "--format", "sarif", dirty}, wantCode: 1, wantOut: `"version": "2.1.0"`},
		{name: "sarif clean", args: []string{"scan", "--format=sarif", clean}, wantCode: 0, wantOut: `"results": []`},
		{name: "bad format", args: []string{"scan", "--format", "xml", clean}, wantCode: 2, wantErr: `--format "xml": want text, json or sarif`},
		{name: "unknown flag", args: []string{"scan", "--nope"}, wantCode: 2, wantErr: "unknown flag"},
		{name: "git and no-git", args: []string{"scan", "--git", "--no-git"}, wantCode: 2, wantErr: "exclude one another"},
		{name: "force alone", args: []string{"scan", "--force"}, wantCode: 2, wantErr: "--force applies only to --install-hook"},
		{name: "staged stdin", args: []string{"scan", "--staged", "-"}, wantCode: 2, wantErr: "standard input"},
		{name: "two hook repos", args: []string{"scan", "--install-hook", clean, dirty}, wantCode: 2, wantErr: "at most one"},
		{name: "missing path", args: []string{"scan", filepath.Join(clean, "nope")}, wantCode: 1, wantErr: "no such file"},
		{name: "git on a non-repo", args: []string{"scan", "--git", clean}, wantCode: 1, wantErr: "repository does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errs, code := latchkey(t, tt.stdin, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, out, errs)
			}
			if !strings.Contains(out, tt.wantOut) || tt.wantNoText && out != "" {
				t.Errorf("stdout %q, want it to contain %q", out, tt.wantOut)
			}
			if !strings.Contains(errs, tt.wantErr) {
				t.Errorf("stderr %q, want it to contain %q", errs, tt.wantErr)
			}
			if strings.Contains(out+errs, s) {
				t.Error("the whole secret was printed")
			}
			if code == 1 && tt.wantErr == "" && strings.Contains(errs, "latchkey:") {
				t.Errorf("findings exit printed an error: %q", errs)
			}
		})
	}
}

func TestScanCommandJSON(t *testing.T) {
	s := secret(t)
	out, _, code := latchkey(t, "id "+s, "scan", "--format", "json", "-")
	if code != 1 {
		t.Fatalf("exit code %d", code)
	}
	var got struct {
		Findings []struct {
			File, Secret, SHA256 string
			Line                 int
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	sum := keyformat.Sum(s)
	want := []struct {
		File, Secret, SHA256 string
		Line                 int
	}{{"-", keyformat.Mask(s), hex.EncodeToString(sum[:]), 1}}
	if d := cmp.Diff(want, got.Findings); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// requireGit skips a test that needs the git command where it is missing,
// and fails it in CI, which has it.
func requireGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("git is required in CI")
		}
		t.Skip("git not installed")
	}
}

// git runs git in dir with a configuration of its own (no user or system
// config, so no hooksPath or signing from the machine).
func git(t *testing.T, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Dev", "GIT_AUTHOR_EMAIL=dev@example.com",
		"GIT_COMMITTER_NAME=Dev", "GIT_COMMITTER_EMAIL=dev@example.com")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The pre-commit hook in a real repository with real `git commit`.
func TestPreCommitHook(t *testing.T) {
	requireGit(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	asCLI := []string{runAsLatchkey + "=1"}
	dir := t.TempDir()
	mustGit := func(args ...string) string {
		t.Helper()
		out, err := git(t, dir, asCLI, args...)
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	mustGit("init", "-q", "-b", "main")
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	install := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(exe, append([]string{"scan", "--install-hook"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), asCLI...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	if out, code := install(); code != 0 || !strings.Contains(out, "installed the latchkey pre-commit hook") {
		t.Fatalf("install: exit %d: %s", code, out)
	}
	hook := filepath.Join(dir, ".git", "hooks", "pre-commit")

	// A clean commit passes through the hook.
	write("README", "hello\n")
	mustGit("add", "README")
	mustGit("commit", "-q", "-m", "clean")

	// A staged secret is refused, with the way to bypass it.
	s := secret(t)
	write("config.env", "LATCHKEY_SECRET="+s+"\n")
	mustGit("add", "config.env")
	out, err := git(t, dir, asCLI, "commit", "-m", "add config")
	if err == nil {
		t.Fatalf("commit with a secret was accepted:\n%s", out)
	}
	for _, want := range []string{"config.env:1:17", keyformat.Mask(s), "commit refused", "git commit --no-verify"} {
		if !strings.Contains(out, want) {
			t.Errorf("hook output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, s) {
		t.Error("hook printed the whole secret")
	}
	if log := mustGit("log", "--oneline"); strings.Count(log, "\n") != 1 {
		t.Errorf("history changed:\n%s", log)
	}

	// --no-verify is the knowing bypass.
	mustGit("commit", "-q", "--no-verify", "-m", "add config knowingly")

	// The secret is now in HEAD: editing another line of the file does not
	// trip the hook again, a new secret does.
	write("config.env", "LATCHKEY_SECRET="+s+"\nOTHER=1\n")
	mustGit("commit", "-q", "-am", "edit config")
	write("config.env", "LATCHKEY_SECRET="+s+"\nOTHER="+secret(t)+"\n")
	if out, err := git(t, dir, asCLI, "commit", "-am", "second secret"); err == nil {
		t.Fatalf("second secret accepted:\n%s", out)
	}
	mustGit("reset", "-q", "--hard")

	// Installing again is a no-op; a foreign hook is kept unless --force.
	if out, code := install(); code != 0 {
		t.Fatalf("reinstall: exit %d: %s", code, out)
	}
	foreign := "#!/bin/sh\nexit 0\n"
	if err := os.WriteFile(hook, []byte(foreign), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, code := install(); code != 1 || !strings.Contains(out, "--force") {
		t.Fatalf("install over a foreign hook: exit %d: %s", code, out)
	}
	if b, _ := os.ReadFile(hook); string(b) != foreign {
		t.Fatal("foreign hook overwritten without --force")
	}
	if out, code := install("--force"); code != 0 {
		t.Fatalf("install --force: exit %d: %s", code, out)
	}
	if b, _ := os.ReadFile(hook + ".bak"); string(b) != foreign {
		t.Error("foreign hook not kept as pre-commit.bak")
	}
	if b, _ := os.ReadFile(hook); !strings.Contains(string(b), "latchkey pre-commit hook") {
		t.Error("hook not replaced with --force")
	}
}

// scan prints as many findings as its summary counts, also when a secret
// is both in a file and in the history that added it (reported once, at
// its commit).
func TestScanCountsWhatItPrints(t *testing.T) {
	requireGit(t)
	dir := t.TempDir()
	committed, onDisk := secret(t), secret(t)
	if err := os.WriteFile(filepath.Join(dir, "app.cfg"), []byte("key="+committed+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "app.cfg"}, {"commit", "-q", "-m", "config"}} {
		if out, err := git(t, dir, nil, args...); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte(onDisk+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := latchkey(t, "", "scan", dir)
	if code != 1 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	printed := strings.Count(out, "\n")
	if want := fmt.Sprintf(": %d findings", printed); printed != 2 || !strings.Contains(errs, want) {
		t.Errorf("printed %d findings, want 2; the summary should say %q:\nstdout:\n%s\nstderr:\n%s", printed, want, out, errs)
	}
}
