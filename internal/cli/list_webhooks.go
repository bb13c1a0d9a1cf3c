package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newListWebhooksCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list-webhooks",
		Short: "List the account's webhooks",
		Long: `List the account's webhooks, oldest first. Signing secrets are never shown
after create-webhook.

JSON OUTPUT
  {"webhooks": [{"id", "account", "url", "description", "events", "enabled",
   "created_at", "updated_at"}, ...]}

TEXT OUTPUT
  id  url  events ("all" or comma-separated)  enabled  created_at  description

EXAMPLES
  latchkey list-webhooks
  latchkey list-webhooks -o text | cut -f1`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			hooks, err := cl.ListWebhooks(cmd.Context(), s.account)
			if err != nil {
				return err
			}
			if hooks == nil {
				hooks = []*latchkey.Webhook{}
			}
			return p.Print(p.webhooksView(map[string]any{"webhooks": hooks}, hooks...))
		}),
	}
	return cmd
}
