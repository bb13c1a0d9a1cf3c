package cli

import (
	"fmt"
	"github.com/latchkey/latchkey/client"
	"strings"

	"github.com/latchkey/latchkey"
	"github.com/spf13/cobra"
)

func (s *state) newCreateWebhookCmd() *cobra.Command {
	var (
		url, description string
		events           []string
	)
	cmd := &cobra.Command{
		Use:   "create-webhook --url URL [--event TYPE ...]",
		Short: "Send the account's key events to a URL, signed",
		Long: `Register a receiver of the account's events. Each event is POSTed as JSON
{"type", "timestamp", "data"} and signed as the Standard Webhooks
specification describes: headers webhook-id (the same on every retry: use it
to ignore duplicates), webhook-timestamp and webhook-signature
("v1,<base64 HMAC-SHA256>"). A receiver that does not answer 2xx is retried
with exponential backoff for about a day; list-webhook-deliveries shows the
attempts.

The signing secret (whsec_...) is printed this once: give it to the receiver
now. latchkey keeps it to sign, but never shows it again.

Events (all when no --event is given): ` + strings.Join(latchkey.EventTypes(), ", ") + `.

The URL must be http or https, without user:password@ (the signature is the
credential). The server sends only to public addresses unless its operator
opened a range (latchkey serve --webhook-allow-cidr): a URL whose address, or
an address its host name resolves to, is loopback, private, link-local, cloud
metadata or otherwise reserved is refused with DestinationNotAllowed, and is
checked again on every delivery. Redirects are not followed.

JSON OUTPUT
  {"id", "account", "url", "description", "events", "enabled", "created_at",
   "updated_at", "secret"}

EXAMPLES
  latchkey create-webhook --url https://hooks.example.com/latchkey
  latchkey create-webhook --url https://ops.example.com/keys --event key.unused --event key.rotation_due`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			if err := latchkey.ValidateWebhookURL(url); err != nil {
				return UsageErrorf("--url: %s", errMessage(err))
			}
			if err := eventFlags(events); err != nil {
				return err
			}
			w, err := cl.CreateWebhook(cmd.Context(), s.account, latchkey.NewWebhook{URL: url, Description: description, Events: events})
			if err != nil {
				return err
			}
			if p.format == formatJSON {
				return p.JSON(w)
			}
			v := p.webhooksView(nil, &w.Webhook)
			v.Headers = append(v.Headers, "SECRET")
			v.Rows[0] = append(v.Rows[0], c(w.Secret))
			if err := p.Print(v); err != nil {
				return err
			}
			fmt.Fprintln(p.err, "latchkey: this is the only time the signing secret is shown: give it to the receiver now.")
			return nil
		}, need{"url", &url, "https://hooks.example.com/latchkey"}),
	}
	cmd.Flags().StringVar(&url, "url", "", "where to POST events (required)")
	cmd.Flags().StringVar(&description, "description", "", "what the receiver is, for people")
	cmd.Flags().StringArrayVar(&events, "event", nil, "an event type to send (repeatable; default all): "+latchkey.Choices(latchkey.EventTypes()))
	completeChoices(cmd, "event", latchkey.EventTypes())
	return cmd
}

// webhooksView is the table of webhooks.
func (p *printer) webhooksView(js any, hooks ...*latchkey.Webhook) view {
	v := view{JSON: js, Headers: []string{"WEBHOOK ID", "URL", "EVENTS", "ENABLED", "AGE", "DESCRIPTION"}, Empty: "No webhooks."}
	for _, w := range hooks {
		events := "all"
		if len(w.Events) > 0 {
			events = strings.Join(w.Events, ",")
		}
		enabled := cell{Text: "yes", Color: colorGreen}
		if !w.Enabled {
			enabled = cell{Text: "no", Color: colorYellow}
		}
		v.Rows = append(v.Rows, []cell{c(w.ID), c(w.URL), c(events), enabled, p.ageCell(w.CreatedAt), c(dash(w.Description))})
	}
	return v
}
