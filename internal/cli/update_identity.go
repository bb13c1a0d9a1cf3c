package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newUpdateIdentityCmd() *cobra.Command {
	var (
		id, name    string
		f           identityFlags
		removeQuota bool
	)
	cmd := &cobra.Command{
		Use:   "update-identity --identity-id ID [--name N] [--external-id E] [--metadata JSON] [--rate-limit R] [--quota-remaining N ...]",
		Short: "Change an identity's name, external ID, metadata, shared rate limit or quota",
		Long: `Change an identity. Each flag given replaces that field and keeps the others:
--external-id "" and --metadata '{}' remove them, --rate-limit none removes the
shared rate limit. --quota-remaining (with --refill-amount, --refill-interval
and --low-threshold) sets the shared quota, --remove-quota removes it; to top
it up, use update-quota --identity-id. Every key of the identity's
applications follows at once. Audited (identity.update, identity.quota_update).

JSON OUTPUT
  {"id", "account", "name", "external_id", "metadata", "rate_limit", "quota",
   "created_at", "updated_at", "application_count"}

EXAMPLES
  latchkey update-identity --identity-id idn_abcdefghijklmnop --rate-limit 50/s:100
  latchkey update-identity --identity-id idn_abcdefghijklmnop --quota-remaining 5000 --refill-amount 5000 --refill-interval monthly:1
  latchkey update-identity --identity-id idn_abcdefghijklmnop --external-id "" --metadata '{}'`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			fl := cmd.Flags()
			var u latchkey.IdentityUpdate
			changed := false
			if fl.Changed("name") {
				if err := latchkey.ValidateName("--name", name); err != nil {
					return UsageErrorf("%s", errMessage(err))
				}
				u.Name, changed = &name, true
			}
			if fl.Changed("external-id") {
				if _, err := externalIDFlag(f.externalID); err != nil {
					return err
				}
				u.ExternalID, changed = &f.externalID, true
			}
			if fl.Changed("metadata") {
				m, err := metadataFlag(f.metadata)
				if err != nil {
					return err
				}
				u.Metadata, changed = m, true
			}
			if fl.Changed("rate-limit") {
				rl, err := parseRateLimit(f.rateLimit)
				if err != nil {
					return err
				}
				u.RateLimit, u.RemoveRateLimit, changed = rl, rl == nil, true
			}
			q, err := f.quota(cmd)
			if err != nil {
				return err
			}
			if q != nil && removeQuota {
				return UsageErrorf("give --quota-remaining or --remove-quota, not both")
			}
			if q != nil || removeQuota {
				u.Quota, u.RemoveQuota, changed = q, removeQuota, true
			}
			if !changed {
				return UsageErrorf("nothing to change: give --name, --external-id, --metadata, --rate-limit, --quota-remaining or --remove-quota")
			}
			ident, err := cl.UpdateIdentity(cmd.Context(), s.account, id, u)
			if err != nil {
				return err
			}
			return p.Print(p.identitiesView(ident, ident))
		}, need{"identity-id", &id, "idn_abcdefghijklmnop"}),
	}
	cmd.Flags().StringVar(&id, "identity-id", "", "identity to change (required)")
	cmd.Flags().StringVar(&name, "name", "", "new name")
	cmd.Flags().BoolVar(&removeQuota, "remove-quota", false, "remove the shared quota")
	f.register(cmd)
	return cmd
}
