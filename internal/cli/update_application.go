package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newUpdateApplicationCmd() *cobra.Command {
	var (
		name, description, owner string
		rf                       restrictionFlags
	)
	cmd := &cobra.Command{
		Use:   "update-application --application-name NAME",
		Short: "Change an application's description or the default restrictions of its keys",
		Long: `Change an application's description, or the restrictions every one of its
keys must satisfy: --allowed-ips, --allowed-referrers, --android-app,
--ios-bundle-ids, --scopes, --rate-limit. Each flag given replaces that one
kind and keeps the others; "" removes it; --clear-restrictions removes all.
The change applies to every key of the application at once.

--owner sets the consumer organisation whose people manage the
application's keys in the portal (/portal); "" removes it.

JSON OUTPUT
  {"account", "name", "description", "created_at", "key_count", "owner", "restrictions"}

EXAMPLES
  latchkey update-application --application-name billing --allowed-ips 203.0.113.0/24,2001:db8::/32
  latchkey update-application --application-name web --allowed-referrers 'https://*.example.com/*'
  latchkey update-application --application-name billing --rate-limit 50/s:100
  latchkey update-application --application-name billing --clear-restrictions
  latchkey update-application --application-name globex-sync --owner globex`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			if !cmd.Flags().Changed("description") && !cmd.Flags().Changed("owner") && !rf.changed(cmd) {
				return UsageErrorf("nothing to change: give --description, --owner or a restriction flag such as --allowed-ips")
			}
			in := client.UpdateApplicationInput{Account: s.account, Name: name}
			if cmd.Flags().Changed("owner") {
				if err := latchkey.ValidateOwner(owner); err != nil {
					return UsageErrorf("--owner: %s", errMessage(err))
				}
				in.Owner = &owner
			}
			if cmd.Flags().Changed("description") {
				in.Description = &description
			}
			if rf.changed(cmd) {
				cur, err := cl.GetApplication(cmd.Context(), s.account, name)
				if err != nil {
					return err
				}
				if in.Restrictions, err = rf.apply(cmd, cur.Restrictions); err != nil {
					return err
				}
			}
			app, err := cl.UpdateApplication(cmd.Context(), in)
			if err != nil {
				return err
			}
			return p.Print(p.applicationsView(app, app))
		}, need{"application-name", &name, "billing"}),
	}
	cmd.Flags().StringVar(&name, "application-name", "", "application to change (required)")
	cmd.Flags().StringVar(&description, "description", "", "new description")
	cmd.Flags().StringVar(&owner, "owner", "", `consumer organisation that manages the keys in the portal ("" for none)`)
	rf.register(cmd.Flags(), true)
	return cmd
}
