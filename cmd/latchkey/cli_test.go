package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/cli"
)

// TestServeThenCLI starts the real server on 127.0.0.1:0 with an empty
// database, as a new user does, and drives it with the CLI through the
// profile serve wrote: its endpoint_url and first operator key.
func TestServeThenCLI(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	ctx, stop := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	// every flag's default, as `latchkey serve` starts, then this test's
	o := serveOptions{}
	if err := newServeCmdFor(&o).Flags().Parse([]string{
		"--addr", "127.0.0.1:0", "--database-url", "sqlite:" + filepath.Join(dir, "latchkey.db"),
		"--credentials-file", creds, "--bootstrap-profile", "default", "--log-level", "error", "--log-format", "text",
		"--max-keys-per-application", "2", "--usage-flush-interval", "1s", "--shutdown-timeout", "5s",
	}); err != nil {
		t.Fatal(err)
	}
	go func() {
		done <- runServe(ctx, o, pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	var endpoint string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if m := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			endpoint = m[1]
			break
		}
	}
	if endpoint == "" {
		t.Fatal("serve did not say where it listens")
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	env := map[string]string{cli.EnvCredentialsFile: creds}
	run := func(args ...string) (string, int) {
		t.Helper()
		root := addServerCmds(cli.NewRootEnv(cli.Env{
			Getenv: func(k string) string { return env[k] }, Now: time.Now, After: time.After,
			IsTerminal: func(any) bool { return false }, HTTPClient: &http.Client{Timeout: 10 * time.Second},
		}))
		var out bytes.Buffer
		root.SetArgs(args)
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetIn(strings.NewReader(""))
		code := cli.ExitCode(root.ExecuteContext(t.Context()), func(s string) { out.WriteString(s + "\n") })
		return out.String(), code
	}

	if out, code := run("configure", "list"); code != 0 || !strings.Contains(out, "endpoint_url\t"+endpoint+"\tprofile \"default\"") {
		t.Fatalf("configure list (exit %d):\n%s", code, out)
	}
	if out, code := run("create-application", "--application-name", "billing"); code != 0 {
		t.Fatalf("create-application (exit %d):\n%s", code, out)
	}
	if out, code := run("list-access-keys", "--kind", "principal"); code != 0 || !strings.Contains(out, "principal:admin\tActive") {
		t.Fatalf("list-access-keys (exit %d):\n%s", code, out)
	}
	if out, code := run("serve", "--addr", "nonsense:port:x", "--database-url", "sqlite:"+filepath.Join(dir, "other.db"), "--credentials-file", filepath.Join(dir, "other")); code != 1 || !strings.Contains(out, "--addr") {
		t.Errorf("serve on a bad address (exit %d):\n%s", code, out)
	}
	if out, code := run("serve", "--log-level", "loud"); code != 2 {
		t.Errorf("serve --log-level loud (exit %d):\n%s", code, out)
	}
	if out, code := run("migrate", "--database-url", "sqlite:"+filepath.Join(dir, "latchkey.db")); code != 0 || !strings.Contains(out, "is up to date") {
		t.Errorf("migrate (exit %d):\n%s", code, out)
	}
	if out, code := run("--help"); code != 0 || !regexp.MustCompile(`Server:\n  backup .*\n  migrate .*\n  restore .*\n  serve `).MatchString(out) {
		t.Errorf("help does not group the server commands:\n%s", out)
	}
}
