package cli

import (
	"github.com/latchkey/latchkey"
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
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := s.printer(cmd)
			if err != nil {
				return err
			}
			cl, err := s.client(cmd)
			if err != nil {
				return err
			}
			accs, err := cl.ListAccounts(cmd.Context())
			if err != nil {
				return err
			}
			if accs == nil {
				accs = []*latchkey.Account{}
			}
			return p.Print(p.accountsView(map[string]any{"accounts": accs}, accs...))
		},
	}
}
