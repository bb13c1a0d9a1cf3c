package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newListAuditEventsCmd() *cobra.Command {
	var (
		in           client.ListAuditEventsInput
		since, until string
		maxItems     int
	)
	cmd := &cobra.Command{
		Use:   "list-audit-events [filters]",
		Short: "List who changed what, when and from where (newest first)",
		Long: `List audit events, newest first: every change to accounts, applications,
access keys and principals, with the actor, the time, the source IP and the
object before and after (never a secret). Filters combine.

--since and --until take an RFC 3339 time (2026-11-02T15:04:05Z) or a
duration back from now (90m, 24h, 7d).

JSON OUTPUT
  {"audit_events": [{"id", "time", "account", "actor", "actor_access_key_id",
    "source_ip", "user_agent", "action", "target_type", "target",
    "application", "before", "after", "seq", "prev_hash", "hash"}, ...]}
  (seq, prev_hash and hash link the event into its account's audit chain:
  see latchkey audit verify)

TEXT OUTPUT
  time  actor  action  target  application  source_ip  change

EXAMPLES
  latchkey list-audit-events --application-name billing
  latchkey list-audit-events --access-key-id LKIAEXAMPLEEXAMPLE23 --since 7d
  latchkey list-audit-events --action access_key.delete --max-items 0 --output json`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			now := s.env.Now()
			var err error
			if in.Action != "" {
				if _, err = choice("action", in.Action, latchkey.AuditActions()); err != nil {
					return err
				}
			}
			if in.Since, err = parseWhen("since", since, now); err != nil {
				return err
			}
			if in.Until, err = parseWhen("until", until, now); err != nil {
				return err
			}
			if maxItems < 0 {
				return UsageErrorf("--max-items %d: expected 0 (all) or more", maxItems)
			}
			in.Account = s.account
			evs := []*latchkey.AuditEvent{}
			for ev, err := range cl.AuditEvents(cmd.Context(), in) {
				if err != nil {
					return err
				}
				evs = append(evs, ev)
				if maxItems > 0 && len(evs) == maxItems {
					break
				}
			}
			v := view{JSON: map[string]any{"audit_events": evs},
				Headers: []string{"TIME", "ACTOR", "ACTION", "TARGET", "APPLICATION", "FROM", "CHANGE"}, Empty: "No audit events."}
			for _, ev := range evs {
				t := ev.Time
				v.Rows = append(v.Rows, []cell{p.timeCell(&t), c(ev.Actor), c(ev.Action), c(ev.Target),
					c(dash(ev.Application)), c(dash(ev.SourceIP)), c(dash(change(ev.Before, ev.After)))})
			}
			return p.Print(v)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&in.AccessKeyID, "access-key-id", "", "events about this key")
	f.StringVar(&in.Application, "application-name", "", "events about this application and its keys")
	f.StringVar(&in.Actor, "actor", "", "events caused by this principal")
	f.StringVar(&in.Action, "action", "", "only events of this action: "+latchkey.Choices(latchkey.AuditActions()))
	f.StringVar(&since, "since", "", "events at or after this time (RFC 3339, or a duration back from now: 24h, 7d)")
	f.StringVar(&until, "until", "", "events before this time (same forms as --since)")
	f.IntVar(&maxItems, "max-items", 100, "stop after this many events (0: all)")
	completeChoices(cmd, "action", latchkey.AuditActions())
	return cmd
}

// parseWhen reads an RFC 3339 time or a duration back from now ("7d" is
// seven days).
func parseWhen(flag, v string, now time.Time) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return &t, nil
	}
	d, err := parseDays(v)
	if err != nil || d < 0 {
		return nil, UsageErrorf("--%s %q: expected an RFC 3339 time such as 2026-11-02T15:04:05Z or a duration such as 90m, 24h, 7d", flag, v)
	}
	t := now.Add(-d)
	return &t, nil
}

// parseDays is time.ParseDuration that also accepts whole days ("7d").
func parseDays(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err != nil || fmt.Sprint(days) != n {
			return 0, fmt.Errorf("bad number of days")
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

// change summarizes an event's before and after: the fields that differ
// ("status Active→Inactive"), "created" or "deleted".
func change(before, after json.RawMessage) string {
	var b, a map[string]any
	_ = json.Unmarshal(before, &b)
	_ = json.Unmarshal(after, &a)
	switch {
	case b == nil && a == nil:
		return ""
	case b == nil:
		return "created"
	case a == nil:
		return "deleted"
	}
	var parts []string
	for _, k := range []string{"status", "description", "expires_at", "exposed", "role"} {
		bv, av := fmt.Sprint(b[k]), fmt.Sprint(a[k])
		if bv == av {
			continue
		}
		switch k {
		case "exposed":
			parts = append(parts, "flagged exposed")
		case "description":
			parts = append(parts, "description changed")
		default:
			parts = append(parts, fmt.Sprintf("%s %s→%s", k, show(b[k]), show(a[k])))
		}
	}
	return strings.Join(parts, ", ")
}

func show(v any) string {
	if v == nil {
		return "none"
	}
	return fmt.Sprint(v)
}
