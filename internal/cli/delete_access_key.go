package cli

import (
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

func (s *state) newDeleteAccessKeyCmd() *cobra.Command {
	var (
		id    string
		force bool
	)
	cmd := &cobra.Command{
		Use:   "delete-access-key --access-key-id ID [--force]",
		Short: "Delete an Inactive access key for good",
		Long: `Delete an access key. This cannot be undone: calls made with it fail from
now on, and it cannot be reactivated.

An Active key is refused (code KeyActive): deactivate it first with
update-access-key --status Inactive, check with get-access-key-last-used
that nothing still tries it, then delete it. --force deletes an Active key
at once, for a leaked key. Prints nothing with --output json.

EXAMPLES
  latchkey delete-access-key --access-key-id LKIAEXAMPLEEXAMPLE23
  latchkey delete-access-key --access-key-id LKIAEXAMPLEEXAMPLE23 --force`,
		Args: noArgs,
		RunE: s.api(func(cmd *cobra.Command, p *printer, cl *client.Client) error {
			err := cl.DeleteAccessKey(cmd.Context(), client.DeleteAccessKeyInput{AccessKeyID: id, Force: force})
			if latchkey.ErrorCode(err) == latchkey.EKEYACTIVE {
				return latchkey.Errorf(latchkey.EKEYACTIVE,
					"access key %s is Active; deactivate it first (latchkey update-access-key --access-key-id %s --status Inactive), check that nothing still uses it, or pass --force", id, id)
			} else if err != nil {
				return err
			}
			p.Infof("Deleted access key %s.\n", id)
			return nil
		}, need{"access-key-id", &id, "LKIAEXAMPLEEXAMPLE23"}),
	}
	cmd.Flags().StringVar(&id, "access-key-id", "", "key to delete (required)")
	cmd.Flags().BoolVar(&force, "force", false, "delete the key even while it is Active")
	return cmd
}
