package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (s *state) newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the latchkey version",
		Long: `Print the version of this latchkey binary.

JSON OUTPUT
  {"version": "1.2.0"}

EXAMPLES
  latchkey version
  latchkey version --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if s.output == formatJSON || (s.output == "" && s.env.Getenv(EnvOutput) == formatJSON) {
				p, err := s.printer(cmd)
				if err != nil {
					return err
				}
				return p.JSON(map[string]string{"version": Version})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "latchkey %s\n", Version)
			return nil
		},
	}
}
