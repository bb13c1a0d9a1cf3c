package cli

import (
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newGetIdentityCmd() *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "get-identity --identity-id ID",
		Short: "Show an identity: its external ID, metadata, shared rate limit and quota",
		Long: `Show an identity with how many applications belong to it and what its shared
quota has left. get-quota --identity-id shows the quota's history.

JSON OUTPUT
  {"id", "account", "name", "external_id", "metadata", "rate_limit", "quota",
   "created_at", "updated_at", "application_count"}

EXAMPLES
  latchkey get-identity --identity-id idn_abcdefghijklmnop
  latchkey get-identity --identity-id idn_abcdefghijklmnop --output json`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			ident, err := cl.GetIdentity(cmd.Context(), s.account, id)
			if err != nil {
				return err
			}
			return p.Print(p.identitiesView(ident, ident))
		}, need{"identity-id", &id, "idn_abcdefghijklmnop"}),
	}
	cmd.Flags().StringVar(&id, "identity-id", "", "identity to show (required)")
	return cmd
}
