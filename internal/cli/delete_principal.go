package cli

import (
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newDeletePrincipalCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "delete-principal --principal-name NAME",
		Short: "Delete an admin principal and its access keys",
		Long: `Delete an admin principal and, with it, every access key it owns: it can no
longer sign in. A principal cannot delete itself. Prints nothing with
--output json.

EXAMPLES
  latchkey delete-principal --principal-name ci`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			if err := cl.DeletePrincipal(cmd.Context(), s.account, name); err != nil {
				return err
			}
			p.Infof("Deleted principal %q and its access keys.\n", name)
			return nil
		}, need{"principal-name", &name, "ci"}),
	}
	cmd.Flags().StringVar(&name, "principal-name", "", "principal to delete (required)")
	return cmd
}
