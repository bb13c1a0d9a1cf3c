package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newCreateAccountCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "create-account --account-name NAME",
		Short: "Create an account (a tenant); operators only",
		Long: `Create an account: a tenant with its own applications, keys and admins.
Single-tenant installations never need one: the "default" account exists.
Only operators may create accounts; give the tenant an admin with
create-principal --account NAME --role admin.

JSON OUTPUT
  {"name", "created_at"}

EXAMPLES
  latchkey create-account --account-name acme
  latchkey create-principal --account acme --principal-name alice --role admin --save-to-profile acme-alice`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			acc, err := cl.CreateAccount(cmd.Context(), name)
			if err != nil {
				return err
			}
			return p.Print(p.accountsView(acc, acc))
		}, need{"account-name", &name, "acme"}),
	}
	cmd.Flags().StringVar(&name, "account-name", "", "name of the new account (required)")
	return cmd
}

func (p *printer) accountsView(js any, accs ...*latchkey.Account) view {
	v := view{JSON: js, Headers: []string{"NAME", "AGE"}, Empty: "No accounts."}
	for _, a := range accs {
		v.Rows = append(v.Rows, []cell{c(a.Name), p.ageCell(a.CreatedAt)})
	}
	return v
}
