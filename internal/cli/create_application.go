package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newCreateApplicationCmd() *cobra.Command {
	var (
		name, description, owner string
		identity, metadata       string
		rf                       restrictionFlags
	)
	cmd := &cobra.Command{
		Use:   "create-application --application-name NAME",
		Short: "Register an application (a client of your API) that will own access keys",
		Long: `Register an application: a client system of your API, such as a service, a
job or a partner's integration. Each application owns its own access keys
(at most two, so that one can be rotated while the other serves).

Names are 1 to 64 letters, digits, '-', '_' and '.', starting with a letter
or a digit.

Restriction flags (--allowed-ips, --allowed-referrers, --android-app,
--ios-bundle-ids, --scopes, --rate-limit) set the default restrictions of every
key of the application; a key's own restrictions narrow them further.

--owner names the consumer organisation whose people manage the
application's keys in the self-service portal (/portal), as the portal's
role map gives it to them (see docs/portal.md).

--identity puts the application in an identity (create-identity): its keys
then share the identity's rate limit and quota. --metadata is a JSON object
that /v1/verify returns as application_metadata.

JSON OUTPUT
  {"account", "name", "description", "created_at", "key_count", "owner", "restrictions",
   "identity_id", "metadata"}

EXAMPLES
  latchkey create-application --application-name billing
  latchkey create-application --application-name shop --identity idn_abcdefghijklmnop --metadata '{"channel":"web"}'
  latchkey create-application --application-name billing --description "nightly invoice run"
  latchkey create-application --application-name web --allowed-referrers 'https://*.example.com/*'
  latchkey create-application --application-name globex-sync --owner globex`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			var err error
			if err := latchkey.ValidateName("--application-name", name); err != nil {
				return UsageErrorf("%s", errMessage(err))
			}
			if err := latchkey.ValidateOwner(owner); err != nil {
				return UsageErrorf("--owner: %s", errMessage(err))
			}
			in := client.CreateApplicationInput{Account: s.account, Name: name, Description: description, Owner: owner, IdentityID: identity}
			if identity != "" && !latchkey.ValidIdentityID(identity) {
				return UsageErrorf("--identity %q: expected an identity ID such as idn_abcdefghijklmnop", identity)
			}
			if cmd.Flags().Changed("metadata") {
				if in.Metadata, err = metadataFlag(metadata); err != nil {
					return err
				}
			}
			if rf.changed(cmd) {
				if in.Restrictions, err = rf.apply(cmd, nil); err != nil {
					return err
				}
			}
			app, err := cl.CreateApplication(cmd.Context(), in)
			if err != nil {
				return err
			}
			return p.Print(p.applicationsView(app, app))
		}, need{"application-name", &name, "billing"}),
	}
	cmd.Flags().StringVar(&name, "application-name", "", "name of the new application (required)")
	cmd.Flags().StringVar(&description, "description", "", "what the application is, for people")
	cmd.Flags().StringVar(&owner, "owner", "", "consumer organisation that manages the keys in the portal")
	cmd.Flags().StringVar(&identity, "identity", "", "identity (customer) the application belongs to: its keys share the identity's rate limit and quota")
	cmd.Flags().StringVar(&metadata, "metadata", "", `a JSON object returned by every verification of its keys, e.g. '{"channel":"web"}'`)
	rf.register(cmd.Flags(), false)
	return cmd
}

// applicationsView is the table of applications; js is the JSON document.
func (p *printer) applicationsView(js any, apps ...*latchkey.Application) view {
	v := view{JSON: js, Headers: []string{"NAME", "KEYS", "AGE", "ACCOUNT", "RESTRICTIONS", "DESCRIPTION", "IDENTITY"}, Empty: "No applications."}
	for _, a := range apps {
		v.Rows = append(v.Rows, []cell{c(a.Name), c(itoa(a.KeyCount)), p.ageCell(a.CreatedAt), c(a.Account), c(restrictionSummary(a.Restrictions)), c(dash(a.Description)), c(dash(a.IdentityID))})
	}
	return v
}
