package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newListAccessKeysCmd() *cobra.Command {
	var (
		app, principal, kind, externalID string
		maxItems                         int
	)
	cmd := &cobra.Command{
		Use:   "list-access-keys [--application-name NAME]",
		Short: "List access keys with their status, age and last use",
		Long: `List access keys, oldest first, with their status, age and when each was
last used: an application's (--application-name), an admin principal's
(--principal-name), or every key you may see (of --kind application or
principal). Secrets are never shown: latchkey does not have them.

A key marked EXPOSED was seen where it should not be (a URL, a leak report):
rotate it.

FINDINGS are what the account's hygiene policy (get-key-policy) says of the
key: rotation_due, rotation_soon, unused, unrestricted, exposed,
expiring_soon, expired.

JSON OUTPUT
  {"access_keys": [{"access_key_id", "account", "application" or "principal",
    "description", "status", "created_at", "updated_at", "expires_at",
    "last_used": {"at", "ip", "user_agent"} or null,
    "last_rejected": {"at", "ip", "user_agent", "reason"} or null,
    "use_count", "reject_count", "exposed": {"at", "where"} or null,
    "external_id", "metadata": {...} (absent when none),
    "findings": ["rotation_due", ...] (absent when none)}, ...]}

TEXT OUTPUT
  access_key_id  owner  status  created_at  last_used_at  restrictions
  description  findings
  (times in RFC 3339, "-" for never; owner "principal:NAME" for admin keys;
  restrictions a count of each kind, "1 IP range, 2 scopes", or "none",
  then "(+report-only: ...)" if any; findings comma-separated, "-" for none)

EXAMPLES
  latchkey list-access-keys --application-name billing
  latchkey list-access-keys --external-id cus_42
  latchkey list-access-keys --kind application --output text | awk '$3 == "Inactive" {print $1}'`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			if app != "" && principal != "" {
				return UsageErrorf("give --application-name or --principal-name, not both")
			}
			if kind != "" {
				if _, err := choice("kind", kind, latchkey.KeyKinds()); err != nil {
					return err
				}
			}
			if maxItems < 0 {
				return UsageErrorf("--max-items %d: expected 0 (all) or more", maxItems)
			}
			keys := []*latchkey.AccessKey{}
			if externalID != "" {
				if _, err := externalIDFlag(externalID); err != nil {
					return err
				}
				if app != "" || principal != "" {
					return UsageErrorf("--external-id searches every key: give it without --application-name and --principal-name")
				}
			}
			in := client.ListAccessKeysInput{Account: s.account, Application: app, Principal: principal, Kind: kind, ExternalID: externalID}
			for k, err := range cl.AccessKeys(cmd.Context(), in) {
				if err != nil {
					return err
				}
				keys = append(keys, k)
				if maxItems > 0 && len(keys) == maxItems {
					break
				}
			}
			return p.Print(p.keysView(map[string]any{"access_keys": keys}, keys...))
		}),
	}
	f := cmd.Flags()
	f.StringVar(&app, "application-name", "", "list this application's keys")
	f.StringVar(&principal, "principal-name", "", "list this admin principal's keys")
	f.StringVar(&externalID, "external-id", "", "list the keys with this external ID")
	f.StringVar(&kind, "kind", "", latchkey.Choices(latchkey.KeyKinds())+" (default both)")
	f.IntVar(&maxItems, "max-items", 0, "stop after this many keys (0: all)")
	completeChoices(cmd, "kind", latchkey.KeyKinds())
	_ = cmd.RegisterFlagCompletionFunc("application-name", s.completeApplications)
	return cmd
}

func (p *printer) keysView(js any, keys ...*latchkey.AccessKey) view {
	v := view{JSON: js, Headers: []string{"ACCESS KEY ID", "OWNER", "STATUS", "AGE", "LAST USED", "RESTRICTIONS", "DESCRIPTION", "FINDINGS"}, Empty: "No access keys."}
	for _, k := range keys {
		var used cell
		if k.LastUsed != nil {
			used = p.timeCell(&k.LastUsed.At)
		} else {
			used = p.timeCell(nil)
		}
		restr := k.Restrictions.String()
		if !k.ReportOnly.Empty() {
			restr += " (+report-only: " + k.ReportOnly.String() + ")"
		}
		v.Rows = append(v.Rows, []cell{c(k.ID), c(owner(k)), statusCell(k), p.ageCell(k.CreatedAt), used, c(restr), c(dash(k.Description)), findingsCell(k.Findings)})
	}
	return v
}

// completeApplications offers the server's application names to the shell.
func (s *state) completeApplications(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	cl, err := s.client(cmd)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for a, err := range cl.Applications(cmd.Context(), client.ListApplicationsInput{Account: s.account}) {
		if err != nil {
			break
		}
		names = append(names, a.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
