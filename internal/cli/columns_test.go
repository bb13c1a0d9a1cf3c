package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/cli"
	"github.com/latchkey/latchkey/internal/cli/clitest"
	"github.com/spf13/cobra"
)

// runAs runs latchkey in-process with the given environment and returns
// its standard output, standard error and exit code. With tty, standard
// output and standard error are terminals (standard input never is).
func runAs(t *testing.T, env map[string]string, tty bool, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	root := cli.NewRootEnv(cli.Env{
		Getenv:     func(k string) string { return env[k] },
		Now:        time.Now,
		After:      time.After,
		IsTerminal: func(f any) bool { return tty && (f == &stdout || f == &stderr) },
		HTTPClient: &http.Client{},
	})
	root.SetArgs(args)
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetIn(strings.NewReader(""))
	code := cli.ExitCode(root.ExecuteContext(t.Context()), func(msg string) { fmt.Fprintln(&stderr, msg) })
	return stdout.String(), stderr.String(), code
}

// helpColumns returns the column names a command's help gives under TEXT
// OUTPUT, without the notes in parentheses; nil when it has no such section.
func helpColumns(cmd *cobra.Command) []string {
	_, after, ok := strings.Cut(cmd.Long, "\nTEXT OUTPUT\n")
	if !ok {
		return nil
	}
	section, _, _ := strings.Cut(after, "\n\n")
	notes := regexp.MustCompile(`\([^()]*\)`)
	for notes.MatchString(section) { // innermost first: notes may nest
		section = notes.ReplaceAllString(section, "")
	}
	return strings.Fields(section)
}

// Every command whose help has a TEXT OUTPUT section prints, with
// --output text, exactly the columns the help names: as many fields on
// every line.
func TestTextOutputColumnsInHelp(t *testing.T) {
	srv := clitest.Start(t)
	env := map[string]string{
		cli.EnvEndpointURL: srv.URL, cli.EnvAccessKeyID: srv.Admin.AccessKeyID, cli.EnvSecretAccessKey: srv.Admin.SecretAccessKey,
		"HOME": t.TempDir(),
	}
	must := func(args ...string) string {
		t.Helper()
		out, errs, code := runAs(t, env, false, args...)
		if code != 0 {
			t.Fatalf("latchkey %s: exit %d\n%s", strings.Join(args, " "), code, errs)
		}
		return out
	}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(receiver.Close)

	// Something to list in every column: a restricted key with a
	// description, an audit trail, a webhook with a delivery.
	must("create-application", "--application-name", "billing")
	var key struct {
		ID string `json:"access_key_id"`
	}
	if err := json.Unmarshal([]byte(must("create-access-key", "--application-name", "billing", "--description", "first key", "-o", "json")), &key); err != nil {
		t.Fatal(err)
	}
	must("update-access-key", "--access-key-id", key.ID, "--allowed-ips", "192.0.2.0/24")
	var hook struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(must("create-webhook", "--url", receiver.URL+"/hook", "--description", "test receiver", "-o", "json")), &hook); err != nil {
		t.Fatal(err)
	}
	must("ping-webhook", "--webhook-id", hook.ID)

	args := map[string][]string{
		"list-access-keys":         {"--application-name", "billing"},
		"get-access-key-last-used": {"--access-key-id", key.ID},
		"get-credential-report":    nil,
		"get-key-policy":           nil,
		"list-audit-events":        nil,
		"list-webhooks":            nil,
		"list-webhook-deliveries":  {"--webhook-id", hook.ID},
	}
	for _, cmd := range cli.NewRoot().Commands() {
		cols := helpColumns(cmd)
		if cols == nil {
			continue
		}
		t.Run(cmd.Name(), func(t *testing.T) {
			a, ok := args[cmd.Name()]
			if !ok {
				t.Fatalf("%s has a TEXT OUTPUT section: give this test the arguments to run it with", cmd.Name())
			}
			out := must(append(append([]string{cmd.Name()}, a...), "-o", "text")...)
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if out == "" {
				t.Fatalf("printed nothing to compare with its help")
			}
			for _, l := range lines {
				if n := strings.Count(l, "\t") + 1; n != len(cols) {
					t.Errorf("prints %d columns, its help names %d (%s):\n%s", n, len(cols), strings.Join(cols, " "), l)
				}
			}
		})
	}
}
