package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newUpdateWebhookCmd() *cobra.Command {
	var (
		id, url, description string
		events               []string
		allEvents, enabled   bool
	)
	cmd := &cobra.Command{
		Use:   "update-webhook --webhook-id ID [--url URL] [--event TYPE ...] [--enabled=false]",
		Short: "Change a webhook's URL, events, description, or pause it",
		Long: `Change a webhook. Flags not given are left alone. --enabled=false pauses
deliveries (events are not queued for it while paused); --all-events
subscribes it to every event again.

EXAMPLES
  latchkey update-webhook --webhook-id wh_abcdefghijklmnop --enabled=false
  latchkey update-webhook --webhook-id wh_abcdefghijklmnop --event key.unused --event key.expiring`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			var u latchkey.WebhookUpdate
			fl := cmd.Flags()
			if fl.Changed("url") {
				if err := latchkey.ValidateWebhookURL(url); err != nil {
					return UsageErrorf("--url: %s", errMessage(err))
				}
				u.URL = &url
			}
			if fl.Changed("description") {
				u.Description = &description
			}
			if fl.Changed("event") && allEvents {
				return UsageErrorf("give --event or --all-events, not both")
			}
			if fl.Changed("event") {
				if err := eventFlags(events); err != nil {
					return err
				}
				u.Events = &events
			}
			if allEvents {
				none := []string{}
				u.Events = &none
			}
			if fl.Changed("enabled") {
				u.Enabled = &enabled
			}
			if u == (latchkey.WebhookUpdate{}) {
				return UsageErrorf("name something to change: --url, --description, --event, --all-events or --enabled")
			}
			w, err := cl.UpdateWebhook(cmd.Context(), id, u)
			if err != nil {
				return err
			}
			return p.Print(p.webhooksView(w, w))
		}, need{"webhook-id", &id, "wh_abcdefghijklmnop"}),
	}
	f := cmd.Flags()
	f.StringVar(&id, "webhook-id", "", "webhook to change (required)")
	f.StringVar(&url, "url", "", "new receiver URL")
	f.StringVar(&description, "description", "", "new description")
	f.StringArrayVar(&events, "event", nil, "an event type to send (repeatable; replaces the list): "+latchkey.Choices(latchkey.EventTypes()))
	f.BoolVar(&allEvents, "all-events", false, "send every event type")
	completeChoices(cmd, "event", latchkey.EventTypes())
	f.BoolVar(&enabled, "enabled", true, "deliver events (false pauses the webhook)")
	return cmd
}
