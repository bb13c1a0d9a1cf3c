package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newUpdateKeyPolicyCmd() *cobra.Command {
	flags := []struct {
		name, help string
		value      string
		dst        func(*latchkey.PolicySettings) **latchkey.Duration
	}{
		{"max-key-age", "age at which a key is due for rotation (server default 90d)", "",
			func(p *latchkey.PolicySettings) **latchkey.Duration { return &p.MaxKeyAge }},
		{"warn-before", "flag and announce this long before rotation is due or a key expires (default 14d)", "",
			func(p *latchkey.PolicySettings) **latchkey.Duration { return &p.WarnBefore }},
		{"unused-after", "flag Active keys without a valid call for this long (default 30d)", "",
			func(p *latchkey.PolicySettings) **latchkey.Duration { return &p.UnusedAfter }},
		{"deactivate-unused-after", "deactivate application keys unused this long (default off)", "",
			func(p *latchkey.PolicySettings) **latchkey.Duration { return &p.DeactivateUnusedAfter }},
		{"delete-inactive-after", "delete application keys Inactive this long (default off)", "",
			func(p *latchkey.PolicySettings) **latchkey.Duration { return &p.DeleteInactiveAfter }},
		{"notice-before", "announce automatic actions by webhook this long ahead (default 7d)", "",
			func(p *latchkey.PolicySettings) **latchkey.Duration { return &p.NoticeBefore }},
	}
	var reset bool
	cmd := &cobra.Command{
		Use:   "update-key-policy [--max-key-age 30d] [--unused-after 30d] ...",
		Short: "Change the account's key hygiene policy",
		Long: `Change the account's hygiene policy. Each flag sets one rule: a number of
days (30d), a duration (36h, 10m), "off" to turn the rule off, or "default"
to take the server's default again. Rules you do not name keep their
current value; --reset first drops every setting of the account.

Automatic actions apply to application keys only (never to an admin's key),
are announced by webhook notice-before ahead (key.unused with deactivate_at,
key.deletion_scheduled with delete_at), and are audited with actor "policy".

EXAMPLES
  # Rotation due at 30 days; deactivate keys unused for 45 days, with a week's notice
  latchkey update-key-policy --max-key-age 30d --deactivate-unused-after 45d --notice-before 7d

  # Delete keys left Inactive for 14 days after a rotation
  latchkey update-key-policy --delete-inactive-after 14d

  # Back to the server's defaults
  latchkey update-key-policy --reset`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			changed := reset
			for _, f := range flags {
				changed = changed || cmd.Flags().Changed(f.name)
			}
			if !changed {
				return UsageErrorf("name at least one rule to change (e.g. --max-key-age 30d), or --reset")
			}
			cur, err := cl.GetPolicy(cmd.Context(), s.account)
			if err != nil {
				return err
			}
			settings := cur.Settings
			if reset {
				settings = latchkey.PolicySettings{}
			}
			for _, f := range flags {
				if !cmd.Flags().Changed(f.name) {
					continue
				}
				v, _ := cmd.Flags().GetString(f.name)
				dst := f.dst(&settings)
				if v == "default" {
					*dst = nil
					continue
				}
				d, err := latchkey.ParseDuration("--"+f.name, v)
				if err != nil {
					return UsageErrorf("%s (or default)", errMessage(err))
				}
				*dst = &d
			}
			v, err := cl.PutPolicy(cmd.Context(), s.account, settings)
			if err != nil {
				return err
			}
			return p.Print(policyView(v))
		}),
	}
	for _, f := range flags {
		cmd.Flags().String(f.name, f.value, f.help)
	}
	cmd.Flags().BoolVar(&reset, "reset", false, "drop the account's settings first (the server's defaults apply)")
	return cmd
}
