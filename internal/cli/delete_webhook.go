package cli

import (
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
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := required("webhook-id", id, "wh_abcdefghijklmnop"); err != nil {
				return err
			}
			p, err := s.printer(cmd)
			if err != nil {
				return err
			}
			cl, err := s.client(cmd)
			if err != nil {
				return err
			}
			if err := cl.DeleteWebhook(cmd.Context(), id); err != nil {
				return err
			}
			p.Infof("Deleted webhook %s.\n", id)
			return nil
		},
	}
	cmd.Flags().StringVar(&id, "webhook-id", "", "webhook to delete (required)")
	return cmd
}
