package cli

import (
	"fmt"
	"github.com/latchkey/latchkey/client"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/spf13/cobra"
)

func (s *state) newUpdateAccessKeyCmd() *cobra.Command {
	var (
		id, status, description         string
		expiresAt, externalID, metadata string
		recent                          time.Duration
		yes                             bool
		clearExpiry                     bool
		reportOnly, enforce             bool
		rf                              restrictionFlags
		bindCert                        string
		unbindCert                      bool
	)
	cmd := &cobra.Command{
		Use:   "update-access-key --access-key-id ID --status Active|Inactive",
		Short: "Deactivate or reactivate an access key, or change its description, expiry or restrictions",
		Long: `Change an access key's status, description, expiry or restrictions.

An Inactive key is refused by verification but can be made Active again at
any time: deactivate a key you mean to delete, watch that nothing breaks
(get-access-key-last-used shows its last rejected use), then delete it.

Before deactivating, the command shows when the key was last used. If that
was within --recent-window (default 1h), something is probably still using
it, and the command asks for confirmation; --yes skips the question (for
scripts).

Restrictions narrow where the key works: --allowed-ips, --allowed-referrers,
--android-app, --ios-bundle-ids, --scopes, --rate-limit. Each flag given
replaces that one kind and keeps the others; "" removes it. With
--report-only they go into the report-only set instead: calls they would
refuse are recorded (get-access-key-last-used shows them) but still pass.
When nothing would be refused any more, --enforce-report-only makes them
binding.

--external-id and --metadata replace the key's external ID and metadata
(see create-access-key); --external-id "" and --metadata '{}' remove them.

JSON OUTPUT
  the key after the change: {"access_key_id", "status", ...} as in
  list-access-keys.

EXAMPLES
  latchkey update-access-key --access-key-id LKIAEXAMPLEEXAMPLE23 --status Inactive
  latchkey update-access-key --access-key-id LKIAEXAMPLEEXAMPLE23 --status Active
  latchkey update-access-key --access-key-id LKIAEXAMPLEEXAMPLE23 --status Inactive --yes
  latchkey update-access-key --access-key-id LKIAEXAMPLEEXAMPLE23 --description "billing, prod"
  latchkey update-access-key --access-key-id LKIAEXAMPLEEXAMPLE23 --allowed-ips 203.0.113.0/24 --report-only
  latchkey update-access-key --access-key-id LKIAEXAMPLEEXAMPLE23 --enforce-report-only
  latchkey update-access-key --access-key-id LKIAEXAMPLEEXAMPLE23 --scopes shipments:read --rate-limit 10/s:20
  latchkey update-access-key --access-key-id LKIAEXAMPLEEXAMPLE23 --expires-at 2027-01-31T00:00:00Z
  latchkey update-access-key --access-key-id LKIAEXAMPLEEXAMPLE23 --external-id cus_42 --metadata '{"plan":"team"}'`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			var u latchkey.AccessKeyUpdate
			if status != "" {
				st, err := choice("status", status, latchkey.Statuses())
				if err != nil {
					return err
				}
				u.Status = &st
			}
			if cmd.Flags().Changed("description") {
				u.Description = &description
			}
			if cmd.Flags().Changed("external-id") {
				if _, err := externalIDFlag(externalID); err != nil {
					return err
				}
				u.ExternalID = &externalID
			}
			if cmd.Flags().Changed("metadata") {
				m, err := metadataFlag(metadata)
				if err != nil {
					return err
				}
				u.Metadata = m
			}
			if expiresAt != "" {
				t, err := time.Parse(time.RFC3339, expiresAt)
				if err != nil {
					return UsageErrorf("--expires-at %q: expected an RFC 3339 time such as 2027-01-31T00:00:00Z", expiresAt)
				}
				u.ExpiresAt = &t
			}
			switch {
			case bindCert != "" && unbindCert:
				return UsageErrorf("give --bind-certificate or --unbind-certificate, not both")
			case bindCert != "":
				tp, err := certificateFlag(bindCert)
				if err != nil {
					return err
				}
				u.CertificateThumbprint = &tp
			case unbindCert:
				none := ""
				u.CertificateThumbprint = &none
			}
			if clearExpiry && expiresAt != "" {
				return UsageErrorf("--expires-at and --clear-expiry go separately: give one")
			}
			u.ClearExpiry = clearExpiry
			if enforce && (reportOnly || rf.changed(cmd)) {
				return UsageErrorf("--enforce-report-only goes alone: it makes the report-only restrictions binding as they are")
			}
			u.EnforceReportOnly = enforce
			if reportOnly && !rf.changed(cmd) {
				return UsageErrorf("--report-only needs a restriction flag such as --allowed-ips")
			}
			if u.Status == nil && u.Description == nil && u.ExpiresAt == nil && !u.ClearExpiry && !u.EnforceReportOnly && !rf.changed(cmd) &&
				u.ExternalID == nil && u.Metadata == nil && u.CertificateThumbprint == nil {
				return UsageErrorf("nothing to change: give --status Active|Inactive, --description TEXT, --expires-at, --clear-expiry, --external-id, --metadata, --bind-certificate, --unbind-certificate, a restriction flag, or --enforce-report-only")
			}
			if recent < 0 {
				return UsageErrorf("--recent-window %s: expected a duration of 0 or more, such as 1h", recent)
			}
			if rf.changed(cmd) {
				cur, err := cl.GetAccessKey(cmd.Context(), id)
				if err != nil {
					return err
				}
				base := cur.Restrictions
				if reportOnly {
					base = cur.ReportOnly
				}
				r, err := rf.apply(cmd, base)
				if err != nil {
					return err
				}
				if reportOnly {
					u.ReportOnly = r
				} else {
					u.Restrictions = r
				}
			}
			if u.Status != nil && *u.Status == latchkey.StatusInactive {
				k, err := cl.GetAccessKey(cmd.Context(), id)
				if err != nil {
					return err
				}
				if k.Status == latchkey.StatusActive {
					now := s.env.Now()
					if k.LastUsed == nil || now.Sub(k.LastUsed.At) >= recent {
						// Look twice before skipping the question: a read made
						// while the server writes its usage can miss the last use.
						if lu, err := cl.GetAccessKeyLastUsed(cmd.Context(), id); err == nil && newer(lu.LastUsed, k.LastUsed) {
							k.LastUsed = lu.LastUsed
						}
					}
					fmt.Fprintf(p.err, "Access key %s (%s) %s.\n", k.ID, k.Owner(), usedPhrase(now, k.LastUsed))
					if k.LastUsed != nil && now.Sub(k.LastUsed.At) < recent && !yes {
						ok, answered, err := s.stdin(cmd).confirm(cmd.Context(), p.err,
							fmt.Sprintf("That is within the last %s: calls made with it will fail once it is Inactive. Deactivate it?", duration(recent)), false)
						if err != nil {
							return err
						}
						if !answered {
							return UsageErrorf("access key %s was used within --recent-window %s and nobody answered the question; pass --yes to deactivate it anyway", k.ID, duration(recent))
						}
						if !ok {
							return fmt.Errorf("access key %s left Active", k.ID)
						}
					}
				}
			}
			k, err := cl.UpdateAccessKey(cmd.Context(), id, u)
			if err != nil {
				return err
			}
			return p.Print(p.keysView(k, k))
		}, need{"access-key-id", &id, "LKIAEXAMPLEEXAMPLE23"}),
	}
	f := cmd.Flags()
	f.StringVar(&id, "access-key-id", "", "key to change (required)")
	f.StringVar(&status, "status", "", latchkey.Choices(latchkey.Statuses()))
	f.StringVar(&description, "description", "", "new description")
	f.StringVar(&externalID, "external-id", "", "new external ID (\"\" removes it)")
	f.StringVar(&metadata, "metadata", "", "new metadata, a JSON object ('{}' removes it)")
	f.StringVar(&expiresAt, "expires-at", "", "time (RFC 3339) after which the key stops working")
	f.BoolVar(&clearExpiry, "clear-expiry", false, "remove the key's expiry")
	f.StringVar(&bindCert, "bind-certificate", "", "bind the key to this PEM TLS client certificate (RFC 8705 style): calls must present it")
	f.BoolVar(&unbindCert, "unbind-certificate", false, "remove the key's binding to a client certificate")
	rf.register(f, true)
	f.BoolVar(&reportOnly, "report-only", false, "put the restriction flags into the report-only set: record what they would refuse, refuse nothing")
	f.BoolVar(&enforce, "enforce-report-only", false, "make the report-only restrictions binding")
	f.DurationVar(&recent, "recent-window", time.Hour, "ask before deactivating a key used this recently")
	f.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	completeChoices(cmd, "status", latchkey.Statuses())
	return cmd
}
