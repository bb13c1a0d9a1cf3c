package cli_test

import (
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/cli"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Every command's help ends with EXAMPLES, and every flag has a usage line.
func TestHelpHasExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			t.Run(sub.CommandPath(), func(t *testing.T) {
				if !strings.Contains(sub.Long, "\nEXAMPLES\n  ") {
					t.Errorf("help has no EXAMPLES section")
				}
				sub.LocalFlags().VisitAll(func(f *pflag.Flag) {
					if f.Usage == "" {
						t.Errorf("flag --%s has no usage", f.Name)
					}
				})
			})
			walk(sub)
		}
	}
	walk(cli.NewRoot())
}
