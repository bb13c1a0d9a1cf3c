package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newListIdentitiesCmd() *cobra.Command {
	var externalID string
	cmd := &cobra.Command{
		Use:   "list-identities [--external-id ID]",
		Short: "List the account's identities",
		Long: `List the account's identities, by ID; --external-id finds the one with your
own ID for the customer.

JSON OUTPUT
  {"identities": [{"id", "account", "name", "external_id", "metadata",
   "rate_limit", "created_at", "updated_at", "application_count"}, ...]}

EXAMPLES
  latchkey list-identities
  latchkey list-identities --external-id cus_42 --output json`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			if _, err := externalIDFlag(externalID); err != nil {
				return err
			}
			all := []*latchkey.Identity{}
			for id, err := range cl.Identities(cmd.Context(), client.ListIdentitiesInput{Account: s.account, ExternalID: externalID}) {
				if err != nil {
					return err
				}
				all = append(all, id)
			}
			return p.Print(p.identitiesView(map[string]any{"identities": all}, all...))
		}),
	}
	cmd.Flags().StringVar(&externalID, "external-id", "", "only the identity with this external ID")
	return cmd
}
