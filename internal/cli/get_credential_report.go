package cli

import (
	"time"

	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newGetCredentialReportCmd() *cobra.Command {
	var csv bool
	cmd := &cobra.Command{
		Use:   "get-credential-report [--csv]",
		Short: "Report every key of the account with its age, use, rotation and findings",
		Long: `Report every access key of the account (application and admin keys): its
status, age, last use and last rejection, when it last completed a rotation,
its expiry, whether it was exposed, whether any restriction applies, and what
the account's hygiene policy finds (rotation_due, rotation_soon, unused,
unrestricted, exposed, expiring_soon, expired). The server makes the report
when asked, with usage not yet written to its database: it is never stale.

"Last rotated" is when the key completed a rotation: the older key of its
application that it replaced was deleted while this key was Active.

--csv prints the server's CSV (one line per key, times in RFC 3339, findings
separated by ';'), for spreadsheets and scripts.

JSON OUTPUT
  {"generated_at", "account", "policy": {...}, "summary": {"unused": 2, ...},
   "keys": [{"account", "application" or "principal", "access_key_id",
     "status", "created_at", "age_days", "last_used_at", "last_used_ip",
     "last_rejected_at", "last_rejected_ip", "last_rejected_reason",
     "last_rotated_at", "expires_at", "exposed", "exposed_at", "restricted",
     "rotation_due_at", "deactivate_at", "delete_at", "findings": [...],
     "roll_state", "rolled_with", "identity_id"}, ...]}

TEXT OUTPUT
  access_key_id  owner  status  created_at  last_used_at  last_rotated_at
  expires_at  restricted  findings

EXAMPLES
  latchkey get-credential-report
  latchkey get-credential-report --csv > keys.csv
  latchkey get-credential-report -o json | jq '.keys[] | select(.findings | index("rotation_due")) | .access_key_id'`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			if csv {
				b, err := cl.GetCredentialReportCSV(cmd.Context(), s.account)
				if err != nil {
					return err
				}
				_, err = p.out.Write(b)
				return err
			}
			rep, err := cl.GetCredentialReport(cmd.Context(), s.account)
			if err != nil {
				return err
			}
			return p.Print(p.reportView(rep))
		}),
	}
	cmd.Flags().BoolVar(&csv, "csv", false, "print the report as CSV")
	return cmd
}

func (p *printer) reportView(rep *client.CredentialReport) view {
	v := view{JSON: rep, Headers: []string{"ACCESS KEY ID", "OWNER", "STATUS", "AGE", "LAST USED", "LAST ROTATED", "EXPIRES", "RESTRICTED", "FINDINGS"},
		Empty: "No access keys."}
	for _, k := range rep.Keys {
		owner := k.Application
		if k.Principal != "" {
			owner = "principal:" + k.Principal
		}
		status := cell{Text: string(k.Status), Color: colorGreen}
		if k.Status != "Active" {
			status.Color = colorYellow
		}
		if k.Exposed {
			status.Show, status.Color = string(k.Status)+" (EXPOSED)", colorRed
		}
		expires := cell{Text: "-", Show: "never"}
		if k.ExpiresAt != nil {
			expires = cell{Text: k.ExpiresAt.UTC().Format(time.RFC3339), Show: "in " + short(k.ExpiresAt.Sub(p.now))}
			if !k.ExpiresAt.After(p.now) {
				expires.Show = ago(p.now, *k.ExpiresAt)
			}
		}
		restricted := cell{Text: "yes"}
		if !k.Restricted {
			restricted = cell{Text: "no", Color: colorYellow}
		}
		v.Rows = append(v.Rows, []cell{c(k.AccessKeyID), c(owner), status, p.ageCell(k.CreatedAt), p.timeCell(k.LastUsedAt),
			p.timeCell(k.LastRotatedAt), expires, restricted, findingsCell(k.Findings)})
	}
	return v
}
