// Package cli holds latchkey's command-line interface: one file per
// subcommand, AWS IAM verbs for keys, and the conventions every command
// shares (global flags, the credential chain, output formats, exit codes).
package cli

import (
	"errors"
	"fmt"

	"github.com/latchkey/latchkey"
	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X .../internal/cli.Version=...".
var Version = "0.1.0-dev"

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
	if errors.Is(err, errFindings) {
		return ExitServer // scan: the findings are the message
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

// NewRoot returns the root command with every client subcommand. The server
// commands (serve, migrate) are added by cmd/latchkey, which alone knows the
// stores.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "latchkey",
		Short:         "API keys that are issued, verified, restricted and rotated safely",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return UsageErrorf("%v (see '%s --help')", err, cmd.CommandPath())
	})
	root.AddCommand(newVersionCmd())
	root.AddCommand(newScanCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the latchkey version",
		Long: `Print the latchkey version.

EXAMPLES
  latchkey version`,
		Args: cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "latchkey %s\n", Version)
		},
	}
}
