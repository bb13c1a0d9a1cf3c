package cli

import (
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newDeleteWebhookCmd() *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "delete-webhook --webhook-id ID",
		Short: "Delete a webhook and its delivery log",
		Long: `Delete a webhook. Deliveries still pending are dropped with its delivery
log. Prints nothing with --output json.

EXAMPLES
  latchkey delete-webhook --webhook-id wh_abcdefghijklmnop`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			if err := cl.DeleteWebhook(cmd.Context(), id); err != nil {
				return err
			}
			p.Infof("Deleted webhook %s.\n", id)
			return nil
		}, need{"webhook-id", &id, "wh_abcdefghijklmnop"}),
	}
	cmd.Flags().StringVar(&id, "webhook-id", "", "webhook to delete (required)")
	return cmd
}
