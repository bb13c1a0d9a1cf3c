package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newListWebhookDeliveriesCmd() *cobra.Command {
	var (
		id, status string
		maxItems   int
	)
	cmd := &cobra.Command{
		Use:   "list-webhook-deliveries --webhook-id ID [--status failed]",
		Short: "Show a webhook's delivery log: attempts, status codes, errors",
		Long: `Show a webhook's deliveries, newest first: the event, its status (pending:
waiting for its next attempt; delivered; failed: every attempt failed), how
many attempts were made, when the next one is due, and the receiver's last
HTTP status and error.

JSON OUTPUT
  {"deliveries": [{"id", "webhook_id", "event_id", "event_type", "status",
   "attempts", "next_attempt_at", "last_attempt_at", "response_code",
   "last_error", "created_at"}, ...]}

TEXT OUTPUT
  id  event_type  status  attempts  response_code  last_attempt_at  next_attempt_at  last_error

EXAMPLES
  latchkey list-webhook-deliveries --webhook-id wh_abcdefghijklmnop
  latchkey list-webhook-deliveries --webhook-id wh_abcdefghijklmnop --status failed -o json`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			if status != "" {
				if _, err := choice("status", status, latchkey.DeliveryStatuses()); err != nil {
					return err
				}
			}
			if maxItems < 0 {
				return UsageErrorf("--max-items %d: expected 0 (all) or more", maxItems)
			}
			all := []*latchkey.WebhookDelivery{}
			in := client.ListWebhookDeliveriesInput{WebhookID: id, Status: status}
			for {
				page, err := cl.ListWebhookDeliveries(cmd.Context(), in)
				if err != nil {
					return err
				}
				all = append(all, page.Deliveries...)
				if page.NextPageToken == "" || (maxItems > 0 && len(all) >= maxItems) {
					break
				}
				in.PageToken = page.NextPageToken
			}
			if maxItems > 0 && len(all) > maxItems {
				all = all[:maxItems]
			}
			return p.Print(p.deliveriesView(map[string]any{"deliveries": all}, all...))
		}, need{"webhook-id", &id, "wh_abcdefghijklmnop"}),
	}
	f := cmd.Flags()
	f.StringVar(&id, "webhook-id", "", "the webhook (required)")
	f.StringVar(&status, "status", "", "only deliveries with this status: "+latchkey.Choices(latchkey.DeliveryStatuses()))
	f.IntVar(&maxItems, "max-items", 0, "stop after this many deliveries (0: all)")
	completeChoices(cmd, "status", latchkey.DeliveryStatuses())
	return cmd
}

func (p *printer) deliveriesView(js any, ds ...*latchkey.WebhookDelivery) view {
	v := view{JSON: js, Headers: []string{"ID", "EVENT", "STATUS", "ATTEMPTS", "CODE", "LAST ATTEMPT", "NEXT ATTEMPT", "ERROR"}, Empty: "No deliveries."}
	for _, d := range ds {
		st := cell{Text: d.Status, Color: colorGreen}
		switch d.Status {
		case latchkey.DeliveryPending:
			st.Color = colorYellow
		case latchkey.DeliveryFailed:
			st.Color = colorRed
		}
		code := "-"
		if d.ResponseCode != 0 {
			code = itoa(d.ResponseCode)
		}
		next := cell{Text: "-"}
		if d.NextAttemptAt != nil {
			next = cell{Text: d.NextAttemptAt.UTC().Format("2006-01-02T15:04:05Z07:00"), Show: "in " + short(d.NextAttemptAt.Sub(p.now))}
			if !d.NextAttemptAt.After(p.now) {
				next.Show = "now"
			}
		}
		v.Rows = append(v.Rows, []cell{c(i64(d.ID)), c(d.EventType), st, c(itoa(d.Attempts)), c(code), p.timeCell(d.LastAttemptAt), next, c(dash(d.LastError))})
	}
	return v
}
