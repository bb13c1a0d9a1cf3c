// Package cli holds latchkey's command-line interface: one file per
// subcommand, AWS IAM verbs for keys, and the conventions every command
// shares (global flags, the credential chain, output formats, exit codes).
//
// # Output
//
// --output json prints the API's own JSON, indented, on standard output:
// an object for a single thing (create-application prints the application),
// {"applications": [...]}, {"access_keys": [...]}, {"audit_events": [...]},
// {"principals": [...]} or {"accounts": [...]} for lists (every page,
// fetched for you). Field names are those of the management API and never
// change; new fields may appear. Commands that delete print nothing in JSON.
// --output text prints the same rows as the table, tab-separated, without a
// header, with times in RFC 3339, for awk and cut. --output table (the
// default on a terminal) is for people and may change.
//
// Human messages (warnings, prompts, the steps of rotate-access-key) go to
// standard error when the output is JSON, so standard output stays one
// parseable document.
package cli

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Version is set at build time with -ldflags "-X .../internal/cli.Version=..."
// (.ci/release does).
var Version = defaultVersion

const defaultVersion = "0.1.0-dev"

// Exit codes.
const (
	ExitOK     = 0
	ExitServer = 1 // the server (or the command) reported an error
	ExitUsage  = 2 // the command line is wrong
)

// UsageError is a mistake on the command line; it exits with ExitUsage.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

// UsageErrorf returns a UsageError. Messages name the flag and what it
// accepts.
func UsageErrorf(format string, args ...any) error {
	return &UsageError{msg: fmt.Sprintf(format, args...)}
}

// ExitCode prints err (if any) with print and returns the process exit code.
func ExitCode(err error, print func(string)) int {
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, errFindings) || errors.Is(err, errTampered) {
		return ExitServer // scan, audit verify: the findings are the message
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		print("latchkey: " + ue.msg)
		return ExitUsage
	}
	var le *latchkey.Error
	if errors.As(err, &le) {
		print(fmt.Sprintf("latchkey: %s: %s", le.Code, le.Message))
		return ExitServer
	}
	print("latchkey: " + err.Error())
	return ExitServer
}

// Env is the world the commands run in: environment variables, the clock,
// which files are terminals, and the HTTP client. NewRoot uses the
// process's; tests bring their own.
type Env struct {
	Getenv func(string) string
	// Now and After drive every wait (rotate-access-key's watch and
	// validation). Tests give a clock that moves on its own.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// IsTerminal reports whether a stream (cmd.InOrStdin(), OutOrStdout())
	// is an interactive terminal.
	IsTerminal func(any) bool
	HTTPClient *http.Client
}

// ProcessEnv is the environment of the running process.
func ProcessEnv() Env {
	return Env{
		Getenv:     os.Getenv,
		Now:        time.Now,
		After:      time.After,
		IsTerminal: isTerminal,
		HTTPClient: &http.Client{Timeout: 60 * time.Second},
	}
}

func isTerminal(f any) bool {
	if fd, ok := f.(interface{ Fd() uintptr }); ok {
		return term.IsTerminal(int(fd.Fd()))
	}
	return false
}

// NewRoot returns the root command with every client subcommand. The server
// commands (serve, migrate) are added by cmd/latchkey, which alone knows the
// stores.
func NewRoot() *cobra.Command { return NewRootEnv(ProcessEnv()) }

// NewRootEnv is NewRoot in the given environment.
func NewRootEnv(env Env) *cobra.Command {
	s := &state{env: env}
	root := &cobra.Command{
		Use:   "latchkey",
		Short: "API keys that are issued, verified, restricted and rotated safely",
		Long: `latchkey manages the API keys of your applications: create them, see when
they were last used, deactivate, delete, and rotate them in five checked steps.

The commands talk to a latchkey server (latchkey serve) with an admin access
key. Credentials come, first found wins, from the environment variables
LATCHKEY_ACCESS_KEY_ID and LATCHKEY_SECRET_ACCESS_KEY, or from a profile of
the credentials file ~/.latchkey/credentials (LATCHKEY_SHARED_CREDENTIALS_FILE),
which latchkey serve writes on its first start and latchkey configure edits.
No flag takes a secret: command lines end up in shell history.

Exit codes: 0 success, 1 an error reported by the server (code and message
are printed), 2 a mistake on the command line.

EXAMPLES
  latchkey create-application --application-name billing
  latchkey create-access-key --application-name billing --save-to-profile billing
  latchkey list-access-keys --application-name billing
  latchkey rotate-access-key --access-key-id LKIAEXAMPLEEXAMPLE23 --save-to-profile billing`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				msg := fmt.Sprintf("unknown command %q; run 'latchkey --help' to list the commands", args[0])
				if sug := cmd.SuggestionsFor(args[0]); len(sug) > 0 {
					msg += fmt.Sprintf(" (did you mean %s?)", sug[0])
				}
				return UsageErrorf("%s", msg)
			}
			return cmd.Help()
		},
	}
	root.SuggestionsMinimumDistance = 2
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return UsageErrorf("%v (see '%s --help')", err, cmd.CommandPath())
	})
	s.addGlobalFlags(root)
	root.AddGroup(
		&cobra.Group{ID: groupKeys, Title: "Access keys:"},
		&cobra.Group{ID: groupApps, Title: "Applications:"},
		&cobra.Group{ID: groupAdmin, Title: "Administration:"},
		&cobra.Group{ID: GroupServer, Title: "Server:"},
	)
	for _, c := range []*cobra.Command{
		s.newCreateAccessKeyCmd(), s.newListAccessKeysCmd(), s.newUpdateAccessKeyCmd(),
		s.newDeleteAccessKeyCmd(), s.newGetAccessKeyLastUsedCmd(), s.newUpdateQuotaCmd(), s.newGetQuotaCmd(), s.newRotateAccessKeyCmd(), s.newImportKeysCmd(),
	} {
		c.GroupID = groupKeys
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{
		s.newCreateApplicationCmd(), s.newListApplicationsCmd(), s.newUpdateApplicationCmd(), s.newDeleteApplicationCmd(),
		s.newCreateIdentityCmd(), s.newListIdentitiesCmd(), s.newGetIdentityCmd(), s.newUpdateIdentityCmd(), s.newDeleteIdentityCmd(),
	} {
		c.GroupID = groupApps
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{
		s.newConfigureCmd(), s.newListAuditEventsCmd(), s.newAuditCmd(),
		s.newCreatePrincipalCmd(), s.newListPrincipalsCmd(), s.newDeletePrincipalCmd(),
		s.newCreateAccountCmd(), s.newUpdateAccountCmd(), s.newListAccountsCmd(),
	} {
		c.GroupID = groupAdmin
		root.AddCommand(c)
	}
	root.AddGroup(&cobra.Group{ID: groupHygiene, Title: "Hygiene:"})
	for _, c := range []*cobra.Command{
		s.newGetCredentialReportCmd(), s.newGetKeyPolicyCmd(), s.newUpdateKeyPolicyCmd(),
		s.newCreateWebhookCmd(), s.newListWebhooksCmd(), s.newUpdateWebhookCmd(), s.newDeleteWebhookCmd(),
		s.newListWebhookDeliveriesCmd(), s.newPingWebhookCmd(),
	} {
		c.GroupID = groupHygiene
		root.AddCommand(c)
	}
	root.AddCommand(s.newVersionCmd())
	root.AddCommand(s.newScanCmd())
	root.AddCommand(s.newSignRequestCmd())
	return root
}

// GroupServer is the help group of the server commands that cmd/latchkey
// adds (serve, migrate).
const GroupServer = "server"

const (
	groupKeys  = "keys"
	groupApps  = "apps"
	groupAdmin = "admin"
	// groupHygiene holds the report, the policy and webhooks.
	groupHygiene = "hygiene"
)

// noArgs refuses positional arguments with a usage error that says where
// the value should go instead.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return UsageErrorf("%s takes no arguments, got %q; values are given with flags (see '%s --help')",
			cmd.CommandPath(), args[0], cmd.CommandPath())
	}
	return nil
}

// required returns a usage error naming flag when value is empty.
func required(flag, value, example string) error {
	if value == "" {
		return UsageErrorf("--%s is required, e.g. --%s %s", flag, flag, example)
	}
	return nil
}
