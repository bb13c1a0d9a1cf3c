package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newUpdateApplicationCmd() *cobra.Command {
	var (
		name, description, owner string
		identity, metadata       string
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

--identity moves the application to an identity (its keys then share the
identity's rate limit and quota at once); --identity "" takes it out of its
identity. --metadata replaces the application's metadata ('{}' removes it).

JSON OUTPUT
  {"account", "name", "description", "created_at", "key_count", "owner", "restrictions",
   "identity_id", "metadata"}

EXAMPLES
  latchkey update-application --application-name billing --allowed-ips 203.0.113.0/24,2001:db8::/32
  latchkey update-application --application-name web --allowed-referrers 'https://*.example.com/*'
  latchkey update-application --application-name billing --rate-limit 50/s:100
  latchkey update-application --application-name billing --clear-restrictions
  latchkey update-application --application-name globex-sync --owner globex
  latchkey update-application --application-name shop --identity idn_abcdefghijklmnop`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			fl := cmd.Flags()
			if !fl.Changed("description") && !fl.Changed("owner") && !rf.changed(cmd) && !fl.Changed("identity") && !fl.Changed("metadata") {
				return UsageErrorf("nothing to change: give --description, --owner, --identity, --metadata or a restriction flag such as --allowed-ips")
			}
			in := client.UpdateApplicationInput{Account: s.account, Name: name}
			if fl.Changed("owner") {
				if err := latchkey.ValidateOwner(owner); err != nil {
					return UsageErrorf("--owner: %s", errMessage(err))
				}
				in.Owner = &owner
			}
			if fl.Changed("identity") {
				if identity != "" && !latchkey.ValidIdentityID(identity) {
					return UsageErrorf("--identity %q: expected an identity ID such as idn_abcdefghijklmnop, or \"\" for none", identity)
				}
				in.IdentityID = &identity
			}
			if fl.Changed("metadata") {
				m, err := metadataFlag(metadata)
				if err != nil {
					return err
				}
				in.Metadata = m
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
	cmd.Flags().StringVar(&identity, "identity", "", `identity (customer) to move the application to; "" for none`)
	cmd.Flags().StringVar(&metadata, "metadata", "", `a JSON object that replaces the application's metadata ('{}' removes it)`)
	rf.register(cmd.Flags(), true)
	return cmd
}
