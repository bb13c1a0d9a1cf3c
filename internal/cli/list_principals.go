package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newListPrincipalsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list-principals",
		Short: "List the admin principals of an account",
		Long: `List the admin principals of your account (or of --account, for operators)
by name, with their roles. list-access-keys --principal-name NAME shows a
principal's keys.

JSON OUTPUT
  {"principals": [{"account", "name", "role", "created_at"}, ...]}

EXAMPLES
  latchkey list-principals
  latchkey list-principals --account acme --output json`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			ps, err := cl.ListPrincipals(cmd.Context(), s.account)
			if err != nil {
				return err
			}
			if ps == nil {
				ps = []*latchkey.Principal{}
			}
			return p.Print(p.principalsView(map[string]any{"principals": ps}, ps...))
		}),
	}
}
