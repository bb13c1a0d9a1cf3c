package cli

import (
	"fmt"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/spf13/cobra"
)

func (s *state) newUpdateAccessKeyCmd() *cobra.Command {
	var (
		id, status, description string
		recent                  time.Duration
		yes                     bool
	)
	cmd := &cobra.Command{
		Use:   "update-access-key --access-key-id ID --status Active|Inactive",
		Short: "Deactivate or reactivate an access key, or change its description",
		Long: `Change an access key's status or description.

An Inactive key is refused by verification but can be made Active again at
any time: deactivate a key you mean to delete, watch that nothing breaks
(get-access-key-last-used shows its last rejected use), then delete it.

Before deactivating, the command shows when the key was last used. If that
was within --recent-window (default 1h), something is probably still using
it, and the command asks for confirmation; --yes skips the question (for
scripts).

JSON OUTPUT
  the key after the change: {"access_key_id", "status", ...} as in
  list-access-keys.

EXAMPLES
  latchkey update-access-key --access-key-id LKIAEXAMPLEEXAMPLE23 --status Inactive
  latchkey update-access-key --access-key-id LKIAEXAMPLEEXAMPLE23 --status Active
  latchkey update-access-key --access-key-id LKIAEXAMPLEEXAMPLE23 --status Inactive --yes
  latchkey update-access-key --access-key-id LKIAEXAMPLEEXAMPLE23 --description "billing, prod"`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := required("access-key-id", id, "LKIAEXAMPLEEXAMPLE23"); err != nil {
				return err
			}
			var u latchkey.AccessKeyUpdate
			if status != "" {
				st, err := latchkey.ParseStatus(status)
				if err != nil {
					return UsageErrorf("--status %q: expected Active or Inactive", status)
				}
				u.Status = &st
			}
			if cmd.Flags().Changed("description") {
				u.Description = &description
			}
			if u.Status == nil && u.Description == nil {
				return UsageErrorf("nothing to change: give --status Active|Inactive or --description TEXT")
			}
			if recent < 0 {
				return UsageErrorf("--recent-window %s: expected a duration of 0 or more, such as 1h", recent)
			}
			p, err := s.printer(cmd)
			if err != nil {
				return err
			}
			cl, err := s.client(cmd)
			if err != nil {
				return err
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
		},
	}
	f := cmd.Flags()
	f.StringVar(&id, "access-key-id", "", "key to change (required)")
	f.StringVar(&status, "status", "", "Active or Inactive")
	f.StringVar(&description, "description", "", "new description")
	f.DurationVar(&recent, "recent-window", time.Hour, "ask before deactivating a key used this recently")
	f.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions([]string{"Active", "Inactive"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
