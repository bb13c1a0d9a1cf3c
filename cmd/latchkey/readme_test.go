package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const readmePath = "../../README.md"

// requireTool returns the path of a command the README's shell examples
// use, or skips the test when it is missing; with CI set a missing command
// fails the test, since .ci/run installs it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing (CI is set; .ci/run installs the Debian package %s)", name, name)
		}
		t.Skipf("%s is missing: apt-get install %s", name, name)
	}
	return p
}

// markdownSection returns the lines of the section under heading (a whole
// heading line, such as "## Quick start") up to the next heading of the
// same or a higher level.
func markdownSection(t *testing.T, doc, heading string) []string {
	t.Helper()
	level := strings.Index(heading, " ")
	var out []string
	in, fence := false, false
	for _, l := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fence = !fence
		}
		if !fence && strings.HasPrefix(l, "#") {
			if l == heading {
				in = true
				continue
			}
			if n := strings.Index(l, " "); in && n > 0 && n <= level && strings.Trim(l[:n], "#") == "" {
				break
			}
		}
		if in {
			out = append(out, l)
		}
	}
	if !in {
		t.Fatalf("%s has no section %q", readmePath, heading)
	}
	return out
}

// codeBlocks returns the fenced blocks of lines whose info string is lang
// ("" for a fence with none), without the fence's indentation.
func codeBlocks(lines []string, lang string) [][]string {
	var (
		out        [][]string
		cur        []string
		open, keep bool
		indent     string
	)
	for _, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case !open && strings.HasPrefix(t, "```"):
			open, keep, cur = true, strings.TrimPrefix(t, "```") == lang, nil
			indent = l[:len(l)-len(strings.TrimLeft(l, " "))]
		case open && t == "```":
			if keep {
				out = append(out, cur)
			}
			open = false
		case open && keep:
			cur = append(cur, strings.TrimPrefix(l, indent))
		}
	}
	return out
}

// shellStep is one command of a README block, with the output the README
// shows for it (the "# ..." lines that follow it).
type shellStep struct {
	command string
	want    []string
}

// shellSteps splits blocks into commands (joining lines continued with a
// backslash) and the output each is shown with.
func shellSteps(blocks [][]string) []shellStep {
	var steps []shellStep
	for _, b := range blocks {
		for i := 0; i < len(b); i++ {
			l := b[i]
			switch {
			case strings.TrimSpace(l) == "":
			case strings.HasPrefix(l, "# "):
				if len(steps) > 0 {
					steps[len(steps)-1].want = append(steps[len(steps)-1].want, strings.TrimPrefix(l, "# "))
				}
			default:
				cmd := l
				for strings.HasSuffix(cmd, "\\") && i+1 < len(b) {
					i++
					cmd = strings.TrimSuffix(cmd, "\\") + "\n" + b[i]
				}
				steps = append(steps, shellStep{command: cmd})
			}
		}
	}
	return steps
}

// shownOutput turns an output line as the README shows it into a regular
// expression: "..." stands for anything.
func shownOutput(s string) *regexp.Regexp {
	parts := strings.Split(s, "...")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
}

// TestReadmeWalkthrough runs the README's walk-through with curl as a
// reader pastes it: every shell block of the section, in one bash, in a
// directory holding the latchkey binary (the walk-through calls
// ./latchkey), against a server started as the quick start starts it (on
// another port: the README's address is replaced by the server's). Each
// command's output must match what the README shows under it ("..." for
// anything), and no other command may answer an error.
//
// It runs on a fresh server, and again once a second profile exists in the
// credentials file, as the README's own CLI flows add one
// (--save-to-profile): the walk-through must pick the operator's secret
// whatever else the file holds.
func TestReadmeWalkthrough(t *testing.T) {
	bash := requireTool(t, "bash")
	requireTool(t, "curl")
	requireTool(t, "jq")
	doc, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	steps := shellSteps(codeBlocks(markdownSection(t, string(doc), "## Walk-through with curl (five minutes)"), "sh"))
	if len(steps) < 10 {
		t.Fatalf("the walk-through has %d commands; the section was not found whole", len(steps))
	}
	tests := []struct {
		name    string
		prepare [][]string // latchkey commands run before the walk-through
	}{
		{"fresh server", nil},
		{"second profile in the credentials file", [][]string{
			// the README's CLI section adds this profile to ~/.latchkey/credentials
			{"create-principal", "--principal-name", "gateway", "--role", "verifier", "--save-to-profile", "gateway"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			srv := startServer(t, home)
			work := t.TempDir()
			if err := os.Symlink(binPath, filepath.Join(work, "latchkey")); err != nil {
				t.Fatal(err)
			}
			env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8", goraceEnv()}
			for _, args := range tt.prepare {
				cmd := exec.Command(binPath, args...)
				cmd.Dir, cmd.Env = work, env
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("latchkey %s: %v\n%s", strings.Join(args, " "), err, out)
				}
			}

			// One marker line before each command splits the output.
			var script strings.Builder
			for i, s := range steps {
				fmt.Fprintf(&script, "printf '\\n@@step %d\\n'\n%s\n", i, strings.ReplaceAll(s.command, "http://127.0.0.1:8080", srv.endpoint))
			}
			cmd := exec.Command(bash, "--noprofile", "--norc", "-c", script.String())
			cmd.Dir, cmd.Env = work, env
			out, _ := cmd.CombinedOutput()
			outputs := strings.Split(string(out), "\n@@step ")
			if len(outputs) != len(steps)+1 {
				t.Fatalf("the walk-through stopped: %d of %d commands ran; output:\n%s", len(outputs)-1, len(steps), out)
			}
			for i, s := range steps {
				got := strings.TrimSpace(strings.TrimPrefix(outputs[i+1], fmt.Sprint(i)))
				var lines []string
				if got != "" {
					lines = strings.Split(got, "\n")
				}
				switch {
				case len(s.want) > 0:
					ok := len(lines) == len(s.want)
					for j := 0; ok && j < len(lines); j++ {
						ok = shownOutput(s.want[j]).MatchString(lines[j])
					}
					if !ok {
						t.Errorf("%s\nprinted:\n  %s\nthe README shows:\n  %s", s.command, strings.Join(lines, "\n  "), strings.Join(s.want, "\n  "))
					}
				case strings.Contains(got, `"error"`) || !allJSON(lines):
					t.Errorf("%s\nprinted what the README does not show:\n  %s", s.command, strings.Join(lines, "\n  "))
				}
			}
		})
	}
}

// allJSON reports whether every line is a JSON object or array, as the
// API's answers are (a plain-text line is an error from curl or Go's HTTP
// server).
func allJSON(lines []string) bool {
	for _, l := range lines {
		if !strings.HasPrefix(l, "{") && !strings.HasPrefix(l, "[") {
			return false
		}
	}
	return true
}

// TestReadmeServeOutput checks that the quick start shows everything serve
// prints on a first start, line by line: standard output, and the log
// lines on standard error, up to the shutdown. The README's key ID, home
// directory, address and times stand for any.
func TestReadmeServeOutput(t *testing.T) {
	doc, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	blocks := codeBlocks(markdownSection(t, string(doc), "## Quick start"), "")
	if len(blocks) != 1 {
		t.Fatalf("the quick start has %d output blocks, want 1 (serve's output)", len(blocks))
	}
	home := t.TempDir()
	srv := startServer(t, home, "--log-level", "info")
	srv.stop()
	addr := strings.TrimPrefix(srv.endpoint, "http://")
	var stderr []string
	for _, l := range strings.Split(strings.TrimSpace(srv.stderr.String()), "\n") {
		if strings.Contains(l, `msg="shutting down`) || strings.Contains(l, "msg=stopped") {
			continue
		}
		stderr = append(stderr, l)
	}
	stdout := strings.Split(strings.TrimSpace(srv.stdout.String()), "\n")
	var wantOut, wantErr []string
	for _, l := range blocks[0] {
		if strings.HasPrefix(l, "time=") {
			wantErr = append(wantErr, l)
		} else {
			wantOut = append(wantOut, l)
		}
	}
	shown := strings.NewReplacer(`/home/you`, regexp.QuoteMeta(home), `127\.0\.0\.1:8080`, regexp.QuoteMeta(addr))
	pattern := func(l string) *regexp.Regexp {
		q := shown.Replace(regexp.QuoteMeta(l))
		q = regexp.MustCompile(`LKIA[A-Z2-7]{16}`).ReplaceAllString(q, `LKIA[A-Z2-7]{16}`)
		q = regexp.MustCompile(`(time|duration)=\S+`).ReplaceAllString(q, `$1=\S+`)
		return regexp.MustCompile("^" + q + "$")
	}
	for _, c := range []struct {
		stream    string
		got, want []string
	}{{"standard output", stdout, wantOut}, {"standard error", stderr, wantErr}} {
		ok := len(c.got) == len(c.want)
		for i := 0; ok && i < len(c.got); i++ {
			ok = pattern(c.want[i]).MatchString(c.got[i])
		}
		if !ok {
			t.Errorf("serve's %s:\n  %s\nthe README shows:\n  %s", c.stream, strings.Join(c.got, "\n  "), strings.Join(c.want, "\n  "))
		}
	}
}

// The quick start stays two commands: one that starts the server, one that
// runs the tests.
func TestReadmeQuickStartIsTwoCommands(t *testing.T) {
	doc, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	steps := shellSteps(codeBlocks(markdownSection(t, string(doc), "## Quick start"), "sh"))
	if len(steps) != 2 || !strings.Contains(steps[0].command, " serve") || !strings.Contains(steps[1].command, "go test") {
		var cmds []string
		for _, s := range steps {
			cmds = append(cmds, s.command)
		}
		t.Errorf("the quick start has these commands, want one that starts the server and one that runs the tests:\n%s", strings.Join(cmds, "\n"))
	}
}
