package cli

import (
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

// need is a flag a command cannot run without: its name, where its value
// is stored, and an example value for the message that asks for it.
type need struct {
	flag    string
	value   *string
	example string
}

// apiRun is what a command that calls the management API does: its call
// and its output. It is given the command (for its context and flags),
// the printer of the chosen --output, and a client of the configured
// server with the configured credentials.
type apiRun func(cmd *cobra.Command, p *printer, cl *client.Client) error

// api is the skeleton every command that calls the management API shares,
// as its RunE: it refuses a missing required flag (naming it, with an
// example), a bad --output and missing credentials, in that order, before
// run does anything; run checks the values of its other flags before its
// first call. A new command is then its flags, its call and its output.
func (s *state) api(run apiRun, needs ...need) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		for _, n := range needs {
			if err := required(n.flag, *n.value, n.example); err != nil {
				return err
			}
		}
		p, err := s.printer(cmd)
		if err != nil {
			return err
		}
		cl, err := s.client(cmd)
		if err != nil {
			return err
		}
		return run(cmd, p, cl)
	}
}
