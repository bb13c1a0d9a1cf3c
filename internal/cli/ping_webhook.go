package cli

import (
	"github.com/latchkey/latchkey/client"
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
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			d, err := cl.PingWebhook(cmd.Context(), id)
			if err != nil {
				return err
			}
			return p.Print(p.deliveriesView(d, d))
		}, need{"webhook-id", &id, "wh_abcdefghijklmnop"}),
	}
	cmd.Flags().StringVar(&id, "webhook-id", "", "webhook to ping (required)")
	return cmd
}
