package cli

import (
	"github.com/spf13/cobra"
)

func (s *state) newPingWebhookCmd() *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "ping-webhook --webhook-id ID",
		Short: "Send a signed test event to a webhook and show what the receiver answered",
		Long: `Send a webhook.ping event to the webhook now, signed like every event, and
print the delivery: delivered with the receiver's status code, or pending
with the error and when it will be retried. A paused webhook is pinged too.

EXAMPLES
  latchkey ping-webhook --webhook-id wh_abcdefghijklmnop`,
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
			d, err := cl.PingWebhook(cmd.Context(), id)
			if err != nil {
				return err
			}
			return p.Print(p.deliveriesView(d, d))
		},
	}
	cmd.Flags().StringVar(&id, "webhook-id", "", "webhook to ping (required)")
	return cmd
}
