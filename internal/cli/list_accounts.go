package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newListAccountsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list-accounts",
		Short: "List accounts (all of them for operators, your own otherwise)",
		Long: `List accounts by name: every account for an operator, your own account
for anyone else.

JSON OUTPUT
  {"accounts": [{"name", "created_at"}, ...]}

EXAMPLES
  latchkey list-accounts`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			accs, err := cl.ListAccounts(cmd.Context())
			if err != nil {
				return err
			}
			if accs == nil {
				accs = []*latchkey.Account{}
			}
			return p.Print(p.accountsView(map[string]any{"accounts": accs}, accs...))
		}),
	}
}
