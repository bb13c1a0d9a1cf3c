package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/cli"
	"github.com/latchkey/latchkey/internal/cli/clitest"
	"github.com/latchkey/latchkey/internal/credfile"
	"github.com/latchkey/latchkey/keyformat"
	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain makes the test binary also the latchkey binary, so that the
// scripts run the real command line in a process of its own.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"latchkey": func() {
			err := cli.NewRoot().ExecuteContext(context.Background())
			os.Exit(cli.ExitCode(err, func(msg string) { fmt.Fprintln(os.Stderr, msg) }))
		},
	})
}

// TestScripts runs testdata/script/*.txtar, each against a server of its
// own started on 127.0.0.1:0. The first operator's key is in profile
// "default" of $HOME/.latchkey/credentials, with the server's endpoint_url,
// as latchkey serve leaves it on first start. Keys are made at run time:
// the scripts hold no secret, and capture one into a variable when needed.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup:               setupScript,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"capture":  cmdCapture, // new-secret FILE writes a well-formed secret no key has
			"use-key":  cmdUseKey,
			"filemode": cmdFileMode,
			// write FILE LINE... writes the lines (variables expanded).
			"write": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) < 1 {
					ts.Fatalf("usage: write FILE LINE...")
				}
				ts.Check(os.MkdirAll(filepath.Dir(ts.MkAbs(args[0])), 0o755))
				ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(strings.Join(args[1:], "\n")+"\n"), 0o600))
			},
			"git-commit": cmdGitCommit,
			// new-secret-env VAR sets VAR to a well-formed secret no key has.
			"new-secret-env": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: new-secret-env VAR")
				}
				sec, err := keyformat.NewSecret()
				ts.Check(err)
				ts.Setenv(args[0], sec)
			},
			"new-secret": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: new-secret FILE")
				}
				sec, err := keyformat.NewSecret()
				ts.Check(err)
				ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(sec+"\n"), 0o600))
			},
		},
	})
}

type scriptTB struct{ e *testscript.Env }

func (s scriptTB) Helper()                           {}
func (s scriptTB) Fatalf(format string, args ...any) { s.e.T().Fatal(fmt.Sprintf(format, args...)) }
func (s scriptTB) Cleanup(f func())                  { s.e.Defer(f) }
func (s scriptTB) TempDir() string {
	d, err := os.MkdirTemp(s.e.WorkDir, ".server-")
	if err != nil {
		s.e.T().Fatal(err)
	}
	return d
}

func setupScript(e *testscript.Env) error {
	tb := scriptTB{e}
	srv := clitest.Start(tb)
	home := filepath.Join(e.WorkDir, "home")
	creds := filepath.Join(home, ".latchkey", "credentials")
	if _, err := credfile.SaveProfile(creds, "default", credfile.Profile{
		credfile.KeyAccessKeyID:     srv.Admin.AccessKeyID,
		credfile.KeySecretAccessKey: srv.Admin.SecretAccessKey,
		credfile.KeyEndpointURL:     srv.URL,
	}); err != nil {
		return err
	}
	e.Setenv("HOME", home)
	e.Setenv("ENDPOINT", srv.URL)
	e.Setenv("ADMIN_ID", srv.Admin.AccessKeyID)
	e.Values["gateway"] = srv.Client(tb, srv.Verifier(tb, "gateway"))
	return nil
}

// capture VAR PATH sets VAR to the value at PATH (dot-separated keys and
// list indexes) of the JSON document on the last command's stdout.
func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: capture VAR PATH")
	}
	var v any
	ts.Check(json.Unmarshal([]byte(ts.ReadFile("stdout")), &v))
	for _, part := range strings.Split(args[1], ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[part]
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i >= len(x) {
				ts.Fatalf("capture: %q is not an index of a list of %d", part, len(x))
			}
			v = x[i]
		default:
			ts.Fatalf("capture: nothing at %s", args[1])
		}
	}
	s, ok := v.(string)
	if !ok {
		ts.Fatalf("capture: %s is %v, not a string", args[1], v)
	}
	ts.Setenv(args[0], s)
}

// use-key SECRET [IP [USER-AGENT]] calls the protected API with an
// application key: a gateway principal asks latchkey to verify it, as a
// real API would. With !, the key must be refused.
func cmdUseKey(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || len(args) > 3 {
		ts.Fatalf("usage: use-key SECRET [IP [USER-AGENT]]")
	}
	in := client.VerifyInput{Key: args[0], IP: "192.0.2.1", UserAgent: "script/1.0"}
	if len(args) > 1 {
		in.IP = args[1]
	}
	if len(args) > 2 {
		in.UserAgent = args[2]
	}
	gw := ts.Value("gateway").(*client.Client)
	res, err := gw.Verify(context.Background(), in)
	ts.Check(err)
	if res.Valid == neg {
		ts.Fatalf("use-key: valid=%v code=%s", res.Valid, res.Code)
	}
	ts.Logf("use-key: %s", res.Code)
}

// git-commit DIR MESSAGE commits every change in the work tree at DIR
// (made a repository first if it is not one) with go-git: added, changed
// and removed files alike.
func cmdGitCommit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: git-commit DIR MESSAGE")
	}
	dir := ts.MkAbs(args[0])
	r, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		r, err = git.PlainInit(dir, false)
	}
	ts.Check(err)
	wt, err := r.Worktree()
	ts.Check(err)
	ts.Check(wt.AddWithOptions(&git.AddOptions{All: true}))
	sig := &object.Signature{Name: "Ops", Email: "ops@example.test", When: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	_, err = wt.Commit(args[1], &git.CommitOptions{Author: sig, Committer: sig})
	ts.Check(err)
}

// filemode PATH PERM checks a file's permission bits.
func cmdFileMode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: filemode PATH PERM")
	}
	st, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	if got := st.Mode().Perm(); uint64(got) != want {
		ts.Fatalf("%s has mode %04o, want %04o", args[0], got, want)
	}
}
