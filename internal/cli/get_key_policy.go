package cli

import (
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newGetKeyPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get-key-policy",
		Short: "Show the account's key hygiene policy",
		Long: `Show the hygiene policy in force for the account: when a key is due for
rotation, how long before that (or before it expires) it is flagged, when it
counts as unused, and which automatic actions the server takes. Each rule
says whether it is the account's own setting or the server's default.

JSON OUTPUT
  {"account", "policy": {"max_key_age", "warn_before", "unused_after",
   "deactivate_unused_after", "delete_inactive_after", "notice_before"},
   "settings": {...only the account's own...}, "defaults": {...},
   "updated_at"}

TEXT OUTPUT
  rule  value  source (account or default)

EXAMPLES
  latchkey get-key-policy
  latchkey get-key-policy --account acme -o json`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			v, err := cl.GetPolicy(cmd.Context(), s.account)
			if err != nil {
				return err
			}
			return p.Print(policyView(v))
		}),
	}
	return cmd
}

func policyView(v *client.PolicyView) view {
	out := view{JSON: v, Headers: []string{"RULE", "VALUE", "SOURCE"}}
	rows := []struct {
		name  string
		value string
		own   bool
	}{
		{"max_key_age", v.Policy.MaxKeyAge.String(), v.Settings.MaxKeyAge != nil},
		{"warn_before", v.Policy.WarnBefore.String(), v.Settings.WarnBefore != nil},
		{"unused_after", v.Policy.UnusedAfter.String(), v.Settings.UnusedAfter != nil},
		{"deactivate_unused_after", v.Policy.DeactivateUnusedAfter.String(), v.Settings.DeactivateUnusedAfter != nil},
		{"delete_inactive_after", v.Policy.DeleteInactiveAfter.String(), v.Settings.DeleteInactiveAfter != nil},
		{"notice_before", v.Policy.NoticeBefore.String(), v.Settings.NoticeBefore != nil},
	}
	for _, r := range rows {
		src := "default"
		if r.own {
			src = "account"
		}
		out.Rows = append(out.Rows, []cell{c(r.name), c(r.value), c(src)})
	}
	return out
}
