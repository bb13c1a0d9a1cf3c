package cli

import (
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newGetAccessKeyLastUsedCmd() *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "get-access-key-last-used --access-key-id ID",
		Short: "Show when, from where and by what an access key was last used and last refused",
		Long: `Show an access key's last use (time, source IP, user agent) and its last
rejected use (the same, with the reason: INACTIVE, EXPIRED). A rejection of
an Inactive key is the evidence that something still uses it. Counts include
calls the server has not yet written to its database.

JSON OUTPUT
  {"access_key_id", "application", "status",
   "last_used": {"at", "ip", "user_agent"} or null,
   "last_rejected": {"at", "ip", "user_agent", "reason"} or null,
   "use_count", "reject_count"}

TEXT OUTPUT
  access_key_id  status  last_used_at  last_used_ip  last_used_user_agent
  last_rejected_at  last_rejected_ip  last_rejected_user_agent  reason
  use_count  reject_count   ("-" for nothing)

EXAMPLES
  latchkey get-access-key-last-used --access-key-id LKIAEXAMPLEEXAMPLE23`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			lu, err := cl.GetAccessKeyLastUsed(cmd.Context(), id)
			if err != nil {
				return err
			}
			row := []cell{c(lu.AccessKeyID), c(string(lu.Status))}
			if u := lu.LastUsed; u != nil {
				row = append(row, cell{Text: u.At.UTC().Format(timeRFC3339), Show: lastUsedText(p.now, u)}, c(dash(u.IP)), c(dash(u.UserAgent)))
			} else {
				row = append(row, cell{Text: "-", Show: "never"}, c("-"), c("-"))
			}
			if r := lu.LastRejected; r != nil {
				row = append(row, cell{Text: r.At.UTC().Format(timeRFC3339), Show: lastRejectedText(p.now, r)}, c(dash(r.IP)), c(dash(r.UserAgent)), c(string(r.Reason)))
			} else {
				row = append(row, cell{Text: "-", Show: "never"}, c("-"), c("-"), c("-"))
			}
			row = append(row, c(i64(lu.UseCount)), c(i64(lu.RejectCount)))
			v := view{JSON: lu, Rows: [][]cell{row}}
			if p.format == formatTable {
				// The table shows the sentence form; keep the columns that add to it.
				v = view{Vertical: true,
					Headers: []string{"ACCESS KEY ID", "APPLICATION", "STATUS", "LAST USED", "LAST REJECTED", "USES", "REJECTIONS"},
					Rows:    [][]cell{{row[0], c(dash(lu.Application)), row[1], row[2], row[5], row[9], row[10]}},
				}
			}
			return p.Print(v)
		}, need{"access-key-id", &id, "LKIAEXAMPLEEXAMPLE23"}),
	}
	cmd.Flags().StringVar(&id, "access-key-id", "", "key to look at (required)")
	return cmd
}
