package cli

import (
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newDeleteIdentityCmd() *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "delete-identity --identity-id ID",
		Short: "Delete an identity that no application belongs to",
		Long: `Delete an identity and its quota. It is refused (Conflict) while applications
still belong to it: move them first with update-application --identity (another
identity's ID, or "" for none). Prints nothing with --output json.

EXAMPLES
  latchkey update-application --application-name shop --identity ""
  latchkey delete-identity --identity-id idn_abcdefghijklmnop`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			if err := cl.DeleteIdentity(cmd.Context(), s.account, id); err != nil {
				return err
			}
			p.Infof("Deleted identity %s.\n", id)
			return nil
		}, need{"identity-id", &id, "idn_abcdefghijklmnop"}),
	}
	cmd.Flags().StringVar(&id, "identity-id", "", "identity to delete (required)")
	return cmd
}
